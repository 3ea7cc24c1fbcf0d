"""The queue behaviour on a real Celery worker process: webhook → screening → PostgreSQL + streams."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from app import streams
from app.sessions import read_state
from tests.conftest import ROOT, _psycopg_dsn, make_event

HARASSMENT = "you are a worthless idiot, nobody wants you here, just kill yourself"


class Worker:
    """A real ``celery worker`` for one queue, in its own process group so a test can kill it outright."""

    def __init__(self, env: dict[str, str], queue: str, log: Path, concurrency: int = 1) -> None:
        self.env, self.queue, self.log, self.concurrency = env, queue, log, concurrency
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        cmd = [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker", "-Q", self.queue,
               "--concurrency", str(self.concurrency), "--pool", "prefork", "--loglevel", "INFO",
               "-n", f"{self.queue}-test@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def wait_ready(self) -> None:
        wait_for(lambda: "ready." in self.log.read_text(errors="replace"), what="the worker ready")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        try:  # the prefork pool's children share the group; make sure none outlives the test
            os.killpg(self.proc.pid, signal.SIGKILL) if self.proc else None
        except ProcessLookupError:
            pass


@pytest.fixture
def worker_env(settings_map: dict[str, str]) -> dict[str, str]:
    from app.config import Settings

    env = {**os.environ, **settings_map, "CELERY_VISIBILITY_TIMEOUT": "3", "SCREENING_RECLAIM_IDLE_MS": "1000"}
    env["CELERY_BROKER_URL"] = Settings.from_mapping(settings_map).broker_url
    return env


@pytest.fixture
def screening_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    worker = Worker(worker_env, "screening", tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def wait_for(predicate, timeout_s: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def task_events(handlers: dict) -> Iterator[None]:
    """Celery task events (what Flower reads) passed to ``handlers`` by type while the block runs."""
    from tasks.celery_app import app as celery

    with celery.connection_for_read() as conn:
        receiver = celery.events.Receiver(conn, handlers=handlers)
        thread = threading.Thread(target=lambda: receiver.capture(limit=None, timeout=None, wakeup=False),
                                  daemon=True)
        thread.start()
        time.sleep(1.0)  # the receiver's queue is bound before the first task runs
        try:
            yield
        finally:
            receiver.should_stop = True


def status_of(client, auth, event_id: str) -> str | None:  # type: ignore[no-untyped-def]
    resp = client.get(f"/v1/events/{event_id}", headers=auth)
    return resp.get_json()["status"] if resp.status_code == 200 else None


def test_events_are_screened_persisted_and_mirrored(client, auth, rds, screening_worker):
    events = [make_event(1, content="gg everyone, that was a fun match"),
              make_event(2, content=HARASSMENT, author_id="mallory")]
    assert client.post("/v1/events/ingest", json={"events": events}, headers=auth).status_code == 202

    wait_for(lambda: status_of(client, auth, "evt-2") == "needs_review", what="evt-2 screened")
    benign = client.get("/v1/events/evt-1", headers=auth).get_json()
    risky = client.get("/v1/events/evt-2", headers=auth).get_json()
    assert benign["status"] == "screened"
    assert benign["risk_prediction"]["risk_score"] < 0.7
    assert risky["risk_prediction"]["risk_score"] >= 0.7
    assert risky["risk_prediction"]["risk_category"] != "none"
    assert risky["risk_prediction"]["model_version"]
    assert risky["action"] is None

    screened = [streams.decode(f) for _, f in rds.xrange(streams.SCREENED)]
    assert {s["event_id"] for s in screened} == {"evt-1", "evt-2"}
    for entry in screened:
        assert int(entry["screened_at"]) >= int(entry["received_at"]) > 0
    assert [f["event_id"] for _, f in rds.xrange(streams.REASONING_QUEUE)] == ["evt-2"]

    session = read_state(rds, "session:web:lobby")
    assert session["message_count"] == 2
    assert 0 < rds.ttl("session:web:lobby") <= 1800


def test_session_and_author_snapshots_reach_postgres(client, auth, services, screening_worker):
    events = [make_event(i, content=HARASSMENT if i % 2 else "nice one", author_id=f"user{i % 2}")
              for i in range(4)]
    client.post("/v1/events/ingest", json={"events": events}, headers=auth)
    wait_for(lambda: status_of(client, auth, "evt-3") in {"screened", "needs_review"}, what="batch screened")
    conn = psycopg2.connect(_psycopg_dsn(services["DATABASE_URL"]))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT message_count, harassment_flags_count, participants FROM sessions "
                    "WHERE session_id = 'web:lobby'")
        count, flags, participants = cur.fetchone()
        cur.execute("SELECT user_id, message_count, flagged_count FROM users ORDER BY user_id")
        users = cur.fetchall()
    conn.close()
    assert count == 4 and flags == 2 and [p["user_id"] for p in participants] == ["user0", "user1"]
    assert users == [("user0", 2, 0), ("user1", 2, 2)]


def raw_group(rds) -> dict:  # type: ignore[no-untyped-def]
    return next(g for g in rds.xinfo_groups(streams.RAW) if g["name"] == streams.SCREENING_GROUP)


def drained(rds) -> bool:  # type: ignore[no-untyped-def]
    return streams.group_backlog(rds) == (0, 0)  # Redis 6.2 (the embedded wheel) reports no lag


def test_a_duplicate_entry_is_acknowledged_and_not_screened_again(client, auth, rds, screening_worker):
    from tasks.celery_app import wake_screening

    client.post("/v1/events/ingest", json=make_event(5, content=HARASSMENT), headers=auth)
    wait_for(lambda: status_of(client, auth, "evt-5") == "needs_review", what="first screening")
    [(_, fields)] = rds.xrange(streams.RAW)
    rds.xadd(streams.RAW, fields)  # the same event in the stream twice (a replayed window)
    wake_screening()
    wait_for(lambda: drained(rds), what="the copy read and acknowledged")
    assert rds.xlen(streams.SCREENED) == 1
    assert rds.xlen(streams.REASONING_QUEUE) == 1


def test_a_worker_killed_mid_batch_loses_nothing(client, auth, rds, services, worker_env, tmp_path):
    """Hold a lock so the worker blocks inside the task, kill -9 the whole worker, start another:
    it claims the dead reader's entry once idle and screens it once."""
    from tasks.celery_app import wake_screening

    conn = psycopg2.connect(_psycopg_dsn(services["DATABASE_URL"]))
    cur = conn.cursor()
    cur.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")  # the worker's insert will wait on this
    first = Worker(worker_env, "screening", tmp_path / "first.log").start()
    try:
        client.post("/v1/events/ingest", json=make_event(8, content=HARASSMENT), headers=auth)
        lock_waiters = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass"
        probe = psycopg2.connect(_psycopg_dsn(services["DATABASE_URL"]))
        probe.autocommit = True
        with probe.cursor() as pcur:
            def blocked() -> bool:
                pcur.execute(lock_waiters)
                return pcur.fetchone()[0] > 0
            wait_for(blocked, what="worker blocked inside the task")
        probe.close()
        first.kill()
    finally:
        conn.rollback()
        conn.close()
    assert raw_group(rds)["pending"] == 1  # held by the dead reader
    second = Worker(worker_env, "screening", tmp_path / "second.log").start()
    try:
        def claimed() -> bool:
            wake_screening()  # what beat's keepalive does every second
            return status_of(client, auth, "evt-8") == "needs_review"
        wait_for(claimed, timeout_s=60, what="the dead reader's entry claimed and screened")
        wait_for(lambda: drained(rds), what="the entry acknowledged")
    finally:
        second.stop()
    assert [f["event_id"] for _, f in rds.xrange(streams.SCREENED)] == ["evt-8"]
    assert [f["event_id"] for _, f in rds.xrange(streams.REASONING_QUEUE)] == ["evt-8"]


