"""``screen.batch``: a thin adapter from a queue message to app.pipeline.screen."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import redis
from celery.signals import celeryd_after_setup, worker_process_init
from celery_batches import Batches
from sqlalchemy.exc import OperationalError

from app import metrics, streams
from app.config import get_settings
from app.db import session_scope
from app.pipeline import screen
from app.redis_client import get_redis
from tasks.celery_app import app, enqueue_context

log = logging.getLogger(__name__)
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError)


def get_screener() -> screen.Screener:
    from ml.screening import get_screener as load  # heavy import kept out of web processes

    return load(get_settings().SCREENING_MODEL)


_serves_screening = False


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


MAX_ATTEMPTS = 6
MAX_GROUP_EVENTS = 256


@app.task(name="screen.batch", base=Batches, acks_late=True, flush_every=32, flush_interval=0.025)
def screen_batch(requests: list[Any]) -> int:
    """Single messages are grouped on the worker (celery-batches): every message waiting within
    25 ms, up to 32 of them, is screened in one model call and one transaction. Messages are
    acknowledged only after this returns, so a worker killed mid-batch loses nothing."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for request in requests:
        attempt = int((request.kwargs or {}).get("attempt", 0))
        groups.setdefault(attempt, []).extend(request.args[0])
    started, done = time.perf_counter(), 0
    for attempt, items in sorted(groups.items()):
        for start in range(0, len(items), MAX_GROUP_EVENTS):
            done += screen_items(items[start:start + MAX_GROUP_EVENTS], attempt)
    log.info("screened %d events from %d messages in %.1f ms", done, len(requests),
             (time.perf_counter() - started) * 1000)
    return done


def screen_items(items: list[dict[str, Any]], attempt: int = 0) -> int:
    settings, client = get_settings(), get_redis()
    try:
        with session_scope() as db:
            result = screen.screen_batch(items, screener=get_screener(), db=db, client=client,
                                         settings=settings)
        screen.publish(client, result, settings.STREAM_MAXLEN, settings.EMBEDDING_TTL_S)
        enqueue_context([{"platform": s.event["platform"], "event_id": s.event["event_id"]}
                         for s in result.screened if s.status == "needs_review"])
    except TRANSIENT as exc:
        _retry_later(client, items, attempt, exc)
        return 0
    except Exception as exc:  # a bug or bad data: retrying will not help; keep the evidence
        log.exception("screen.batch failed for good")
        _give_up(client, items, exc)
        return 0
    _record(result.screened)
    return len(result.screened)


def _retry_later(client: redis.Redis, items: list[dict[str, Any]], attempt: int, exc: BaseException) -> None:
    """A dependency hiccup: send the items again with backoff (before this message is acknowledged)."""
    if attempt + 1 >= MAX_ATTEMPTS:
        _give_up(client, items, exc)
        return
    log.warning("screen.batch: %s; retrying %d events (attempt %d)", type(exc).__name__, len(items), attempt + 1)
    try:
        app.send_task("screen.batch", args=[items], kwargs={"attempt": attempt + 1}, queue="screening",
                      countdown=min(30.0, 2.0 ** attempt + random.random()))
    except Exception:  # the broker is down too: the sweeper finds these events in events:raw later
        log.exception("could not requeue %d events; the sweeper will pick them up", len(items))


def _record(screened: list[screen.Screened]) -> None:
    now_ms = time.time() * 1000
    for item in screened:
        metrics.INGEST_TO_SCREENED.observe(max(0.0, now_ms - item.received_at_ms))
        metrics.EVENTS_PROCESSED.labels("screen", item.status).inc()


def _give_up(client: redis.Redis, items: list[dict[str, Any]], exc: BaseException) -> None:
    metrics.EVENTS_PROCESSED.labels("screen", "dead_letter").inc(len(items))
    try:
        streams.dead_letter(client, stage="screen", error=f"{type(exc).__name__}: {exc}", items=items,
                            maxlen=get_settings().STREAM_MAXLEN)
    except redis.RedisError:
        log.exception("could not write %d events to %s", len(items), streams.DLQ_ERRORS)
