"""``context.gather`` and ``context.record_outcome``: thin adapters from queue messages to app.pipeline.context.

Both run on the ``reasoning`` queue, so the only processes that open the incident store are the
reasoning workers. With Qdrant's local mode (no ``QDRANT_HOST``) that must be one process:
``celery worker -Q reasoning --concurrency 1`` (see app/vectorstore.py).
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

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
    try:
        get_store()
    except Exception:  # the first task will retry and report it properly
        log.exception("could not open the incident store at worker start")


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
        with session_scope() as db:
            gathered = context.gather(ref, db=db, client=get_redis(), store=get_store(), embedder=get_embedder(),
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
    metrics.EVENTS_PROCESSED.labels("context", "gathered").inc()
    return "gathered"


@app.task(name="context.record_outcome", bind=True, max_retries=5, acks_late=True)
def record_outcome(self: Any, outcome: dict[str, Any]) -> bool:
    """``{"platform", "event_id", "action_taken", "action_outcome"}``: what really happened to a precedent."""
    try:
        return get_store().record_outcome(outcome["platform"], outcome["event_id"],
                                          action_taken=outcome.get("action_taken"),
                                          action_outcome=outcome["action_outcome"])
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(30, 2 ** self.request.retries)) from exc


def give_up(stage: str, ref: dict[str, Any], exc: BaseException) -> str:
    metrics.EVENTS_PROCESSED.labels(stage, "dead_letter").inc()
    try:
        streams.dead_letter(get_redis(), stage=stage, error=f"{type(exc).__name__}: {exc}", items=[ref],
                            maxlen=get_settings().STREAM_MAXLEN)
    except redis.RedisError:
        log.exception("could not dead-letter %s", ref)
    return "dead_letter"