def test_an_event_committed_but_never_mirrored_is_mirrored_once_by_its_claimer(client, auth, rds, settings,
                                                                               screening_worker):
    """A reader killed between its commit and its mirror: the row is in PostgreSQL, the entry still
    pending. Whoever claims it mirrors the stored row, so the audit stream has no hole."""
    from app.db import session_scope
    from app.pipeline import screen
    from tasks.celery_app import wake_screening
    from tasks.screen import decode, get_screener

    rds.set("screen:wake", "1", px=60_000)  # no wake goes out: the "dead" reader below takes the entry
    client.post("/v1/events/ingest", json=make_event(6, content=HARASSMENT), headers=auth)
    [(_, entries)] = rds.xreadgroup(streams.SCREENING_GROUP, "dead-reader", {streams.RAW: ">"}, count=10)
    items, _ = decode(list(entries), claimed=False)
    with session_scope() as db:  # committed, then the process "dies" before screen.publish
        screen.screen_batch(items, screener=get_screener(), db=db, client=rds, settings=settings)
    assert status_of(client, auth, "evt-6") == "needs_review" and rds.xlen(streams.SCREENED) == 0

    def mirrored() -> bool:
        wake_screening()
        return drained(rds)
    wait_for(mirrored, timeout_s=60, what="the pending entry claimed and mirrored")
    [(_, fields)] = rds.xrange(streams.SCREENED)
    entry = streams.decode(fields)
    assert entry["event_id"] == "evt-6" and entry["data"]["status"] == "needs_review"
    assert entry["data"]["risk_prediction"]["risk_score"] >= 0.7
    assert [f["event_id"] for _, f in rds.xrange(streams.REASONING_QUEUE)] == ["evt-6"]


