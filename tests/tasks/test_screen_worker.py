"""The queue behaviour on a real Celery worker process: webhook → screening → PostgreSQL + streams."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from app import streams
from app.pipeline.ingest import dedup_key
from tests.conftest import ROOT, _psycopg_dsn, make_event

HARASSMENT = "you are a worthless idiot, nobody wants you here, just kill yourself"


class Worker:
    """A real ``celery worker`` for one queue, in its own process group so a test can kill it outright."""

    def __init__(self, env: dict[str, str], queue: str, log: Path) -> None:
        self.env, self.queue, self.log = env, queue, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        cmd = [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker", "-Q", self.queue,
               "--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO", "-n", f"{self.queue}-test@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

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

    env = {**os.environ, **settings_map, "CELERY_VISIBILITY_TIMEOUT": "3"}
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

    session = json.loads(rds.get("session:web:lobby"))
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


def test_a_replayed_delivery_is_not_screened_twice(client, auth, rds, screening_worker):
    from tasks.celery_app import enqueue_screening

    client.post("/v1/events/ingest", json=make_event(5, content=HARASSMENT), headers=auth)
    wait_for(lambda: status_of(client, auth, "evt-5") == "needs_review", what="first screening")
    [(_, fields)] = rds.xrange(streams.RAW)
    enqueue_screening([{"event": json.loads(fields["data"]), "received_at": int(fields["received_at"])}])
    wait_for(lambda: rds.llen("screening") == 0 and not rds.hlen("unacked"), what="redelivery consumed")
    time.sleep(0.5)
    assert rds.xlen(streams.SCREENED) == 1
    assert rds.xlen(streams.REASONING_QUEUE) == 1


def test_a_worker_killed_mid_batch_loses_nothing(client, auth, rds, services, worker_env, tmp_path):
    """Hold a lock so the worker blocks inside the task, kill the whole worker, start another."""
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
    # The message waits, unacknowledged, in kombu's "unacked" set. A worker restores such messages
    # when it starts and then every 100 s, and only those delivered more than the visibility
    # timeout ago (3 s here): start the second worker once that has passed, as a restarted worker
    # in production finds them.
    [(_, delivered_at)] = rds.zrange("unacked_index", 0, -1, withscores=True)
    time.sleep(max(0.0, delivered_at + 3.5 - time.time()))
    second = Worker(worker_env, "screening", tmp_path / "second.log").start()
    try:
        wait_for(lambda: status_of(client, auth, "evt-8") == "needs_review", timeout_s=60,
                 what="the unacknowledged batch redelivered and screened")
    finally:
        second.stop()


def test_a_batch_that_fails_for_good_goes_to_the_dead_letter_stream(rds, settings, worker_env, tmp_path):
    from tasks.celery_app import app as celery
    from tasks.celery_app import enqueue_screening

    celery.conf.broker_url = settings.broker_url
    broken = {"event": {"event_id": "bad-1", "platform": "web"}, "received_at": 1}  # no content: a bug upstream
    enqueue_screening([broken])
    worker = Worker(worker_env, "screening", tmp_path / "w.log").start()
    try:
        [(_, fields)] = wait_for(lambda: rds.xrange(streams.DLQ_ERRORS), what="dead letter")
    finally:
        worker.stop()
    entry = streams.decode(fields)
    assert entry["event_id"] == "bad-1"
    assert entry["data"]["stage"] == "screen" and "KeyError" in entry["data"]["error"]


def test_sweeper_requeues_an_accepted_event_whose_message_was_lost(client, auth, rds, services, settings):
    from app import maintenance
    from app.db import session_scope

    client.post("/v1/events/ingest", json=make_event(9), headers=auth)
    rds.delete("screening")  # the broker lost the message; the stream still has the event
    assert rds.get(dedup_key("web", "evt-9"))
    queued: list[list[dict]] = []
    with session_scope() as db:
        assert maintenance.sweep(rds, db, queued.append, grace_s=0, now_ms=int(time.time() * 1000) + 1) == 1
    assert [item["event"]["event_id"] for item in queued[0]] == ["evt-9"]
    with session_scope() as db:  # the checkpoint moved: a second sweep finds nothing new
        assert maintenance.sweep(rds, db, queued.append, grace_s=0, now_ms=int(time.time() * 1000) + 1) == 0

