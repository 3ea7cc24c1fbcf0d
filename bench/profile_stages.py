"""CPU per screened event by stage, from py-spy samples of the web and screening processes.

    python -m bench.ingest_latency --runs 1 --profile bench/results/profile   # records while the paced phase runs
    python -m bench.profile_stages bench/results/profile/*.txt --events 5000

py-spy writes collapsed stacks (``frame;frame;... count``, outermost first). Each sample is put in one
stage by the innermost frame of this project's code (the web, the queue plumbing, the model, the
session layer, PostgreSQL writes, stream writes); inside the pipeline's own orchestration the library
at the leaf decides (sqlalchemy/psycopg2 -> postgres, redis -> streams, onnxruntime/tokenizers ->
model). Samples with none of our code go by library (celery/kombu/billiard -> queue, gunicorn/flask/
werkzeug -> webhook). CPU ms per event = samples / rate / events screened * 1000.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

OURS = [  # (pattern on "function (file)", stage), first match from the innermost frame outwards
    (r"\((?:.*/)?ml/", "model"),
    (r"\((?:.*/)?app/(sessions|standing)\.py", "session"),
    (r"\((?:.*/)?app/pipeline/screen_store\.py", "postgres"),
    (r"\((?:.*/)?app/maintenance\.py", "postgres"),
    (r"\((?:.*/)?app/streams\.py", "streams"),
    (r"^publish \((?:.*/)?app/pipeline/screen\.py", "streams"),
    (r"^(take|_read|_autoclaim|_claim|wake|screen_batch) \((?:.*/)?tasks/screen\.py", "queue"),
    (r"\((?:.*/)?(app/pipeline/ingest|web/|app/schemas|app/platforms/)", "webhook"),
]
DISPATCH = re.compile(r"\((?:.*/)?(app/pipeline/screen\.py|tasks/screen\.py|app/db\.py)")
LIBRARIES = [
    (r"onnxruntime|tokenizers|numpy", "model"),
    (r"sqlalchemy|psycopg2", "postgres"),
    (r"/redis/", "streams"),
    (r"celery|kombu|billiard|vine|amqp", "queue"),
    (r"gunicorn|flask|werkzeug|marshmallow|json", "webhook"),
]
STAGES = ("webhook", "queue", "model", "session", "postgres", "streams", "screen (other)", "other")


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):  # innermost first
        for pattern, stage in OURS:
            if re.search(pattern, frame):
                return stage
        if DISPATCH.search(frame):
            return _leaf(frames, "screen (other)")
    return _leaf(frames, "other")


def _leaf(frames: list[str], default: str) -> str:
    for frame in reversed(frames):
        for pattern, stage in LIBRARIES:
            if re.search(pattern, frame):
                return stage
    return default


def tally(paths: list[Path]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
            counts[stage_of(frames)] += int(count)
    return counts


def report(counts: collections.Counter[str], rate: int, events: int) -> list[tuple[str, float]]:
    rows = [(stage, counts.get(stage, 0) / rate / max(events, 1) * 1000) for stage in STAGES]
    return [*rows, ("total", sum(ms for _, ms in rows))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--rate", type=int, default=100, help="py-spy's sampling rate (samples/s)")
    parser.add_argument("--events", type=int, required=True, help="events screened while it sampled")
    args = parser.parse_args(argv)
    for stage, ms in report(tally(args.paths), args.rate, args.events):
        print(f"{stage:>15}  {ms:6.3f} ms CPU / event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
