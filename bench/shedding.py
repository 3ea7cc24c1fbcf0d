"""Screening behind its load, with shedding off and on: how late the verdicts are, what the
transformer skipped, and what that cost on the hostile lines.

    python -m bench.shedding                        # 2 rounds of (off, on), 45 s at 1.5x capacity
    python -m bench.shedding --rate 150 --seconds 60 --rounds 3

Each round starts the stack twice (``bench.ingest_latency.Stack``: gunicorn, two screening
processes, embedded PostgreSQL and Redis when none is given), once with
``SCREENING_SHED_AFTER_MS=0`` (the default) and once with ``--after-ms`` (2,000), in alternating order, and sends
the same paced single events (wrk, the held-out lines of ``bench.ingest_latency``: one in twenty
abusive) for the same time. Without ``--rate`` the first stack measures what screening keeps up
with (events as fast as wrk sends, screened per second) and the load is ``--overload`` times that.

Per run: webhook → ``events:screened`` latency (p50, p99, max) over every event, the share the
transformer skipped because screening was behind (``shed_under_load``), and of the abusive lines
how many reached ``needs_review`` (the threshold, context included), against the same lines
with shedding off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import ingest_latency as bench

ROOT = Path(__file__).resolve().parent.parent


def verdicts(stack: bench.Stack, run: str) -> list[dict]:
    """Every screened entry of this run: content, status, flags and its latency."""
    client, out, last = stack.redis(), [], "-"
    while True:
        entries = client.xrange("events:screened", min=last, count=5000)
        for entry_id, fields in entries:
            if fields["event_id"].startswith(run):
                data = json.loads(fields["data"])
                out.append({"content": data["event"]["content"], "status": data["status"],
                            "flags": data["risk_prediction"]["flags"],
                            "latency_ms": int(fields["screened_at"]) - int(fields["received_at"])})
            last = "(" + entry_id
        if len(entries) < 5000:
            return out


def one_run(workdir: Path, shed: bool, rate: float | None, seconds: float, hostile: set[str],
            after_ms: int = 2_000) -> dict:
    settings = {"SCREENING_SHED_AFTER_MS": str(after_ms if shed else 0)}
    with bench.Stack(workdir, 2, settings=settings) as stack:
        if rate is None:
            return {"capacity": bench.wrk_single(stack, seconds / 3, None)["screened_per_s"]}
        row = bench.wrk_single(stack, seconds, rate)
        screened = verdicts(stack, row["run"])
    latencies = sorted(v["latency_ms"] for v in screened)
    abusive = [v for v in screened if v["content"] in hostile]
    return {"shedding": shed, "rate": rate, "sent": row["sent"], "screened": len(screened),
            "screened_per_s": row["screened_per_s"],
            "p50_ms": statistics.median(latencies), "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
            "max_ms": latencies[-1],
            "shed_share": round(sum("shed_under_load" in v["flags"] for v in screened) / max(len(screened), 1), 4),
            "abusive": len(abusive), "abusive_flagged": sum(v["status"] == "needs_review" for v in abusive),
            "abusive_shed": sum("shed_under_load" in v["flags"] for v in abusive)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=None, help="single events/s; default: --overload x capacity")
    parser.add_argument("--overload", type=float, default=1.5)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--after-ms", type=int, default=2_000, help="SCREENING_SHED_AFTER_MS of the runs with shedding")
    args = parser.parse_args(argv)
    hostile = bench.HOSTILE
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="safety-shed-") as tmp:
        Path(tmp).chmod(0o755)  # the embedded PostgreSQL runs as its own user and must reach its folder
        rate = args.rate
        if rate is None:
            capacity = one_run(Path(tmp) / "capacity", False, None, args.seconds, hostile)["capacity"]
            rate = round(capacity * args.overload)
            print(f"screening keeps up with ~{capacity} single events/s here; load: {rate}/s "
                  f"({args.overload}x) for {args.seconds:.0f} s", flush=True)
        for n in range(args.rounds):
            for shed in (n % 2 == 0, n % 2 != 0):  # off/on, then on/off: neither always runs first
                label = "on " if shed else "off"
                print(f"round {n + 1}/{args.rounds}, shedding {label}: {rate:.0f} events/s for {args.seconds:.0f} s",
                      flush=True)
                rows.append(one_run(Path(tmp) / f"{n}-{label.strip()}", shed, rate, args.seconds, hostile,
                                    args.after_ms))
                print(f"    {rows[-1]}", flush=True)
    report(rows)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"shedding-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    print(f"raw results: {path}")
    return 0


def report(rows: list[dict]) -> None:
    print(f"\nmedians over rounds ({len(rows) // 2} each)")
    print(f"{'shedding':>9} {'screened/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'shed':>6} "
          f"{'abusive flagged':>16} {'abusive shed':>13}")
    for shed in (False, True):
        mine = [r for r in rows if r["shedding"] == shed]
        if not mine:
            continue

        def med(key: str, mine: list[dict] = mine) -> float:
            return statistics.median(r[key] for r in mine)

        print(f"{'on' if shed else 'off':>9} {med('screened_per_s'):>10.0f} {med('p50_ms'):>8.0f} "
              f"{med('p99_ms'):>8.0f} {med('max_ms'):>8.0f} {med('shed_share'):>6.1%} "
              f"{med('abusive_flagged'):>7.0f} of {med('abusive'):<6.0f} {med('abusive_shed'):>13.0f}")


if __name__ == "__main__":
    sys.exit(main())
