"""CPU per screened event by stage, from py-spy samples of the web and screening processes.

    python -m bench.ingest_latency --runs 1 --profile bench/results/profile   # records while the paced phase runs
    python -m bench.profile_stages bench/results/profile

py-spy writes collapsed stacks (``frame;frame;... count``, outermost first). Each sample is put in one
stage by the innermost frame of this project's code (the web, the queue plumbing, the model, the
session layer, PostgreSQL writes, stream writes); inside the pipeline's own orchestration the library
at the leaf decides (sqlalchemy/psycopg2 -> postgres, redis -> streams, onnxruntime/tokenizers ->
model). Samples with none of our code go by library (celery/kombu/billiard -> queue, gunicorn/flask/
werkzeug -> webhook). py-spy counts a runnable process waiting for a core as busy, so on a loaded
machine its samples overstate CPU: each process's measured CPU time (psutil, ``cpu_per_event_ms.json``)
is split between stages in proportion to that process's samples; Redis and PostgreSQL (not Python)
are their own rows.
"""

from __future__ import annotations

import argparse
import collections
import json
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


def by_stage(folder: Path) -> dict[str, float]:
    """CPU ms per screened event by stage, from a --profile folder."""
    measured = json.loads((folder / "cpu_per_event_ms.json").read_text())["ms_per_event"]
    out: collections.Counter[str] = collections.Counter()
    for process in ("web", "worker"):
        path = folder / f"{process}.txt"
        counts = tally([path]) if path.exists() else collections.Counter()
        total = sum(counts.values())
        for stage, n in counts.items():
            out[stage] += measured.get(process, 0.0) * n / total if total else 0.0
    rows = {stage: round(out.get(stage, 0.0), 3) for stage in STAGES}
    rows |= {"redis server": measured.get("redis", 0.0), "postgres server": measured.get("postgres", 0.0)}
    return rows | {"total": round(sum(rows.values()), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="--profile folders of bench.ingest_latency")
    args = parser.parse_args(argv)
    for folder in args.folders:
        print(folder)
        for stage, ms in by_stage(folder).items():
            print(f"{stage:>17}  {ms:6.3f} ms CPU / screened event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
