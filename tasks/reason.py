"""``reason.decide``: a thin adapter from a queue message to app.pipeline.reason.

Decide outside any transaction (an LLM call must not hold a row lock), record in one short
transaction, and only after the commit mirror to ``events:actions_pending`` and send ``act.apply``.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

import redis
from celery.signals import worker_process_init
from sqlalchemy.exc import OperationalError

from app import metrics
from app.config import get_settings
from app.db import session_scope
from app.llm import provider_for
from app.llm.base import Provider
from app.pipeline import reason
from app.redis_client import get_redis
from app.vectorstore import StoreUnavailable
from tasks.celery_app import app, enqueue_actions
from tasks.context import give_up, use_store

log = logging.getLogger(__name__)
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OperationalError)


@lru_cache(maxsize=1)
def get_provider() -> Provider | None:
    return provider_for(get_settings())


@worker_process_init.connect
def _warm(**_: Any) -> None:
    """Build the LLM client (and its imports, ~1 s) before the first risky event is waiting on it."""
    if "reasoning" in (getattr(app.amqp.queues, "consume_from", None) or {}):
        get_provider()


@app.task(name="reason.decide", bind=True, max_retries=5, acks_late=True)
def decide(self: Any, ref: dict[str, str], gathered: dict[str, Any]) -> str:
    settings = get_settings()
    started_ms = float(gathered.get("started_at_ms") or time.time() * 1000)
    try:
        with session_scope() as db:
            event = reason.load_for_decision(db, ref)
        if event is None:
            metrics.EVENTS_PROCESSED.labels("reason", "skipped").inc()
            return "skipped"
        decision = reason.decide(event, gathered, provider=get_provider(), policy=settings.ACTION_POLICY,
                                 llm_timeout_s=settings.LLM_TIMEOUT_S,
                                 deadline=reason.deadline_for(started_ms, settings.REASONING_BUDGET_S))
        with session_scope() as db:
            action = reason.record(db, ref, decision, policy=settings.ACTION_POLICY,
                                   duration_ms=time.time() * 1000 - started_ms)
    except TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            return give_up("reason", ref, exc)
        raise self.retry(exc=exc, countdown=min(30, 2 ** self.request.retries)) from exc
    except Exception as exc:  # a bug or bad data: retrying will not help; keep the evidence
        log.exception("reason.decide failed for good for %s", ref)
        return give_up("reason", ref, exc)
    if action is None:
        metrics.EVENTS_PROCESSED.labels("reason", "duplicate").inc()
        return "duplicate"
    metrics.REASONING_DURATION.observe(time.time() * 1000 - started_ms)
    metrics.EVENTS_PROCESSED.labels("reason", decision.provider).inc()
    reason.publish(get_redis(), action, settings.STREAM_MAXLEN)
    enqueue_actions([action["action_id"]])
    if not gathered.get("precedents_unavailable"):  # else the event is not in the store: remember notes it
        _note_precedent(ref, action["action_type"])
    return action["action_id"]


def _note_precedent(ref: dict[str, str], action_type: str) -> None:
    """The precedent now says what was decided; act and appeals update the outcome later."""
    try:
        use_store(lambda store: store.record_outcome(ref["platform"], ref["event_id"], action_taken=action_type,
                                                     action_outcome="pending"))
    except StoreUnavailable:  # failed moments ago: not tried again now (the next outcome update fixes the payload)
        log.info("incident store paused, decision not noted on precedent %s", ref)
    except Exception:  # the decision stands without it; the next outcome update fixes the payload
        log.exception("could not note the decision on precedent %s", ref)
