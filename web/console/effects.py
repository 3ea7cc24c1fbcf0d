"""Carry out a console decision at once, so the moderator sees the platform's answer on the page.

The pipeline's own ``act.apply`` / ``act.reverse`` run in the request; a transient failure (the
platform busy, a lost connection) hands the same work to the actions queue, whose retries finish
it. The precedent store hears the outcome after the commit, as the workers tell it.
"""

from __future__ import annotations

import logging

from app.pipeline import act
from tasks.act import TRANSIENT, tell_precedents

log = logging.getLogger(__name__)


def apply_now(action_id: str) -> act.Result | None:
    """Settle the moderator's action; None when it was queued for retries instead."""
    try:
        result = act.apply(action_id)
    except TRANSIENT as exc:
        log.info("console: act.apply %s queued after %s", action_id, exc)
        _send("act.apply", [action_id])
        return None
    tell_precedents(result, result.status)
    return result


def reverse_now(action_id: str, actor: str, reason: str, *, outcome: str = "overturned") -> act.Result | None:
    """Reverse through the platform; raises act.NotReversible; None when queued for retries."""
    try:
        result = act.reverse(action_id, actor, reason=reason)
    except TRANSIENT as exc:
        log.info("console: act.reverse %s queued after %s", action_id, exc)
        _send("act.reverse", [action_id, actor, reason])
        return None
    tell_precedents(result, outcome)
    return result


def _send(name: str, args: list[str]) -> None:
    from tasks.celery_app import app as celery

    celery.send_task(name, args=args, queue="actions")


def tell_precedents_overturned(appeal: dict[str, object]) -> None:
    """An overturned appeal whose action had nothing left to reverse: the precedent still learns it."""
    from app.db import session_scope
    from app.models import Action
    from tasks.celery_app import record_outcome

    with session_scope() as db:
        action = db.get(Action, str(appeal["action_id"]))
        action_type = action.action_type if action else None
    try:
        record_outcome(str(appeal["platform"]), str(appeal["event_id"]), action_type, "overturned")
    except Exception:  # advisory, as in tasks.act.tell_precedents
        log.warning("could not record the overturn of %s for precedents", appeal["appeal_id"], exc_info=True)
