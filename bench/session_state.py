"""What the session model costs Redis in a busy channel: one update per message, as the screening
worker sends single events.

    python -m bench.session_state                          # an embedded Redis of its own, 3 rounds
    python -m bench.session_state --redis-url redis://127.0.0.1:6379/15 --messages 6000

The load is ``bench.ingest_latency``'s: 13 channels, 37 authors, 11 people addressed, one message in
twenty hostile (the rest mostly benign, some rude), a few ms apart, so every channel grows the
participants and targets a raid or a busy stream has. Each round starts from empty state and reports
the update's round trip (p50, p90, p99, mean; the p90 and p99 are the updates that also return the
whole session for a PostgreSQL snapshot), Redis's own CPU per update (``INFO commandstats``, which
the other processes on this machine do not touch), and the size of a channel's state. Medians over
the rounds; run the baseline in the same session to compare (another checkout:
``PYTHONPATH=/path/to/it python -m bench.session_state``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from app.sessions import SessionParams, SessionStore, SessionUpdate, session_key

CHANNELS, AUTHORS, TARGETS = 13, 37, 11


def state_bytes(client: redis.Redis, key: str) -> int:
    if client.type(key) == "hash":
        return sum(len(k) + len(v) for k, v in client.hgetall(key).items())
    return len(client.get(key) or "")


def evalsha_usec(client: redis.Redis) -> tuple[int, int]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def one_round(client: redis.Redis, messages: int, seed: int) -> dict[str, float]:
    client.flushdb()
    store = SessionStore(client, SessionParams())
    store.update([SessionUpdate("warm", "web:warm", 0, 0.0, False, "w", None)], {"web:warm": ("web", "warm")})
    rng = random.Random(seed)
    start_ts = 1_790_000_000_000
    calls0, usec0 = evalsha_usec(client)
    took = []
    for i in range(messages):
        channel = f"chan{i % CHANNELS}"
        hostile = rng.random() < 0.05
        risk = rng.uniform(0.7, 0.95) if hostile else rng.uniform(0.02, 0.45)
        update = SessionUpdate(f"bench-{seed}-{i}", f"web:{channel}", start_ts + i * 3, risk,
                               hostile or rng.random() < 0.2, f"user{i % AUTHORS}", f"user{i % TARGETS}")
        started = time.perf_counter()
        store.update([update], {f"web:{channel}": ("web", channel)})
        took.append((time.perf_counter() - started) * 1000)
    calls1, usec1 = evalsha_usec(client)
    took.sort()
    sizes = [state_bytes(client, session_key(f"web:chan{c}")) for c in range(CHANNELS)]
    return {"p50_ms": took[len(took) // 2], "p90_ms": took[int(len(took) * 0.9)],
            "p99_ms": took[int(len(took) * 0.99)], "mean_ms": statistics.fmean(took),
            "redis_cpu_ms": (usec1 - usec0) / max(1, calls1 - calls0) / 1000, "state_kb": max(sizes) / 1024}


def run(url: str, rounds: int, messages: int) -> list[dict[str, float]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    results = []
    for r in range(rounds):
        results.append(one_round(client, messages, seed=r))
        row = results[-1]
        print(f"round {r + 1}/{rounds}: p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms, "
              f"Redis CPU {row['redis_cpu_ms']:.3f} ms/update, largest state {row['state_kb']:.1f} kB", flush=True)
    return results


def report(results: list[dict[str, Any]], messages: int) -> None:
    print(f"\nmedians of {len(results)} rounds, {messages} updates each ({CHANNELS} channels, {AUTHORS} authors):")
    for name, label in (("p50_ms", "update p50 (ms)"), ("p90_ms", "update p90 (ms)"), ("p99_ms", "update p99 (ms)"),
                        ("mean_ms", "update mean (ms)"), ("redis_cpu_ms", "Redis CPU per update (ms)"),
                        ("state_kb", "largest channel state (kB)")):
        print(f"  {label:28s} {statistics.median(r[name] for r in results):8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", help="a Redis to use (its database is flushed); default: an embedded one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=6000, help="updates per round")
    args = parser.parse_args(argv)
    if args.redis_url:
        report(run(args.redis_url, args.rounds, args.messages), args.messages)
        return 0
    from app.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="safety-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis").start()
        try:
            report(run(server.url, args.rounds, args.messages), args.messages)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
