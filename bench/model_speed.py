"""Screening model speed on this machine: one message, batches on every core, and cold start.

    make bench-model                                 # minilm-v5 with and without its cascade, and ngram-v1
    python -m bench.model_speed --model minilm-v5 --model minilm-v5,cascade=0 --runs 5

A model is named as in ml/models/, or given as the path of a model folder (another checkout's
``ml/models/minilm-v5``, say, to set a graph before a change against the one after it in one
interleaved run), optionally with ``,cascade=X`` to screen with the cascade set to X
(``SCREENING_CASCADE_BELOW``; 0 = the transformer reads every message).

What is measured, through ``ml.screening.Screener.screen`` (normalisation, tokenisation, the
model and the rules: exactly what the screening worker runs, without the database):

- single: one message per call on one onnxruntime thread (SCREENING_THREADS=1), p50/p95/p99
  over real held-out messages (tweets, chatbot turns, Reddit posts) and over
  the chat-length ones (<= 120 characters), each with the turns before it where its conversation
  has them, as the worker passes them; a transformer reads up to 64 tokens of a message and the
  turn before it together;
- batched: one process per core, each screening its share in batches of 64 on one thread, as
  the screening workers do; messages per second over the wall time of all of them;
- cold start: a fresh interpreter imports the runtime, loads the model and screens one message;
  worker cold start: the same after importing the Celery app and the screening task module, which
  is what a screening pool process does before its first batch (broker handshake not included).

Every model is measured in the same run, interleaved, so a busy machine slows all of them alike;
ratios against the first baseline (ngram-v1) are printed beside the medians. The raw figures go
to bench/results/model_speed-<time>.json. A benchmark, not a test: nothing here fails on speed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "ml" / "data" / "splits" / "heldout.jsonl.gz"
RESULTS = ROOT / "bench" / "results"
BATCH = 64
CHAT_CHARS = 120

_COLD_START = """
import time
from pathlib import Path
started = time.perf_counter()
from ml.screening import Screener
Screener.load({name!r}, Path({folder!r})).screen(["hello there"], [["hi"]])
print(time.perf_counter() - started)
"""


_WORKER_COLD_START = """
import time
from pathlib import Path
started = time.perf_counter()
import tasks.celery_app, tasks.screen
from ml.screening import Screener
Screener.load({name!r}, Path({folder!r})).screen(["hello there"], [["hi"]])
print(time.perf_counter() - started)
"""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append",
                        help="repeatable, NAME or NAME,cascade=X; default minilm-v5, minilm-v5,cascade=0 and ngram-v1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--singles", type=int, default=600, help="single-message calls per run")
    parser.add_argument("--batched", type=int, default=4096, help="messages per batched run")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    os.environ["SCREENING_THREADS"] = "1"
    models = args.model or ["minilm-v5", "minilm-v5,cascade=0", "ngram-v1"]
    texts = _messages()
    chat = [message for message in texts if len(message[0]) <= CHAT_CHARS]
    print(f"{len(texts)} held-out messages ({len(chat)} of chat length); {args.processes} cores; "
          f"{args.runs} runs per model, interleaved", flush=True)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    for run in range(1, args.runs + 1):
        for name in models:
            started = time.perf_counter()
            figures = {**_single(name, texts, args.singles, "all"), **_single(name, chat, args.singles, "chat"),
                       "batched_msg_s": _batched(name, texts[:args.batched], args.processes),
                       "cold_start_s": _cold_start(name, _COLD_START),
                       "worker_cold_start_s": _cold_start(name, _WORKER_COLD_START)}
            results[name].append(figures)
            print(f"  run {run}/{args.runs} {name:10} single p99 {figures['all_p99_ms']:6.2f} ms (chat "
                  f"{figures['chat_p99_ms']:5.2f}), batched {figures['batched_msg_s']:7.0f} msg/s, cold start "
                  f"{figures['cold_start_s']:.2f} s (worker {figures['worker_cold_start_s']:.2f} s)  "
                  f"[{time.perf_counter() - started:.0f} s]", flush=True)
    print(report(results, args.processes))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"model_speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"processes": args.processes, "runs": results}, indent=2) + "\n")
    print(f"raw figures: {path.relative_to(ROOT)}")


def report(results: dict[str, list[dict[str, float]]], processes: int) -> str:
    keys = [("all_p50_ms", "single p50 ms"), ("all_p95_ms", "single p95 ms"), ("all_p99_ms", "single p99 ms"),
            ("chat_p50_ms", "chat p50 ms"), ("chat_p99_ms", "chat p99 ms"),
            ("batched_msg_s", f"batched msg/s ({processes} proc)"), ("cold_start_s", "cold start s"),
            ("worker_cold_start_s", "worker cold start s")]
    names = list(results)
    baseline = names[-1]
    lines = ["", "medians over runs" + (f"; (x) = ratio to {baseline} measured alongside" if len(names) > 1 else ""),
             f"{'':28}" + "".join(f"{name:>24}" for name in names)]
    for key, label in keys:
        cells = []
        for name in names:
            value = statistics.median(run[key] for run in results[name])
            base = statistics.median(run[key] for run in results[baseline])
            ratio = f" ({value / base:5.{1 if value >= base else 3}f}x)" if name != baseline and base else ""
            cells.append(f"{value:>16.2f}{ratio:>8}" if ratio else f"{value:>24.2f}")
        lines.append(f"{label:28}" + "".join(cells))
    return "\n".join(lines)


Message = tuple[str, list[str]]  # a text and the turns before it, oldest first


def _messages() -> list[Message]:
    with gzip.open(HELDOUT, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    messages = [(row["text"], list(row.get("context") or [])) for row in rows]
    random.Random(7).shuffle(messages)
    return messages


def _screen(screener: Any, messages: Sequence[Message]) -> None:
    screener.screen([text for text, _ in messages], [context for _, context in messages])


def _load(spec: str) -> Any:
    """A fresh screener for NAME or NAME,cascade=X (never the shared one get_screener caches)."""
    from ml.screening import Screener

    name, _, option = spec.partition(",")
    screener = Screener.load(*_where(name))
    if option:
        key, _, value = option.partition("=")
        if key != "cascade":
            raise SystemExit(f"unknown option {option!r} in --model {spec!r}; the one option is cascade=X")
        screener.cascade_below = float(value)
    return screener


def _where(name: str) -> tuple[str, Path]:
    """(model name, models folder) for a name in ml/models/ or the path of a model folder."""
    from ml.screening import MODELS_DIR

    if "/" not in name:
        return name, MODELS_DIR
    folder = Path(name).resolve()
    if not (folder / "meta.json").exists():
        raise SystemExit(f"--model {name!r}: no meta.json there; give a model folder such as ml/models/minilm-v5")
    return folder.name, folder.parent


def _env(spec: str) -> dict[str, str]:
    _, _, option = spec.partition(",")
    extra = {"SCREENING_CASCADE_BELOW": option.partition("=")[2]} if option else {}
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def _single(name: str, messages: Sequence[Message], count: int, label: str) -> dict[str, float]:
    screener = _load(name)
    _screen(screener, messages[:BATCH])  # warm up
    latencies = []
    for message in messages[:count]:
        started = time.perf_counter()
        _screen(screener, [message])
        latencies.append((time.perf_counter() - started) * 1000)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return {f"{label}_p50_ms": float(p50), f"{label}_p95_ms": float(p95), f"{label}_p99_ms": float(p99)}


def _screen_share(args: tuple[str, list[Message], Any]) -> None:
    name, messages, barrier = args
    screener = _load(name)
    _screen(screener, messages[:BATCH])
    barrier.wait()
    for start in range(0, len(messages), BATCH):
        _screen(screener, messages[start:start + BATCH])


def _batched(name: str, texts: Sequence[Message], processes: int) -> float:
    """Messages per second with one single-threaded process per core, timed from a common start."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    shares = [list(texts[index::processes]) for index in range(processes)]
    workers = [context.Process(target=_screen_share, args=((name, share, barrier),)) for share in shares]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    if any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError(f"a batched screening process for {name} failed")
    return len(texts) / (time.perf_counter() - started)


def _cold_start(name: str, code: str) -> float:
    model, folder = _where(name.partition(",")[0])
    result = subprocess.run([sys.executable, "-c", code.format(name=model, folder=str(folder))], cwd=ROOT,
                            env=_env(name), capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
