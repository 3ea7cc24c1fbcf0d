"""Console page-render benchmark: every page of /admin with 100,000 events in the database.

    python -m bench.console_pages                     # embedded PostgreSQL + Redis unless DATABASE_URL/REDIS_URL
    DATABASE_URL=postgresql://... REDIS_URL=redis://.../14 python -m bench.console_pages --events 100000

A scratch database is created next to the one DATABASE_URL names (never the one itself), migrated
and filled with a week of synthetic traffic: 100,000 events over 4 platforms, 500 channels and
3,000 authors, ~10% flagged, 5% waiting for review, sanctions and their audit rows, appeals, alerts
and session snapshots. Each page is then requested through Flask's test client (the whole view:
queries, template, response; no network) by a signed-in admin, --repeat times after one warm-up,
and the median, p95 and max are printed and written to var/bench/console_pages.json. The target is
200 ms per page. The scratch database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 200.0
PLATFORMS = ("discord", "twitch", "slack", "web")
CATEGORIES = ("targeted_harassment", "hate", "threat", "sexual_harassment", "profanity", "spam")


def services(workdir: Path) -> tuple[dict[str, str], list[Any]]:
    from app.embedded import EmbeddedPostgres, EmbeddedRedis

    env, started = dict(os.environ), []
    if not env.get("DATABASE_URL"):
        started.append(EmbeddedPostgres(workdir / "pg", database="postgres").start())
        env["DATABASE_URL"] = started[-1].url
    if not env.get("REDIS_URL"):
        started.append(EmbeddedRedis(workdir / "redis").start())
        env["REDIS_URL"] = started[-1].url
    return env, started


def scratch_database(admin_url: str) -> str:
    import psycopg2
    from sqlalchemy.engine import make_url

    from app.db import sqlalchemy_url

    name = f"safety_bench_console_{uuid.uuid4().hex[:8]}"
    dsn = make_url(sqlalchemy_url(admin_url)).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return make_url(sqlalchemy_url(admin_url)).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    from app.db import engine_for, sqlalchemy_url

    engine_for(url).dispose()
    dsn = make_url(sqlalchemy_url(admin_url)).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    conn.close()


def migrate(url: str) -> None:
    import subprocess

    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": url}, capture_output=True)


def fill(n_events: int, seed: int = 14) -> dict[str, Any]:
    """A week of traffic; returns ids the pages will be asked about."""
    from sqlalchemy import insert

    from app.console.models import Appeal
    from app.db import session_scope
    from app.models import Action, Alert, AuditLog, Event, Session, User

    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=7)
    authors = [f"user{i}" for i in range(3000)]
    channels = [f"chan{i}" for i in range(500)]
    events, actions, audit, appeals = [], [], [], []
    for i in range(n_events):
        platform, channel = PLATFORMS[i % 4], channels[rng.randrange(len(channels))]
        at = start + timedelta(seconds=7 * 86_400 * i / n_events)
        flagged = rng.random() < 0.10
        risk = rng.uniform(0.7, 1.0) if flagged else rng.uniform(0.0, 0.6)
        status = ("needs_review" if rng.random() < 0.5 else "actioned") if flagged else "screened"
        event_id = f"e{i}"
        author = authors[int(rng.paretovariate(1.2)) % len(authors)]
        events.append({"event_id": event_id, "platform": platform, "session_id": f"{platform}:{channel}",
                       "channel_id": channel, "author_id": author, "user_id": rng.choice(authors),
                       "content": f"message {i} with some words in it", "event_metadata": {"message_id": event_id},
                       "occurred_at": at, "received_at": at, "status": status, "risk_score": risk,
                       "risk_category": rng.choice(CATEGORIES) if flagged else "none", "confidence": 0.9,
                       "flags": ["targeted_insult"] if flagged else [], "screening_time_ms": rng.uniform(1, 9),
                       "model_version": rng.choice(("minilm-v4", "minilm-v5")), "screened_at": at + timedelta(
                           milliseconds=rng.uniform(2, 40))})
        if flagged:
            kind = "human_review" if status == "needs_review" else rng.choice(("warning", "timeout", "ban"))
            action_id = f"a{i}"
            actions.append({"action_id": action_id, "event_id": event_id, "platform": platform, "user_id": author,
                            "action_type": kind, "duration_hours": 24.0 if kind == "timeout" else None,
                            "reason_code": "targeted_harassment", "reasoning": "insults aimed at a person",
                            "confidence": 0.8, "evidence_chain": [{"kind": "model_score", "ref": "minilm-v5",
                                                                   "detail": f"risk {risk:.2f}"}],
                            "policy": "graduated_escalation", "provider": "fallback", "status": "applied",
                            "created_at": at, "applied_at": at + timedelta(seconds=1)})
            audit.append({"at": at + timedelta(seconds=1), "actor": "system",
                          "kind": "action.review" if kind == "human_review" else "action.applied",
                          "event_id": event_id, "action_id": action_id, "platform": platform,
                          "detail": {"recommended": {"action_type": "timeout"}, "platform_status": 200}})
            if kind != "human_review" and rng.random() < 0.05:
                appeals.append({"appeal_id": f"p{i}", "action_id": action_id, "event_id": event_id,
                                "platform": platform, "user_id": author, "statement": "I did not mean it",
                                "source": "api:bench", "status": rng.choice(("open", "upheld", "overturned")),
                                "risk_category": events[-1]["risk_category"],
                                "model_version": events[-1]["model_version"],
                                "created_at": at + timedelta(hours=1)})
    with session_scope() as db:
        for table, rows in ((Event, events), (Action, actions), (AuditLog, audit), (Appeal, appeals)):
            for k in range(0, len(rows), 5000):
                db.execute(insert(table), rows[k:k + 5000])
        users = {(e["platform"], e["author_id"]) for e in events}
        db.execute(insert(User), [{"platform": p, "user_id": u, "message_count": 30, "flagged_count": 3,
                                   "violation_count": 1, "reputation": 0.4} for p, u in users])
        db.execute(insert(Session), [{"session_id": f"{p}:{c}", "platform": p, "channel_id": c, "participants": [],
                                      "message_count": 50, "started_at": start, "last_event_at": now,
                                      "escalation_score": 0.3, "harassment_flags_count": 2,
                                      "temporal_features": {"risk_scores": [rng.random() for _ in range(50)],
                                                            "intervals": [30.0] * 49}}
                                     for p in PLATFORMS for c in channels])
        db.execute(insert(Alert), [{"alert_id": f"al{i}", "kind": "pile_on", "session_id": f"web:chan{i}",
                                    "platform": "web", "target_user_id": "user1", "authors": ["a", "b", "c"],
                                    "escalation_score": 0.9, "created_at": now - timedelta(hours=i % 160)}
                                   for i in range(300)])
    busiest = max(users, key=lambda pu: sum(1 for a in actions if a["user_id"] == pu[1] and a["platform"] == pu[0]))
    review = next(e for e in reversed(events) if e["status"] == "needs_review")
    return {"events": len(events), "actions": len(actions), "appeals": len(appeals), "audit": len(audit),
            "review_event": (review["platform"], review["event_id"]), "busiest_user": busiest,
            "appeal": next((a["appeal_id"] for a in appeals), None)}


def pages(ids: dict[str, Any]) -> dict[str, str]:
    platform, event_id = ids["review_event"]
    user_platform, user_id = ids["busiest_user"]
    today = datetime.now(UTC).date()
    week = f"from={today - timedelta(days=6)}&to={today}"
    return {
        "queue": "/admin/queue", "queue page 40": "/admin/queue?page=40",
        "queue filtered": "/admin/queue?platform=web&category=hate", "queue rows (live refresh)": "/admin/queue/rows",
        "event": f"/admin/events/{platform}/{event_id}",
        "user (busiest author)": f"/admin/users/{user_platform}/{user_id}",
        "appeals": "/admin/appeals", "appeal": f"/admin/appeals/{ids['appeal']}", "policy": "/admin/policy",
        "reports (24 h)": "/admin/reports", "reports (7 days)": f"/admin/reports?{week}",
        "decision log CSV (24 h)": "/admin/reports/decisions.csv",
    }


def measure(client: Any, path: str, repeat: int) -> list[float]:
    assert client.get(path).status_code == 200, path  # warm-up, and the page must work
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path)
        response.get_data()
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, path
    return times


def signed_in_client(app: Any) -> Any:
    import re

    from app.console import accounts

    accounts.create("bench", "admin", "bench-password-123", actor="bench")
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login").get_data(as_text=True))
    client.post("/admin/login", data={"csrf_token": token.group(1), "username": "bench",  # type: ignore[union-attr]
                                      "password": "bench-password-123"})
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "console_pages.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        Path(tmp).chmod(0o755)
        env, started = services(Path(tmp))
        url = scratch_database(env["DATABASE_URL"])
        try:
            run(url, env["REDIS_URL"], args)
        finally:
            if not args.keep:
                drop_database(env["DATABASE_URL"], url)
            for service in reversed(started):
                service.stop()


def run(url: str, redis_url: str, args: argparse.Namespace) -> None:
    from app.config import Settings, set_settings
    from web import create_app

    migrate(url)
    set_settings(Settings.from_mapping({"DATABASE_URL": url, "REDIS_URL": redis_url}))
    t0 = time.perf_counter()
    ids = fill(args.events)
    print(f"filled in {time.perf_counter() - t0:.1f} s: {ids['events']:,} events, {ids['actions']:,} actions, "
          f"{ids['audit']:,} audit rows, {ids['appeals']:,} appeals", flush=True)
    from app.db import get_engine

    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")  # what autovacuum does after this many inserts
    app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url})
    client = signed_in_client(app)
    results = {}
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (other work on the machine slows every query)")
    print(f"{'page':34} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  (target {TARGET_MS:.0f} ms, n={args.repeat})")
    for name, path in pages(ids).items():
        times = sorted(measure(client, path, args.repeat))
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        results[name] = {"path": path, "median_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1),
                         "max_ms": round(times[-1], 1)}
        flag = "" if statistics.median(times) < TARGET_MS else "  OVER TARGET"
        print(f"{name:34} {statistics.median(times):10.1f} {p95:8.1f} {times[-1]:8.1f}{flag}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"events": ids["events"], "repeat": args.repeat, "target_ms": TARGET_MS,
                                    "load_average": [load, os.getloadavg()[0]], "cpus": os.cpu_count(),
                                    "pages": results}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
