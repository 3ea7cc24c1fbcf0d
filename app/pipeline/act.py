"""The act stage: a pending action through the safety gates and the policy to the platform, once.

``apply`` locks the action row (``SELECT ... FOR UPDATE``) and works only while it is still
``pending``, so a redelivered or replayed message finds the settled row and does nothing; the row
lock also makes a concurrent duplicate wait for the first to finish. The platform call happens
inside that transaction: if the worker dies mid-call the row stays pending and the redelivery
calls again, which the platforms absorb (a timeout or ban set twice is the same state, deleting a
deleted message is success, web callbacks carry an idempotency key, Discord DMs a nonce).

Every outcome is written to ``audit_log`` (append-only) with the evidence chain, the actor and
the platform's response status, then mirrored to ``events:actions_applied``, or to
``events:dlq_errors`` when it failed for good. Outcomes and statuses:

* ``applied``: the platform call succeeded (``human_review`` actions are "applied" by handing the
  event to moderators, with event status ``needs_review``);
* ``dry_run``: decided and recorded, not sent (``ACTIONS_DRY_RUN``, ``DRY_RUN_CHANNELS``, or no
  credentials for the platform);
* ``skipped``: nothing to do (action ``none``) or the user is exempt;
* ``failed``: a permanent platform error, or transient ones past the last retry;
* ``reversed``: undone by a moderator (``reverse``) or at expiry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session as DbSession

from app import metrics, policies, streams
from app.config import Settings, get_settings
from app.console import policy_store
from app.db import session_scope
from app.models import Action, AuditLog, Event, User
from app.platforms import outbound
from app.platforms.outbound import ActionRequest, Outcome, PermanentError
from app.platforms.outbound.http import RateLimiter, Transport
from app.redis_client import get_redis

log = logging.getLogger(__name__)
SYSTEM = "system"
MODERATOR = "moderator"  # Action.provider of a decision a person took in the console
VIOLATIONS = outbound.SANCTIONS
SCOPE_KEYS = ("guild_id", "broadcaster_id", "tenant_id", "team_id")
REASON_CHARS = 400
ACTION_FIELDS = ("action_id", "event_id", "action_type", "duration_hours", "user_id", "platform", "reason_code",
                 "reasoning", "confidence", "evidence_chain", "policy", "provider", "status")


class ActionNotFound(LookupError):
    pass


class NotReversible(ValueError):
    """Only an applied sanction can be reversed."""


@dataclass
class Result:
    """What happened to one action: the row's status and the audit entry written (``kind``)."""

    action_id: str
    status: str
    kind: str
    action: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def duplicate(self) -> bool:
        return self.kind == "duplicate"


def apply(action_id: str, *, delivery: int = 0, transport: Transport | None = None) -> Result:
    """Settle a pending action. Transient platform/DB errors propagate (nothing written) for a retry."""
    client = get_redis()
    settings = policy_store.effective(get_settings(), client)
    with session_scope() as db:
        action = _locked(db, action_id)
        if action.status != "pending":
            return Result(action_id, action.status, "duplicate")
        event = _event(db, action)
        transport = transport or make_transport(settings, client)
        result = _settle(db, client, settings, action, event, delivery, transport)
    publish(client, settings, result)
    return result


def give_up(action_id: str, error: str, *, delivery: int = 0) -> Result:
    """The last retry failed: mark the action failed, audit it and dead-letter it (once)."""
    settings, client = get_settings(), get_redis()
    with session_scope() as db:
        action = _locked(db, action_id)
        if action.status != "pending":
            return Result(action_id, action.status, "duplicate")
        result = _finish(db, action, _event(db, action), status="failed", kind="action.failed",
                         detail=_base_detail(action) | {"error": error, "delivery": delivery})
    publish(client, settings, result)
    return result


def report_missing(action_id: str, error: str) -> None:
    """A message for an action with no row (the decision's transaction never committed): dead-letter it."""
    log.error("act: %s", error)
    settings = get_settings()
    streams.dead_letter(get_redis(), stage="act", error=error, maxlen=settings.STREAM_MAXLEN,
                        items=[{"event_id": "", "platform": None, "action_id": action_id}])