def test_screening_batches_show_in_task_events_with_their_counts(client, auth, rds, settings, screening_worker):
    """What Flower reads: a task-succeeded event per screen.batch, its result the events screened."""
    seen: list[dict] = []
    with task_events({"task-succeeded": seen.append, "task-received": seen.append}):
        events = [make_event(n, author_id=f"a{n}") for n in range(3)]
        client.post("/v1/events/ingest", json={"events": events}, headers=auth)
        wait_for(lambda: rds.xlen(streams.SCREENED) == 3, what="the batch screened")
        wait_for(lambda: sum(int(e.get("result") or 0) for e in seen if e["type"] == "task-succeeded") >= 3,
                 what="task-succeeded events counting 3 events")
    names = {e.get("name") for e in seen if e["type"] == "task-received"}
    assert names == {"screen.batch"}


@pytest.mark.timeout(180)
def test_a_backlog_keeps_every_screening_process_busy(client, auth, rds, worker_env, tmp_path):
    """A reader that takes a full batch wakes the next one before it screens, so two processes screen a
    backlog side by side (woken after its batch, one batch followed another on one process at a time)."""
    from tasks.celery_app import wake_screening

    n_events = 40 * 16
    events = [make_event(n, author_id=f"a{n % 7}", content=f"message {n}: anyone up for another round?")
              for n in range(n_events)]
    started: dict[str, float] = {}  # task id -> start
    spans: list[tuple[float, float]] = []  # (start, end) of each reader's run
    with task_events({"task-started": lambda e: started.__setitem__(e["uuid"], e["timestamp"]),
                      "task-succeeded": lambda e: spans.append((started[e["uuid"]], e["timestamp"]))}):
        worker = Worker(worker_env | {"SCREENING_BATCH_SIZE": "16"}, "screening", tmp_path / "worker.log",
                        concurrency=2).start()
        try:
            worker.wait_ready()
            time.sleep(2.0)  # both pool processes have loaded the model
            rds.set("screen:wake", "1", px=60_000)  # the whole backlog in first, then one wake (as after an outage)
            for first in range(0, n_events, 160):
                assert client.post("/v1/events/ingest", json={"events": events[first:first + 160]},
                                   headers=auth).status_code == 202
            rds.delete("screen:wake")
            wake_screening()
            wait_for(lambda: rds.xlen(streams.SCREENED) == n_events, timeout_s=120, what="the backlog screened")
            wait_for(lambda: drained(rds), what="the backlog acknowledged")
            wait_for(lambda: started and len(spans) == len(started), what="every reader done")
        finally:
            worker.stop()
    overlapping = [(a, b) for a in spans for b in spans if a[0] < b[0] < a[1]]  # b started while a ran
    assert overlapping, f"no two readers ran at once: {sorted(spans)}"


def test_a_reader_waits_on_the_stream_for_steady_traffic(client, auth, rds, screening_worker):
    """Events arriving every 20 ms are taken by a reader already waiting on the stream: a handful of
    screen.batch tasks screen all of them, not one Celery message (and one broker trip) per batch."""
    received: list[dict] = []
    screening_worker.wait_ready()
    with task_events({"task-received": received.append}):
        for n in range(60):
            assert client.post("/v1/events/ingest", json=make_event(n, author_id=f"a{n % 5}"),
                               headers=auth).status_code == 202
            time.sleep(0.02)
        wait_for(lambda: rds.xlen(streams.SCREENED) == 60, what="every event screened")
    assert len(received) <= 12, f"{len(received)} tasks for 60 events"


def test_a_bad_event_goes_to_the_dead_letter_stream_and_its_batch_is_screened(client, auth, rds, settings,
                                                                              screening_worker):
    from tasks.celery_app import wake_screening

    rds.set("screen:wake", "1", px=60_000)  # hold the reader back until both entries are in
    client.post("/v1/events/ingest", json=make_event(1), headers=auth)
    broken = {"event_id": "bad-1", "platform": "web"}  # no content: a bug upstream
    rds.xadd(streams.RAW, {"event_id": "bad-1", "platform": "web", "received_at": "1",
                           "data": json.dumps(broken)})
    rds.delete("screen:wake")
    wake_screening()
    [(_, fields)] = wait_for(lambda: rds.xrange(streams.DLQ_ERRORS), what="dead letter")
    entry = streams.decode(fields)
    assert entry["event_id"] == "bad-1"
    assert entry["data"]["stage"] == "screen" and "KeyError" in entry["data"]["error"]
    wait_for(lambda: drained(rds), what="both entries acknowledged")
    assert [f["event_id"] for _, f in rds.xrange(streams.SCREENED)] == ["evt-1"]


def test_sweeper_wakes_a_reader_for_waiting_entries_and_forgets_gone_consumers(client, auth, rds):
    from app import maintenance

    client.post("/v1/events/ingest", json=make_event(9), headers=auth)
    rds.delete("screening")  # the broker lost the wake; the entry waits in the group
    rds.xgroup_createconsumer(streams.RAW, streams.SCREENING_GROUP, "gone-1234")
    wakes: list[int] = []
    assert maintenance.sweep(rds, lambda: wakes.append(1), forget_after_s=0) == 1
    assert wakes == [1]
    assert rds.xinfo_consumers(streams.RAW, streams.SCREENING_GROUP) == []
