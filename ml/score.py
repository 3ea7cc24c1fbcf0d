"""Score messages from stdin, one JSON result per line on stdout, in order.

    python -m ml.score [--model NAME] < messages.jsonl

Each input line is a JSON string or an object {"text": ..., "context": [...]}. Each output line
is {"risk_score", "risk_category", "confidence", "flags", "model_version"}, or {"error": ...}
for a line that could not be read; the output always has exactly one line per input line.
Each line is answered as soon as it has been read, so a program can write one line and wait for
its answer; lines that are already waiting when the model is free are screened together (up to
BATCH at a time), so a large file costs about what the model costs.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import IO

from ml.screening import Screener

BATCH = 64

Parsed = tuple[str, tuple[str, ...]] | str  # (text, context), or an error message


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screen chat messages read from stdin.")
    parser.add_argument("--model", default=None, help="model under ml/models (default: $SCREENING_MODEL or minilm-v5)")
    args = parser.parse_args(argv)
    try:
        screener = Screener.load(args.model)
    except ValueError as error:
        print(f"ml.score: {error}", file=sys.stderr)
        return 2
    score_stream(screener, sys.stdin.buffer, sys.stdout)
    return 0


def score_stream(screener: Screener, lines: Iterable[bytes], out: IO[str]) -> None:
    """Screen lines as they arrive, keeping the input order: a reader thread queues each line the
    moment it is read, and every batch is what was waiting (at least one line, at most BATCH)."""
    waiting: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(target=_read_into, args=(lines, waiting), name="ml.score-reader", daemon=True)
    reader.start()
    done = False
    while not done:
        first = waiting.get()
        if first is None:
            break
        window: list[Parsed] = [parse_line(first)]
        while len(window) < BATCH:
            try:
                raw = waiting.get_nowait()
            except queue.Empty:
                break
            if raw is None:
                done = True
                break
            window.append(parse_line(raw))
        _write_window(screener, window, out)


def _read_into(lines: Iterable[bytes], waiting: queue.Queue[bytes | None]) -> None:
    try:
        for raw in lines:
            waiting.put(raw)
    finally:
        waiting.put(None)


def parse_line(raw: bytes) -> Parsed:
    """Parse one input line; a problem comes back as a message instead of raising."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "line is not valid UTF-8"
    except json.JSONDecodeError as error:
        return f"line is not valid JSON: {error.msg}"
    if isinstance(value, str):
        return value, ()
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return "expected a JSON string or an object with a \"text\" string"
    context = value.get("context") or []
    if not isinstance(context, list) or not all(isinstance(item, str) for item in context):
        return "\"context\" must be a list of strings"
    return value["text"], tuple(context)


def _write_window(screener: Screener, window: list[Parsed], out: IO[str]) -> None:
    valid = [item for item in window if isinstance(item, tuple)]
    results = iter(screener.screen([text for text, _ in valid], [context for _, context in valid]))
    for item in window:
        if isinstance(item, str):
            record: dict[str, object] = {"error": item}
        else:
            result = next(results)
            record = {"risk_score": result.risk_score, "risk_category": result.risk_category,
                      "confidence": result.confidence, "flags": result.flags,
                      "model_version": result.model_version}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