def _settle(db: DbSession, client: redis.Redis, settings: Settings, action: Action, event: Event | None,
            delivery: int, transport: Transport) -> Result:
    detail = _base_detail(action) | {"delivery": delivery}
    if action.action_type == "none":
        return _finish(db, action, event, status="skipped", kind="action.skipped",
                       detail=detail | {"reason": "no action recommended"})
    if action.action_type == "human_review":
        return _to_review(db, action, event, detail, "recommended by the reasoning stage")
    if event is None:
        return _finish(db, action, None, status="failed", kind="action.failed",
                       detail=detail | {"error": f"event {action.platform}:{action.event_id} not found"})
    if action.provider == MODERATOR:
        return _settle_moderator(db, settings, action, event, detail, delivery, transport)
    exempt = policies.exemption(settings, action.platform, action.user_id, event.author_id, event.event_metadata)
    if exempt:
        return _finish(db, action, event, status="skipped", kind="action.skipped", detail=detail | {"reason": exempt})
    if "model_uncertain" in (event.flags or []):
        # Whoever decided (an LLM too), a sanction never rests on a message the screening model
        # could not read: unfamiliar wording, a very short line, or its two models disagreeing.
        return _to_review(db, action, event, detail, "the screening model could not read this message well "
                                                     f"(confidence {event.confidence or 0:.2f}, flags "
                                                     f"{', '.join(event.flags)})")
    if action.confidence < settings.ACTION_MIN_CONFIDENCE:
        return _to_review(db, action, event, detail, f"confidence {action.confidence:.2f} is below "
                                                     f"ACTION_MIN_CONFIDENCE {settings.ACTION_MIN_CONFIDENCE:.2f}")
    shadow = policies.dry_run_reason(settings, action.platform, event.channel_id,
                                     outbound.configured(action.platform, settings))
    step = _apply_policy(db, settings, action, detail, shadow is not None, event.channel_id)
    if step is None:
        return _finish(db, action, event, status="skipped", kind="action.skipped", detail=detail)
    now = _now()
    if shadow:
        return _finish(db, action, event, status="dry_run", kind="action.dry_run", applied_at=now,
                       expires_at=policies.expires_at(step, now),
                       detail=detail | {"dry_run": True, "reason": shadow})
    if not policies.take_quota(client, action.platform, action.action_id, settings.DAILY_ACTION_QUOTA, now):
        return _to_review(db, action, event, detail, f"daily action quota of {settings.DAILY_ACTION_QUOTA} "
                                                     f"for {action.platform} is spent")
    return _call_platform(db, settings, action, event, step, detail, delivery, transport)


def _settle_moderator(db: DbSession, settings: Settings, action: Action, event: Event, detail: dict[str, Any],
                      delivery: int, transport: Transport) -> Result:
    """A moderator's decision from the console: the person chose the sanction, so the automatic
    gates (exemption, model uncertainty, confidence, quota) and the policy's sizing stand aside;
    a dry-run scope still records it without calling the platform."""
    step = policies.with_default_duration(policies.Step(action.action_type, action.duration_hours))
    action.duration_hours = step.duration_hours
    detail.update(action_type=step.action_type, duration_hours=step.duration_hours)
    shadow = policies.dry_run_reason(settings, action.platform, event.channel_id,
                                     outbound.configured(action.platform, settings))
    if shadow:
        now = _now()
        return _finish(db, action, event, status="dry_run", kind="action.dry_run", applied_at=now,
                       expires_at=policies.expires_at(step, now), detail=detail | {"dry_run": True, "reason": shadow})
    return _call_platform(db, settings, action, event, step, detail, delivery, transport)


