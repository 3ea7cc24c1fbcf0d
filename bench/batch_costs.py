"""What a screening batch costs outside the model: time, Redis round trips and commands, SQL statements.

    python -m bench.batch_costs                                # embedded PostgreSQL + Redis, batches of 1, 8, 32
    python -m bench.batch_costs --sizes 1,32 --batches 300
    PYTHONPATH=/path/to/other/checkout python -m bench.batch_costs   # the same for another tree, to compare

Events are ``bench.ingest_latency``'s load (held-out chat lines, 37 authors in 13 channels, one in
twenty hostile), accepted through the ingest API in process, then screened by the screening worker's
own functions (``take``, ``decode``, ``_screen``: read from the consumer group, screen, commit, mirror
and acknowledge) against real PostgreSQL (a scratch database, dropped at the end) and real Redis.
Per batch size: the median and p90 of a whole batch and of its time outside the model (the model call
is timed apart), the Redis round trips and commands and SQL statements it made, and the median of
each step. Nothing else runs beside it, so this is the pipeline's own cost, not the machine's
contention; ``bench.ingest_latency --profile`` measures the CPU per event of the whole stack under load.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.console_pages import drop_database, migrate, scratch_database, services

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 20
# (module, function, label): the steps timed inside a batch.
STEPS = [
    ("app.pipeline.screen", "score", "model"),
    ("app.pipeline.screen_store", "screened_keys", "postgres: already screened?"),
    ("app.pipeline.screen", "apply_sessions", "sessions (Lua)"),
    ("app.pipeline.screen_store", "save_events", "postgres: events"),
    ("app.pipeline.screen_store", "save_authors", "postgres: authors"),
    ("app.pipeline.screen_store", "save_sessions", "postgres: sessions"),
    ("app.pipeline.screen", "publish", "mirror + acknowledge"),
]


class Counters:
    """Redis round trips and commands, SQL statements, and each step's time, while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.counts: collections.Counter[str] = collections.Counter()
        self.steps: dict[str, list[float]] = collections.defaultdict(list)

    def install(self, engine: Any) -> None:
        import importlib

        import redis.connection
        from sqlalchemy import event

        connection = redis.connection.AbstractConnection  # TCP and Unix sockets alike
        send, pack, packs = connection.send_packed_command, connection.pack_command, connection.pack_commands

        def counted_send(conn: Any, command: Any, check_health: bool = True) -> Any:
            self.counts["redis round trips"] += self.on
            return send(conn, command, check_health)

        def counted_pack(conn: Any, *args: Any) -> Any:
            self.counts["redis commands"] += self.on
            return pack(conn, *args)

        def counted_packs(conn: Any, commands: Any) -> Any:
            commands = list(commands)
            self.counts["redis commands"] += self.on * len(commands)
            return packs(conn, commands)

        connection.send_packed_command, connection.pack_command = counted_send, counted_pack
        connection.pack_commands = counted_packs
        event.listen(engine, "before_cursor_execute", lambda *_: self.counts.update({"sql statements": self.on}))
        for module_name, name, label in STEPS:
            module = importlib.import_module(module_name)
            setattr(module, name, self._timed(getattr(module, name), label))

    def _timed(self, function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if self.on:
                    self.steps[label].append((time.perf_counter() - started) * 1000)
        return timed


def measure(size: int, batches: int, counters: Counters, web: Any, client: Any) -> dict[str, Any]:
    import tasks.screen as worker
    from app.pipeline.ingest import WAKE_KEY
    from bench.ingest_latency import make_events

    counters.counts.clear()
    counters.steps.clear()
    whole, model = [], []
    started_at = time.monotonic()
    for n in range(WARMUP + batches):
        events = make_events(f"b{size}", n * size, size)
        reply = web.post("/v1/events/ingest", json={"events": events}, headers={"X-API-Key": "bench"})
        if reply.status_code != 202:
            raise SystemExit(f"the ingest API answered {reply.status_code}: {reply.get_data(as_text=True)[:300]}")
        client.delete(WAKE_KEY)
        counters.on = n >= WARMUP
        before = len(counters.steps["model"])
        started = time.perf_counter()
        entries, claimed = worker.take(client, max(size, 16), None)
        items, _ = worker.decode(entries, claimed)
        done = worker._screen(client, items)
        elapsed = (time.perf_counter() - started) * 1000
        counters.on = False
        if done != size:
            raise SystemExit(f"a batch of {size} screened {done}; is another worker reading this Redis?")
        if n >= WARMUP:
            whole.append(elapsed)
            model.append(sum(counters.steps["model"][before:]))
        if n % 50 == 0 or n == WARMUP + batches - 1:
            print(f"  batches of {size}: {n + 1}/{WARMUP + batches} ({time.monotonic() - started_at:.0f} s)",
                  end="\r", flush=True)
    print()
    outside = [w - m for w, m in zip(whole, model, strict=True)]
    return {
        "size": size, "batches": batches,
        "batch_ms": _spread(whole), "outside_model_ms": _spread(outside), "model_ms": _spread(model),
        "per_batch": {k: round(v / batches, 2) for k, v in sorted(counters.counts.items())},
        "steps_median_ms": {label: round(statistics.median(v), 3) for label, v in counters.steps.items() if v},
    }


def _tree() -> str:
    """The checkout whose code is measured (PYTHONPATH may name another than this one)."""
    import app

    return str(Path(app.__file__).resolve().parent.parent)


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 3), "p90": round(ordered[int(len(ordered) * 0.9)], 3)}


