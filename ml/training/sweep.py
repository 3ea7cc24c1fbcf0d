"""Train several minilm candidates side by side and pick one by the calibration split alone.

    python -m ml.training.sweep --out DIR "e2:--epochs 2 --samples 24000" "e3:--epochs 3 --samples 48000 --seed 7"

Made for a lent GPU (train_finetune uses one when torch sees it): each candidate is a
``python -m ml.training.train_finetune --name sweep-<label> ...`` process, all at once. Each one is then
scored on the calibration split (never trained on; the held-out split is not looked at to choose),
and the candidate with the highest ROC AUC of model+rules over the real sources there wins. DIR
gets ``logs.txt`` (the end of every candidate's training log), ``sweep.json`` (every candidate's
calibration and held-out metrics and its meta.json) and the winner's meta.json and model.onnx,
cut into parts of at most 15 MB (``cat model.onnx.part* > model.onnx``). A candidate that has
not finished by ``--deadline`` seconds is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ml.screening import MODELS_DIR

PART_BYTES = 15_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+", metavar="LABEL:ARGS")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deadline", type=float, default=480.0,
                        help="seconds before unfinished candidates are dropped")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per candidate")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    running: dict[str, tuple[subprocess.Popen[bytes], Any]] = {}
    for item in args.candidates:
        label, _, extra = item.partition(":")
        log = open(_log(label), "wb")  # closed when the process ends
        command = [sys.executable, "-m", "ml.training.train_finetune", "--name", f"sweep-{label}",
                   "--threads", str(args.threads), *shlex.split(extra)]
        running[label] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
        print(f"[sweep] started {label}: {' '.join(command[2:])}", flush=True)
    scoring: dict[str, Future[dict[str, Any]]] = {}
    # Scoring on the calibration split starts as soon as a candidate is done, beside the others.
    with ProcessPoolExecutor(max_workers=4) as pool:
        while running and time.perf_counter() - started < args.deadline:
            time.sleep(5)
            for label, (process, log) in list(running.items()):
                if process.poll() is not None:
                    log.close()
                    del running[label]
                    state = "done" if process.returncode == 0 else f"failed ({process.returncode})"
                    print(f"[sweep] {label} {state} after {time.perf_counter() - started:.0f} s", flush=True)
                    if process.returncode == 0:
                        scoring[label] = pool.submit(score, label)
        for label, (process, log) in running.items():
            process.kill()
            log.close()
            print(f"[sweep] {label} dropped at the deadline", flush=True)
        results = {label: future.result() for label, future in scoring.items()}
    with open(args.out / "logs.txt", "w", encoding="utf-8") as handle:
        for item in args.candidates:
            label = item.partition(":")[0]
            lines = _log(label).read_text(encoding="utf-8", errors="replace").splitlines()
            handle.write(f"== {label} (last 40 lines) ==\n" + "\n".join(lines[-40:]) + "\n")
    (args.out / "sweep.json").write_text(json.dumps(results, indent=2) + "\n")
    if not results:
        return 1
    best = choose(results)
    for label, result in sorted(results.items(), key=lambda kv: -kv[1]["calibration_auc"]):
        print(f"[sweep] {label}: calibration AUC {result['calibration_auc']:.4f} "
              f"FPR@0.7 {result['calibration_fpr']:.4f} recall@0.7 {result['calibration_recall']:.4f}"
              + ("  <- chosen" if label == best else ""), flush=True)
    folder = MODELS_DIR / f"sweep-{best}"
    (args.out / "meta.json").write_bytes((folder / "meta.json").read_bytes())
    write_parts(folder / "model.onnx", args.out)
    print(f"[sweep] chose {best}; its files are in {args.out}", flush=True)
    return 0


def choose(results: dict[str, dict[str, Any]]) -> str:
    """The candidate with the highest calibration-split ROC AUC (the first of equals)."""
    return max(results, key=lambda label: results[label]["calibration_auc"])


def write_parts(path: Path, out: Path, size: int = PART_BYTES) -> list[Path]:
    """Cut ``path`` into ``out/<name>.part0, .part1, ...`` of at most ``size`` bytes: what comes back
    from a lent machine is limited per file. ``cat <name>.part* > <name>`` puts it together (fewer
    than ten parts, so the shell's order is the parts' order)."""
    data = path.read_bytes()
    count = -(-len(data) // size)
    if count > 10:
        raise ValueError(f"{path} needs {count} parts of {size} bytes; at most 10 sort by name")
    parts = [out / f"{path.name}.part{index}" for index in range(count)]
    for index, part in enumerate(parts):
        part.write_bytes(data[index * size:(index + 1) * size])
    return parts


def _log(label: str) -> Path:
    return Path(tempfile.gettempdir()) / f"sweep-{label}.log"


def score(label: str) -> dict[str, Any]:
    """Model+rules on the calibration split's real sources: the only figures the choice reads."""
    from ml.screening import Screener
    from ml.training.datasets import REAL_SOURCES
    from ml.training.evaluate import evaluate_rows
    from ml.training.train_finetune import load_splits

    rows = [row for row in load_splits()["calibration"] if row.source in REAL_SOURCES]
    report = evaluate_rows(Screener.load(f"sweep-{label}"), rows)
    real = report["per_source"]["all real sources"]["model+rules"]
    meta = json.loads((MODELS_DIR / f"sweep-{label}" / "meta.json").read_text())
    return {"calibration_auc": real["auc"], "calibration_fpr": real["fpr"],
            "calibration_recall": real["recall"], "calibration": report, "meta": meta}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