def _apply_policy(db: DbSession, settings: Settings, action: Action, detail: dict[str, Any],
                  shadow: bool, channel_id: str) -> policies.Step | None:
    """Let the scope's policy size the sanction; None when the result would duplicate another action row."""
    policy = policies.policy_for(policies.policy_name(settings, action.platform, channel_id))
    prior = prior_violations(db, action, window_days=settings.ESCALATION_WINDOW_DAYS, include_dry_run=shadow)
    step, note = policy.decide(policies.Step(action.action_type, action.duration_hours), prior)
    detail.update(policy=policy.name, policy_note=note, prior_violations=prior)
    if step.action_type != action.action_type and _taken(db, action, step.action_type):
        detail["reason"] = f"the policy chose {step.action_type}, already an action for this event"
        return None
    action.action_type, action.duration_hours, action.policy = step.action_type, step.duration_hours, policy.name
    action.evidence_chain = [*action.evidence_chain, {"kind": "policy", "ref": policy.name, "detail": note}]
    detail.update(action_type=step.action_type, duration_hours=step.duration_hours,
                  evidence_chain=action.evidence_chain)
    return step


def _call_platform(db: DbSession, settings: Settings, action: Action, event: Event, step: policies.Step,
                   detail: dict[str, Any], delivery: int, transport: Transport) -> Result:
    now = _now()
    expires = policies.expires_at(step, now)
    request = action_request(action, event, delivery=delivery, expires_at=expires)
    try:
        outcome = outbound.client_for(action.platform, settings, transport).apply(request)
    except PermanentError as exc:
        return _finish(db, action, event, status="failed", kind="action.failed",
                       detail=detail | _error_detail(exc))
    if outcome.expires_at:
        expires = datetime.fromisoformat(outcome.expires_at.replace("Z", "+00:00"))
    result = _finish(db, action, event, status="applied", kind="action.applied", applied_at=now, expires_at=expires,
                     detail=detail | outcome.as_detail())
    _count_violation(db, action, +1)
    event.status = "actioned"
    return result


def _to_review(db: DbSession, action: Action, event: Event | None, detail: dict[str, Any], why: str) -> Result:
    """Hand the decision to a moderator instead of acting; the recommendation stays in the audit detail."""
    if action.action_type != "human_review" and _taken(db, action, "human_review"):
        return _finish(db, action, event, status="skipped", kind="action.skipped",
                       detail=detail | {"reason": f"{why}; a review is already open for this event"})
    action.action_type, action.duration_hours = "human_review", None
    action.evidence_chain = [*action.evidence_chain, {"kind": "gate", "ref": "human_review", "detail": why}]
    if event is not None:
        event.status = "needs_review"
    return _finish(db, action, event, status="applied", kind="action.review", applied_at=_now(),
                   detail=detail | {"action_type": "human_review", "reason": why,
                                    "evidence_chain": action.evidence_chain})


def reverse(action_id: str, actor: str, *, reason: str = "", delivery: int = 0,
            transport: Transport | None = None) -> Result:
    """Undo an applied sanction through the platform and record who did it.

    A reversal in a dry-run scope is recorded without a platform call, like the actions there.
    """
    client = get_redis()
    settings = policy_store.effective(get_settings(), client)
    with session_scope() as db:
        action = _locked(db, action_id)
        if action.status == "reversed":
            return Result(action_id, action.status, "duplicate")
        check_reversible(action)
        event = _event(db, action)
        detail = _base_detail(action) | {"delivery": delivery, "reversal_reason": reason}
        result = _reverse_locked(db, settings, client, action, event, actor, reason, detail,
                                 transport or make_transport(settings, client))
    publish(client, settings, result)
    return result


def _reverse_locked(db: DbSession, settings: Settings, client: redis.Redis, action: Action, event: Event | None,
                    actor: str, reason: str, detail: dict[str, Any], transport: Transport) -> Result:
    channel = event.channel_id if event else ""
    shadow = policies.dry_run_reason(settings, action.platform, channel,
                                     outbound.configured(action.platform, settings))
    if shadow:
        outcome = Outcome(request="", note=f"dry run: {shadow}")
    else:
        request = action_request(action, event, delivery=detail["delivery"], reason=_reversal_text(actor, reason))
        try:
            outcome = outbound.client_for(action.platform, settings, transport).reverse(request)
        except PermanentError as exc:
            return _audit_only(db, action, actor, "action.reverse_failed", detail | _error_detail(exc))
    result = _finish(db, action, event, status="reversed", kind="action.reversed", actor=actor,
                     detail=detail | outcome.as_detail() | {"dry_run": bool(shadow)})
    _count_violation(db, action, -1)
    return result