def report(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'batch':>6} {'whole p50/p90 ms':>18} {'outside model p50/p90':>22} {'redis trips':>12} "
             f"{'redis cmds':>11} {'sql':>6}"]
    for row in rows:
        per = row["per_batch"]
        lines.append(f"{row['size']:>6} {row['batch_ms']['p50']:>9.2f}/{row['batch_ms']['p90']:<8.2f} "
                     f"{row['outside_model_ms']['p50']:>11.2f}/{row['outside_model_ms']['p90']:<10.2f} "
                     f"{per.get('redis round trips', 0):>12.1f} {per.get('redis commands', 0):>11.1f} "
                     f"{per.get('sql statements', 0):>6.1f}")
    lines.append("")
    labels = list(dict.fromkeys(label for row in rows for label in row["steps_median_ms"]))
    lines.append(f"{'step (median ms)':28}" + "".join(f"{row['size']:>10}" for row in rows))
    for label in labels:
        lines.append(f"{label:28}" + "".join(f"{row['steps_median_ms'].get(label, 0):>10.2f}" for row in rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8,32", help="batch sizes, comma-separated")
    parser.add_argument("--batches", type=int, default=150, help="timed batches per size (after 20 to warm up)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        Path(tmp).chmod(0o755)
        os.environ.pop("REDIS_URL", None)  # always a Redis of its own: the benchmark empties it
        env, started = services(Path(tmp))
        url = scratch_database(env["DATABASE_URL"])
        try:
            rows = run(url, env["REDIS_URL"], sizes, args.batches)
        finally:
            drop_database(env["DATABASE_URL"], url)
            for service in reversed(started):
                service.stop()
    text = report(rows)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"batch_costs-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"tree": _tree(), "rows": rows}, indent=1))
    print(f"raw results: {path}")
    return 0


def run(url: str, redis_url: str, sizes: list[int], batches: int) -> list[dict[str, Any]]:
    migrate(url)
    mapping = {"DATABASE_URL": url, "REDIS_URL": redis_url, "API_KEYS": "bench", "SCREENING_SHED_AFTER_MS": "0",
               "RATE_LIMIT_PER_S": "1000000", "RATE_LIMIT_BURST": "1000000"}
    os.environ.update(mapping)
    from app import streams
    from app.config import Settings, set_settings
    from app.db import get_engine
    from app.redis_client import get_redis
    from web import create_app

    set_settings(Settings.from_mapping(mapping))
    client = get_redis()
    streams.ensure_group(client)
    web = create_app(mapping | {"TESTING": "1"}).test_client()
    import tasks.screen as worker

    worker.get_screener()  # loaded before anything is timed
    counters = Counters()
    counters.install(get_engine())
    print(f"screening model {Settings.from_mapping(mapping).SCREENING_MODEL}; tree {_tree()}", flush=True)
    return [measure(size, batches, counters, web, client) for size in sizes]


if __name__ == "__main__":
    sys.exit(main())
