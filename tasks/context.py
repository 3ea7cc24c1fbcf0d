"""``context.gather`` and ``context.record_outcome``: thin adapters from queue messages to app.pipeline.context.

Both run on the ``reasoning`` queue, so the only processes that open the incident store are the
reasoning workers. With Qdrant's local mode (no ``QDRANT_HOST``) that must be one process:
``celery worker -Q reasoning --concurrency 1`` (see app/vectorstore.py).

The store is advisory: while it cannot be opened or fails, ``context.gather`` decides without
precedents (the decision's evidence says so) and ``context.remember`` stores the event later.
Every use of the store here goes through ``use_store``: after a failure it is left alone for
``STORE_PAUSE_S``, so the single reasoning process does not spend its time re-opening (about
0.1-0.2 s a try) or waiting on a store known to be down (a hung one: ``QDRANT_TIMEOUT_S`` a request)
while ``reason.decide`` messages queue up behind it and their budget runs out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

import redis
from celery.signals import worker_process_init
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from sqlalchemy.exc import OperationalError

from app import metrics, streams
from app.config import get_settings
from app.db import session_scope
from app.llm.embeddings import Embedder, embedder_for
from app.pipeline import context
from app.redis_client import get_redis
from app.vectorstore import IncidentStore, StoreUnavailable
from tasks.celery_app import app

log = logging.getLogger(__name__)
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError, ResponseHandlingException,
             UnexpectedResponse, StoreUnavailable)
STORE_ERRORS = (ResponseHandlingException, UnexpectedResponse, StoreUnavailable)  # unreachable, 4xx/5xx, lock
STORE_PAUSE_S = 10.0  # after a store failure, decide without precedents this long before trying it again
REMEMBER_AFTER_S = 15  # an event decided without the store is stored this long after, then with backoff
_store_paused_until = 0.0
T = TypeVar("T")


def get_embedder() -> Embedder:
    return embedder_for(get_settings())


@lru_cache(maxsize=1)
def get_store() -> IncidentStore:
    """One store per worker process, opened on first use and kept open (local mode: it holds the lock)."""
    return IncidentStore.open(get_settings(), get_embedder().dim)


@worker_process_init.connect
def _warm(**_: Any) -> None:
    """A reasoning worker loads the encoder and opens the store before its first message."""
    if "reasoning" not in (getattr(app.amqp.queues, "consume_from", None) or {}):
        return
    usable_store()  # a store that cannot be opened now is left alone for a while, as after any failure


@app.task(name="context.fan_out", acks_late=True)
def fan_out(refs: list[dict[str, str]]) -> int:
    """One message from a screening batch becomes one ``context.gather`` per risky event, so the
    screening worker pays for a single broker write however many events it flagged."""
    for ref in refs:
        app.send_task("context.gather", args=[ref], queue="reasoning")
    return len(refs)


@app.task(name="context.gather", bind=True, max_retries=5, acks_late=True)
def gather(self: Any, ref: dict[str, str]) -> str:
    started_ms = time.time() * 1000
    settings = get_settings()
    try:
        store = usable_store()
        with session_scope() as db:
            gathered = context.gather(ref, db=db, client=get_redis(), store=store, embedder=get_embedder(),
                                      top_k=settings.REASONING_TOP_K, embedding_ttl_s=settings.EMBEDDING_TTL_S)
    except TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            return give_up("context", ref, exc)
        raise self.retry(exc=exc, countdown=min(30, 2 ** self.request.retries)) from exc
    except Exception as exc:  # a bug or bad data: retrying will not help; keep the evidence
        log.exception("context.gather failed for good for %s", ref)
        return give_up("context", ref, exc)
    if gathered is None:
        metrics.EVENTS_PROCESSED.labels("context", "skipped").inc()
        return "skipped"
    gathered["started_at_ms"] = started_ms
    app.send_task("reason.decide", args=[ref, gathered], queue="reasoning")
    if gathered.get("precedents_unavailable"):
        if store is not None:  # it failed just now; one skipped while paused must not prolong the pause
            store_failed()
        app.send_task("context.remember", args=[ref], queue="reasoning", countdown=REMEMBER_AFTER_S)
        metrics.EVENTS_PROCESSED.labels("context", "gathered_without_precedents").inc()
        return "gathered_without_precedents"
    metrics.EVENTS_PROCESSED.labels("context", "gathered").inc()
    return "gathered"


def usable_store() -> IncidentStore | None:
    """The store, or None while it is known to be failing: Qdrant down must not hold every decision up
    for its connection timeout, so after a failure the store is left alone for ``STORE_PAUSE_S``."""
    if time.monotonic() < _store_paused_until:
        return None
    try:
        return get_store()
    except Exception as exc:  # unreachable, 5xx, the local folder held by another process
        log.warning("incident store unavailable, deciding without precedents: %s", exc)
        store_failed()
        return None


def store_failed() -> None:
    global _store_paused_until
    _store_paused_until = time.monotonic() + STORE_PAUSE_S


def use_store(operation: Callable[[IncidentStore], T]) -> T:
    """``operation`` on the store; ``StoreUnavailable`` at once, without touching it, while it is paused
    (see ``usable_store``). A store error pauses it and propagates."""
    store = usable_store()
    if store is None:
        raise StoreUnavailable("the incident store failed moments ago; it is left alone for a while")
    try:
        return operation(store)
    except STORE_ERRORS:
        store_failed()
        raise


@app.task(name="context.remember", bind=True, max_retries=12, acks_late=True)
def remember(self: Any, ref: dict[str, str]) -> bool:
    """Store an event decided while the store was down (see ``context.remember``); retried with backoff
    (up to about an hour) until the store takes it."""
    settings = get_settings()
    try:
        with session_scope() as db:
            return use_store(lambda store: context.remember(ref, db=db, client=get_redis(), store=store,
                                                            embedder=get_embedder(),
                                                            embedding_ttl_s=settings.EMBEDDING_TTL_S))
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            log.error("could not store %s as a precedent: %s", ref, exc)
            return False
        raise self.retry(exc=exc, countdown=min(600, REMEMBER_AFTER_S * 2 ** self.request.retries)) from exc


OUTCOME_RETRIES = 12  # 2 s doubling to 5 min: an outcome update outlasts a Qdrant outage of ~30 min


@app.task(name="context.record_outcome", bind=True, max_retries=OUTCOME_RETRIES, acks_late=True)
def record_outcome(self: Any, outcome: dict[str, Any]) -> bool:
    """``{"platform", "event_id", "action_taken", "action_outcome"}``: what really happened to a precedent.
    Retried with backoff while the store is down (each retry during its pause costs nothing), so the
    outcome of a precedent stored before an outage is not lost to a short retry budget."""
    try:
        return use_store(lambda store: store.record_outcome(outcome["platform"], outcome["event_id"],
                                                            action_taken=outcome.get("action_taken"),
                                                            action_outcome=outcome["action_outcome"]))
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 1))) from exc


def give_up(stage: str, ref: dict[str, Any], exc: BaseException) -> str:
    metrics.EVENTS_PROCESSED.labels(stage, "dead_letter").inc()
    try:
        streams.dead_letter(get_redis(), stage=stage, error=f"{type(exc).__name__}: {exc}", items=[ref],
                            maxlen=get_settings().STREAM_MAXLEN)
    except redis.RedisError:
        log.exception("could not dead-letter %s", ref)
    return "dead_letter"