def give_up_reverse(action_id: str, actor: str, error: str, *, delivery: int = 0) -> Result:
    settings, client = get_settings(), get_redis()
    with session_scope() as db:
        action = _locked(db, action_id)
        if action.status != "applied":
            return Result(action_id, action.status, "duplicate")
        result = _audit_only(db, action, actor, "action.reverse_failed",
                             _base_detail(action) | {"error": error, "delivery": delivery})
    publish(client, settings, result)
    return result


def check_reversible(action: Action) -> None:
    if action.status != "applied" or action.action_type not in VIOLATIONS:
        raise NotReversible(f"action {action.action_id} is {action.status} {action.action_type}; "
                            "only an applied sanction can be reversed")


def expired_temporary_bans(db: DbSession, now: datetime | None = None) -> list[str]:
    """Applied bans whose duration is over. Timeouts and mutes end on the platform by themselves;
    a ban does not, so it is lifted by reversing it (actor ``system:expiry``)."""
    rows = db.scalars(select(Action.action_id).where(
        Action.status == "applied", Action.action_type == "ban", Action.expires_at.is_not(None),
        Action.expires_at <= (now or _now()), Action.platform.in_(("discord", "twitch"))).limit(500))
    return list(rows)


def action_request(action: Action, event: Event | None, *, delivery: int, expires_at: datetime | None = None,
                   reason: str | None = None) -> ActionRequest:
    metadata = event.event_metadata if event else {}
    message_id = metadata.get("message_id")
    return ActionRequest(
        action_id=action.action_id, event_id=action.event_id, platform=action.platform,
        action_type=action.action_type, user_id=action.user_id, channel_id=event.channel_id if event else "",
        message_id=str(message_id) if message_id else None,
        duration_s=int(action.duration_hours * 3600) if action.duration_hours else None,
        reason_code=action.reason_code,
        reason=(reason or f"{action.reason_code} (safety action {action.action_id})")[:REASON_CHARS],
        scope={key: metadata[key] for key in SCOPE_KEYS if metadata.get(key)},
        expires_at=expires_at.isoformat() if expires_at else None, delivery=delivery)


def prior_violations(db: DbSession, action: Action, *, window_days: int, include_dry_run: bool) -> int:
    """The user's sanctions on this platform within the window (shadow mode also counts shadow ones)."""
    statuses = ("applied", "dry_run") if include_dry_run else ("applied",)
    since = _now() - timedelta(days=window_days)
    return db.scalar(select(func.count()).select_from(Action).where(
        Action.platform == action.platform, Action.user_id == action.user_id,
        Action.action_id != action.action_id, Action.action_type.in_(VIOLATIONS),
        Action.status.in_(statuses), Action.applied_at >= since)) or 0


def make_transport(settings: Settings, client: redis.Redis) -> Transport:
    return Transport(outbound.shared_http(), RateLimiter(client), timeout_s=settings.ACTION_HTTP_TIMEOUT_S,
                     max_inline_wait_s=settings.ACTION_MAX_INLINE_WAIT_S)


def publish(client: redis.Redis, settings: Settings, result: Result) -> None:
    """After commit: the outcome to ``events:actions_applied``, or a failure to ``events:dlq_errors``."""
    metrics.EVENTS_PROCESSED.labels("act", result.kind.removeprefix("action.")).inc()
    event_id, platform = result.action.get("event_id", ""), result.action.get("platform")
    if result.kind in ("action.failed", "action.reverse_failed"):
        metrics.ACTION_FAILED.labels(platform or "", _failure_label(result.detail)).inc()
        streams.dead_letter(client, stage="act", error=str(result.detail.get("error", "")),
                            maxlen=settings.STREAM_MAXLEN,
                            items=[{"event_id": event_id, "platform": platform, "action_id": result.action_id,
                                    "outcome": result.kind, "detail": result.detail}])
        return
    data = result.action | {"outcome": result.kind, "reason": result.detail.get("reason"),
                            "platform_status": result.detail.get("platform_status"),
                            "dry_run": bool(result.detail.get("dry_run"))}
    pipe = client.pipeline(transaction=False)
    streams.add_many(pipe, streams.ACTIONS_APPLIED, [streams.entry(event_id, platform, data, action_id=result.action_id,
                                                                   status=result.status)], settings.STREAM_MAXLEN)
    pipe.execute()


