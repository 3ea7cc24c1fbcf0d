"""``act.apply``, ``act.reverse`` and ``act.expire``: thin adapters from queue messages to app.pipeline.act.

Transient failures (platform 429/5xx/409/network that outlasted the in-process retries, a broken
database or Redis connection) are retried by Celery after the platform's own wait or the
exponential backoff with jitter, whichever is longer (so retries outlast an outage of many
minutes: bench.faults platform-outage); the last failure, and any bug, settles the action as failed and
dead-letters it so nothing stays pending in silence.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from sqlalchemy.exc import OperationalError

from app.db import session_scope
from app.pipeline import act
from app.platforms.outbound import TransientError
from app.platforms.outbound.http import after, backoff
from tasks.celery_app import app, record_outcome

log = logging.getLogger(__name__)
TRANSIENT = (TransientError, redis.ConnectionError, redis.TimeoutError, OperationalError)
MAX_RETRIES = 12  # with the backoff below: 12 to 24 minutes (about 18) of trying before giving up
BACKOFF_BASE_S = 1.0


def countdown(exc: BaseException, retries: int) -> float:
    """The platform's own wait, but never less than the exponential backoff for this retry: a platform
    answering 429 with a short Retry-After (or 503s, whose inline retries leave a sub-second hint) for
    minutes must not use up every retry in under a minute and fail actions it would have taken later."""
    retry_after = getattr(exc, "retry_after", None)
    grown = backoff(retries, base=BACKOFF_BASE_S)
    if retry_after is not None and retry_after > 0:
        return max(after(retry_after), grown)
    return grown


def describe(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"


def deliveries_before(request: Any) -> int:
    """Earlier deliveries of this message: Celery retries, plus one if the broker redelivered it after a
    worker died (that first attempt may have reached the platform)."""
    redelivered = bool((request.delivery_info or {}).get("redelivered"))
    return int(request.retries) + int(redelivered)


def tell_precedents(result: act.Result, outcome: str) -> None:
    """Similar-incident search should see what really happened (after the commit; best effort)."""
    action = result.action
    if result.duplicate or not action.get("event_id"):
        return
    try:
        record_outcome(action["platform"], action["event_id"], action.get("action_type"), outcome)
    except Exception:  # the precedent store is advisory; never fail an applied action over it
        log.warning("could not record the outcome of %s for precedents", result.action_id, exc_info=True)


@app.task(name="act.apply", bind=True, max_retries=MAX_RETRIES, acks_late=True)
def apply(self: Any, action_id: str) -> str:
    try:
        result = act.apply(action_id, delivery=deliveries_before(self.request))
        tell_precedents(result, result.status)
        return result.status
    except TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            return act.give_up(action_id, f"gave up after {self.request.retries + 1} deliveries: {describe(exc)}",
                               delivery=self.request.retries).status
        log.info("act.apply %s: %s; retrying", action_id, describe(exc))
        raise self.retry(exc=exc, countdown=countdown(exc, self.request.retries)) from exc
    except act.ActionNotFound as exc:
        act.report_missing(action_id, str(exc))
        return "missing"
    except Exception as exc:  # a bug or bad data: retrying will not help; keep the evidence
        log.exception("act.apply %s failed for good", action_id)
        return act.give_up(action_id, describe(exc), delivery=self.request.retries).status


@app.task(name="act.reverse", bind=True, max_retries=MAX_RETRIES, acks_late=True)
def reverse(self: Any, action_id: str, actor: str, reason: str = "") -> str:
    try:
        result = act.reverse(action_id, actor, reason=reason, delivery=deliveries_before(self.request))
        tell_precedents(result, "overturned" if actor.startswith("moderator") else "reversed")
        return result.status
    except TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            return act.give_up_reverse(action_id, actor, describe(exc), delivery=self.request.retries).status
        raise self.retry(exc=exc, countdown=countdown(exc, self.request.retries)) from exc
    except (act.ActionNotFound, act.NotReversible) as exc:
        log.warning("act.reverse %s refused: %s", action_id, exc)
        return "refused"
    except Exception as exc:
        log.exception("act.reverse %s failed for good", action_id)
        return act.give_up_reverse(action_id, actor, describe(exc), delivery=self.request.retries).status


@app.task(name="act.expire", acks_late=True)
def expire() -> int:
    """Lift temporary bans whose time is up (beat runs it every minute)."""
    with session_scope() as db:
        due = act.expired_temporary_bans(db)
    for action_id in due:
        app.send_task("act.reverse", args=[action_id, "system:expiry", "ban duration ended"], queue="actions")
    return len(due)
