"""``screen.batch``: read a batch from the ``events:raw`` consumer group, screen it, acknowledge it.

The stream is the screening queue; a ``screen.batch`` message only wakes a reader (the web sends
one when none is queued, beat sends one every second as a keepalive). A woken reader takes batches
(each one model call and one transaction) for as long as events keep coming, up to READ_ON_S; Flower
shows each task with the events it screened as its result, and a failure or retry as that task's.
Entries stay in the group's pending list until the call that mirrors them into ``events:screened``
acknowledges them; a reader killed mid-batch leaves them pending and the next task on any process
claims them once they have been idle ``SCREENING_RECLAIM_IDLE_MS`` (XAUTOCLAIM), so a crash delays
those events by seconds, not a sweep.
A batch whose oldest event has waited past ``SCREENING_SHED_AFTER_MS`` is screened with the cascade
at ``SCREENING_SHED_BELOW`` (``shed_setting``): while screening is behind, the transformer reads only
what the n-gram model finds suspect.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
from typing import Any

import redis
from celery.signals import celeryd_after_setup, worker_process_init
from sqlalchemy.exc import OperationalError

from app import metrics, streams
from app.config import get_settings
from app.db import session_scope
from app.pipeline import screen
from app.pipeline.ingest import WAKE_KEY, WAKE_MS
from app.redis_client import get_redis
from tasks.celery_app import app, enqueue_context

log = logging.getLogger(__name__)
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError)

RECLAIM_EVERY_S = 1.0  # how often a process looks for entries its dead peers held
MAX_DELIVERIES = 10  # an entry claimed this often kills its readers (out of memory, ...): dead-letter it


def get_screener() -> screen.Screener:
    from ml.screening import get_screener as load  # heavy import kept out of web processes

    return load(get_settings().SCREENING_MODEL)


_serves_screening = False
_state: dict[str, Any] = {"consumer": None, "reclaimed_at": 0.0, "per_event_s": 0.002, "shedding": False}
BATCH_BUDGET_S = 0.5
# A reader goes on taking batches while events keep coming, for up to READ_ON_S, waiting up to
# READ_IDLE_MS for the next one: under steady traffic a new event finds a reader already waiting on
# the stream instead of costing a Celery message on each side and a trip through the broker.
READ_ON_S = 2.0
READ_IDLE_MS = 100


@celeryd_after_setup.connect
def _note_queues(sender: str, instance: Any, **_: Any) -> None:
    global _serves_screening
    _serves_screening = "screening" in instance.app.amqp.queues.consume_from


@worker_process_init.connect
def _warm_model(**_: Any) -> None:
    """Load the model when a screening pool process starts, not on its first message (other queues'
    workers import this module too, and must not pay for it)."""
    if _serves_screening:
        get_screener()
        try:
            streams.ensure_group(get_redis())
        except redis.RedisError:
            log.exception("could not create the screening consumer group; the first task will")


def consumer_name() -> str:
    """One consumer per process: what a dead process held is found under its name."""
    if _state["consumer"] is None or not _state["consumer"].endswith(f"-{os.getpid()}"):
        _state["consumer"] = f"{socket.gethostname()}-{os.getpid()}"
    return str(_state["consumer"])


@app.task(name="screen.batch", bind=True, acks_late=False, max_retries=None)
def screen_batch(self: Any, claim: list[str] | None = None) -> int:
    """Returns the number of events this reader screened and mirrored (Flower shows it)."""
    settings, client = get_settings(), get_redis()
    client.delete(WAKE_KEY)  # from here on, a new event wakes another task
    # A message from before the consumer group carried events, not ids: they are in events:raw too.
    claim = [c for c in claim or [] if isinstance(c, str)]
    done, until = 0, time.monotonic() + READ_ON_S
    while True:
        batch_size = batch_limit(settings.SCREENING_BATCH_SIZE)
        entries, claimed = take(client, batch_size, claim, block_ms=READ_IDLE_MS)  # a retry's claim never waits
        claim = []
        if not entries:
            return done
        if len(entries) >= batch_size:
            # More is waiting: wake the next reader now, not after this batch, so a backlog keeps every
            # screening process busy (woken after, one batch would follow another on one process at a time).
            wake(client)
        started = time.perf_counter()
        items, bad = decode(entries, claimed)
        if bad:
            _give_up(client, bad, "undecodable events:raw entry")
        try:
            done += screen_items(client, items)
        except TRANSIENT as exc:
            # Left pending: this retry claims them back (any reader would after RECLAIM_IDLE_MS).
            ids = [i["stream_id"] for i in items]
            _not_poison(client, ids)
            metrics.SCREEN_RETRIES.inc()
            log.warning("screen.batch: %s; %d events stay pending, retry %d", type(exc).__name__, len(items),
                        self.request.retries + 1)
            raise self.retry(kwargs={"claim": ids},
                             countdown=min(10.0, 0.5 * 2 ** self.request.retries) + random.random() / 2,
                             exc=exc) from exc
        _state["per_event_s"] = 0.7 * _state["per_event_s"] + 0.3 * (time.perf_counter() - started) / len(entries)
        if time.monotonic() >= until:
            return done


def batch_limit(most: int) -> int:
    """As many events as this process screens in about BATCH_BUDGET_S: a batch's fixed costs (its
    commit, a dozen Redis round trips, the Celery message) spread over many cheap events, while
    an expensive model keeps batches short, and far from the reclaim idle time."""
    return max(16, min(most, int(BATCH_BUDGET_S / max(_state["per_event_s"], 1e-5))))


def take(client: redis.Redis, count: int, claim: list[str] | None,
         block_ms: int = 0) -> tuple[list[tuple[str, dict]], bool]:
    """The batch: entries a retry names, else entries dead readers held, else new entries (waiting up
    to ``block_ms`` for the first, then up to LINGER_MS after the oldest was accepted, for more)."""
    me = consumer_name()
    if claim:
        return _claim(client, me, claim), True
    now = time.monotonic()
    if now - _state["reclaimed_at"] >= RECLAIM_EVERY_S:
        _state["reclaimed_at"] = now
        reclaimed = _autoclaim(client, me, count)
        if reclaimed:
            metrics.SCREEN_RECLAIMED.inc(len(reclaimed))
            wake(client)  # new entries are waiting behind these
            return reclaimed, True
    entries = _read(client, me, count, block_ms)
    if entries and len(entries) < count:
        # Wait for more while the oldest in hand is younger than the linger: bigger batches, little latency.
        oldest_ms = int(entries[0][1].get("received_at", 0))
        wait_s = (oldest_ms + get_settings().SCREENING_LINGER_MS) / 1000 - time.time()
        if wait_s > 0:
            time.sleep(wait_s)
            entries += _read(client, me, count - len(entries))
    return entries, False


def _read(client: redis.Redis, me: str, count: int, block_ms: int = 0) -> list[tuple[str, dict]]:
    try:
        reply = client.xreadgroup(streams.SCREENING_GROUP, me, {streams.RAW: ">"}, count=count,
                                  block=block_ms or None)
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        streams.ensure_group(client)
        return []
    return list(reply[0][1]) if reply else []


def _autoclaim(client: redis.Redis, me: str, count: int) -> list[tuple[str, dict]]:
    try:
        # Idle this long, an entry's reader is gone (a batch takes ~0.1 s); a slow one is handled too:
        # only one of two readers of an entry writes its row and mirrors it (RETURNING, XACK).
        reply = client.xautoclaim(streams.RAW, streams.SCREENING_GROUP, me,
                                  get_settings().SCREENING_RECLAIM_IDLE_MS, "0-0", count=count)
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        return []
    entries, deleted = list(reply[1]), list(reply[2]) if len(reply) > 2 else []
    if deleted:  # trimmed from the stream (MAXLEN) while pending: nothing left to screen
        client.xack(streams.RAW, streams.SCREENING_GROUP, *deleted)
    return _drop_poison(client, [(sid, fields) for sid, fields in entries if fields])


def _claim(client: redis.Redis, me: str, ids: list[str]) -> list[tuple[str, dict]]:
    """Claim a retried batch's own entries back (whoever holds them now; those acknowledged meanwhile
    are gone from the pending list and come back empty)."""
    claimed = client.xclaim(streams.RAW, streams.SCREENING_GROUP, me, 0, ids)
    return _drop_poison(client, [(sid, fields) for sid, fields in claimed if fields])


def _not_poison(client: redis.Redis, ids: list[str]) -> None:
    """A dependency failed, the entries did not: reset their delivery count, so an outage of any
    length never makes them look like entries that kill their readers."""
    try:
        client.xclaim(streams.RAW, streams.SCREENING_GROUP, consumer_name(), 0, ids, retrycount=0, justid=True)
    except redis.RedisError:
        pass  # Redis is what failed: the count stays, and an outage costs a claim every few seconds


def _drop_poison(client: redis.Redis, entries: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """An entry delivered MAX_DELIVERIES times keeps killing its readers: dead-letter it."""
    if not entries:
        return entries
    pending = client.xpending_range(streams.RAW, streams.SCREENING_GROUP, min=entries[0][0],
                                    max=entries[-1][0], count=len(entries) * 4)
    deliveries = {p["message_id"]: p["times_delivered"] for p in pending}
    poison = [(sid, f) for sid, f in entries if deliveries.get(sid, 0) > MAX_DELIVERIES]
    if poison:
        _give_up(client, poison, f"delivered more than {MAX_DELIVERIES} times without being screened")
    return [(sid, f) for sid, f in entries if deliveries.get(sid, 0) <= MAX_DELIVERIES]


def decode(entries: list[tuple[str, dict]], claimed: bool) -> tuple[list[dict[str, Any]], list[tuple[str, dict]]]:
    items, bad = [], []
    for sid, fields in entries:
        try:
            items.append({"event": json.loads(fields["data"]), "received_at": int(fields["received_at"]),
                          "stream_id": sid, "claimed": claimed})
        except (KeyError, ValueError):
            bad.append((sid, fields))
    return items, bad


def wake(client: redis.Redis) -> None:
    if client.set(WAKE_KEY, "1", nx=True, px=WAKE_MS):
        app.send_task("screen.batch", queue="screening")


def screen_items(client: redis.Redis, items: list[dict[str, Any]]) -> int:
    """Screen, commit, then mirror + acknowledge. A bug or bad data in one event must not cost the
    others: a batch that fails for good is screened again one event at a time, and only the events
    that fail alone go to ``events:dlq_errors`` (acknowledged, so they are not claimed forever)."""
    try:
        return _screen(client, items)
    except TRANSIENT:
        raise
    except Exception as exc:
        if len(items) == 1:
            log.exception("screen.batch: event %s failed for good", items[0]["event"].get("event_id"))
            _give_up(client, [(items[0]["stream_id"], items[0])], f"{type(exc).__name__}: {exc}")
            return 0
        log.warning("screen.batch: a batch of %d failed (%s: %.300s); screening them one by one", len(items),
                    type(exc).__name__, exc)
        return sum(screen_items(client, [item]) for item in items)


def shed_setting(items: list[dict[str, Any]], after_ms: int, below: float, now_ms: float | None = None) -> float:
    """The cascade setting this batch asks for beyond the model's own: ``below`` when its oldest event
    has waited more than ``after_ms`` (0 = never), else 0. Verdicts stay near real time while
    screening is behind; once it has caught up, the transformer reads everything it did before."""
    if not after_ms or not items:
        return 0.0
    waited_ms = (time.time() * 1000 if now_ms is None else now_ms) - min(int(i["received_at"]) for i in items)
    shedding = waited_ms > after_ms
    if shedding != _state["shedding"]:
        _state["shedding"] = shedding
        if shedding:
            log.warning("screening is %.1f s behind (SCREENING_SHED_AFTER_MS=%d): the transformer reads only what "
                        "the n-gram model scores %.2f or more until it catches up; the rest is flagged "
                        "shed_under_load", waited_ms / 1000, after_ms, below)
        else:
            log.warning("screening caught up (%.1f s behind): the transformer reads everything again",
                        waited_ms / 1000)
    return below if shedding else 0.0


def _screen(client: redis.Redis, items: list[dict[str, Any]]) -> int:
    settings = get_settings()
    shed_below = shed_setting(items, settings.SCREENING_SHED_AFTER_MS, settings.SCREENING_SHED_BELOW)
    with session_scope() as db:
        result = screen.screen_batch(items, screener=get_screener(), db=db, client=client, settings=settings,
                                     shed_below=shed_below)
    published = screen.publish(client, result, settings.STREAM_MAXLEN, settings.EMBEDDING_TTL_S)
    _record(published, len(items))
    risky = [{"platform": s.event["platform"], "event_id": s.event["event_id"]}
             for s in published if s.status == "needs_review"]
    try:
        enqueue_context(risky)  # only what this call mirrored: a claimed batch is fanned out once
    except Exception:  # the broker failed after the mirror: these are in events:reasoning_queue already
        log.exception("could not send %d risky events to reasoning; the reasoning sweeper will", len(risky))
    return len(published)


def _record(published: list[screen.Screened], batch: int) -> None:
    now_ms = time.time() * 1000
    metrics.SCREEN_BATCH_EVENTS.observe(batch)
    for item in published:
        metrics.INGEST_TO_SCREENED.observe(max(0.0, now_ms - item.received_at_ms))
        metrics.EVENTS_PROCESSED.labels("screen", item.status).inc()
        if "shed_under_load" in item.prediction["flags"]:
            metrics.SCREEN_SHED.inc()


def _give_up(client: redis.Redis, entries: list[tuple[str, Any]], error: str) -> None:
    """Dead-letter and acknowledge: the evidence is kept in events:dlq_errors with its reason."""
    metrics.EVENTS_PROCESSED.labels("screen", "dead_letter").inc(len(entries))
    settings = get_settings()
    streams.dead_letter(client, stage="screen", error=error, items=[item for _, item in entries],
                        maxlen=settings.STREAM_MAXLEN)
    client.xack(streams.RAW, streams.SCREENING_GROUP, *[sid for sid, _ in entries])