def _finish(db: DbSession, action: Action, event: Event | None, *, status: str, kind: str, detail: dict[str, Any],
            actor: str = SYSTEM, applied_at: datetime | None = None, expires_at: datetime | None = None) -> Result:
    action.status = status
    if applied_at is not None:
        action.applied_at, action.expires_at = applied_at, expires_at
    return _audit_only(db, action, actor, kind, detail, event_id=event.event_id if event else action.event_id)


def _audit_only(db: DbSession, action: Action, actor: str, kind: str, detail: dict[str, Any],
                event_id: str | None = None) -> Result:
    db.add(AuditLog(actor=actor, kind=kind, event_id=event_id or action.event_id, action_id=action.action_id,
                    platform=action.platform, detail=_jsonable(detail)))
    db.flush()
    return Result(action.action_id, action.status, kind, action_dict(action), detail)


def action_dict(action: Action) -> dict[str, Any]:
    out = {name: getattr(action, name) for name in ACTION_FIELDS}
    out["applied_at"] = action.applied_at.isoformat() if action.applied_at else None
    out["expires_at"] = action.expires_at.isoformat() if action.expires_at else None
    return out


def _base_detail(action: Action) -> dict[str, Any]:
    return {"action_type": action.action_type, "duration_hours": action.duration_hours,
            "recommended": {"action_type": action.action_type, "duration_hours": action.duration_hours},
            "reason_code": action.reason_code, "confidence": action.confidence, "policy": action.policy,
            "provider": action.provider, "evidence_chain": action.evidence_chain}


def _error_detail(exc: PermanentError) -> dict[str, Any]:
    return {"error": exc.reason, "platform_request": exc.request, "platform_status": exc.status,
            "platform_code": exc.code, "attempts": exc.attempts}


def _failure_label(detail: dict[str, Any]) -> str:
    status = detail.get("platform_status")
    return f"http_{status}" if status else str(detail.get("platform_code") or "error")[:32]


def _reversal_text(actor: str, reason: str) -> str:
    return f"reversed by {actor}" + (f": {reason}" if reason else "")


def _count_violation(db: DbSession, action: Action, delta: int) -> None:
    if action.action_type not in VIOLATIONS:
        return
    if delta > 0:
        db.execute(pg_insert(User).values(platform=action.platform, user_id=action.user_id, violation_count=delta)
                   .on_conflict_do_update(index_elements=["platform", "user_id"],
                                          set_={"violation_count": User.violation_count + delta}))
    else:
        db.execute(update(User).where(User.platform == action.platform, User.user_id == action.user_id)
                   .values(violation_count=func.greatest(User.violation_count + delta, 0)))


def _locked(db: DbSession, action_id: str) -> Action:
    action = db.scalars(select(Action).where(Action.action_id == action_id).with_for_update()).first()
    if action is None:
        raise ActionNotFound(f"no action {action_id!r}")
    return action


def _event(db: DbSession, action: Action) -> Event | None:
    return db.scalars(select(Event).where(Event.platform == action.platform,
                                          Event.event_id == action.event_id)).first()


def _taken(db: DbSession, action: Action, action_type: str) -> bool:
    """Whether another row already holds (platform, event, action_type): the unique key forbids a second."""
    return (db.scalar(select(func.count()).select_from(Action).where(
        Action.platform == action.platform, Action.event_id == action.event_id,
        Action.action_type == action_type, Action.action_id != action.action_id)) or 0) > 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _now() -> datetime:
    return datetime.now(UTC)
