"""The review queue: events a person must decide, claimed one moderator at a time, then resolved.

A claim is a Redis key with a TTL (``console:claim:{platform}:{event_id}`` holding the moderator's
name), so a moderator who walks away frees the item without anyone cleaning up. Deciding an item
needs its claim. An approved or changed decision becomes an action row with provider
``moderator`` that ``act.apply`` settles like any other, so the platform call, its retries, the
audit row and the stream mirror are the pipeline's own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import and_, func, or_, select

from app.db import session_scope
from app.models import Action, AuditLog, Event

PAGE_SIZE = 50
DECISIONS = ("approve", "change", "dismiss")
ACTION_CHOICES = ("warning", "timeout", "mute", "ban", "delete_message")
TIMED = ("timeout", "mute", "ban")
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class ReviewError(ValueError):
    """A decision that cannot be taken; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Filters:
    platform: str = ""
    channel: str = ""
    category: str = ""

    def where(self) -> list[Any]:
        clauses: list[Any] = [Event.status == "needs_review"]
        if self.platform:
            clauses.append(Event.platform == self.platform)
        if self.channel:
            clauses.append(Event.channel_id == self.channel)
        if self.category:
            clauses.append(Event.risk_category == self.category)
        return clauses


def claim_key(platform: str, event_id: str) -> str:
    return f"console:claim:{platform}:{event_id}"


def claim(client: redis.Redis, platform: str, event_id: str, moderator: str, ttl_s: int) -> str:
    """Lock the item to ``moderator`` (or extend their lock); returns whoever holds it afterwards."""
    key = claim_key(platform, event_id)
    if client.set(key, moderator, nx=True, ex=ttl_s):
        return moderator
    holder = _text(client.get(key))
    if holder == moderator:
        client.expire(key, ttl_s)
    elif holder is None:  # expired between the two calls
        return claim(client, platform, event_id, moderator, ttl_s)
    return holder


def release(client: redis.Redis, platform: str, event_id: str, moderator: str) -> None:
    client.eval(_RELEASE, 1, claim_key(platform, event_id), moderator)


def holders(client: redis.Redis, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    if not keys:
        return {}
    values = client.mget([claim_key(p, e) for p, e in keys])
    return {key: _text(v) for key, v in zip(keys, values, strict=True) if v is not None}  # type: ignore[misc]


def page(client: redis.Redis, filters: Filters, page_no: int) -> dict[str, Any]:
    """One page of the queue, riskiest first and then oldest, with each item's claim and recommendation."""
    with session_scope() as db:
        total = db.scalar(select(func.count()).select_from(Event).where(*filters.where())) or 0
        rows = db.scalars(select(Event).where(*filters.where())
                          .order_by(Event.risk_score.desc().nulls_last(), Event.received_at)
                          .offset((page_no - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        reviews = _review_actions(db, rows)
        items = [_item(e, reviews.get((e.platform, e.event_id))) for e in rows]
    claimed = holders(client, [(i["platform"], i["event_id"]) for i in items])
    for item in items:
        item["claimed_by"] = claimed.get((item["platform"], item["event_id"]))
    return {"items": items, "total": total, "page": page_no, "pages": max(1, -(-total // PAGE_SIZE))}


def resolve(client: redis.Redis, platform: str, event_id: str, *, moderator: str, decision: str,
            action_type: str | None = None, duration_hours: float | None = None, note: str = "",
            claim_ttl_s: int = 600) -> str | None:
    """Take the decision; returns the new action's id (None for a dismissal). The caller applies it."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}", 400)
    holder = claim(client, platform, event_id, moderator, claim_ttl_s)
    if holder != moderator:
        raise ReviewError(f"{holder} is working on this item")
    with session_scope() as db:
        event = db.scalars(select(Event).where(Event.platform == platform, Event.event_id == event_id)
                           .with_for_update()).first()
        if event is None:
            raise ReviewError(f"no event {platform}:{event_id}", 404)
        if event.status != "needs_review":
            raise ReviewError(f"event {event_id} is no longer waiting for review (it is {event.status})")
        action_id = _decide(db, event, moderator, decision, action_type, duration_hours, note)
    release(client, platform, event_id, moderator)
    return action_id


def recommended(db: Any, event: Event) -> str:
    """What the reasoning stage asked for before a gate handed the event to a person (else a warning)."""
    detail = db.scalar(select(AuditLog.detail).where(AuditLog.event_id == event.event_id,
                                                     AuditLog.platform == event.platform,
                                                     AuditLog.kind == "action.review").order_by(AuditLog.id.desc()))
    chosen = ((detail or {}).get("recommended") or {}).get("action_type")
    return chosen if chosen in ACTION_CHOICES else "warning"


def _decide(db: Any, event: Event, moderator: str, decision: str, action_type: str | None,
            duration_hours: float | None, note: str) -> str | None:
    if decision == "dismiss":
        event.status = "decided"
        db.add(AuditLog(actor=f"moderator:{moderator}", kind="console.review_dismissed", event_id=event.event_id,
                        platform=event.platform, detail={"note": note}))
        return None
    chosen = recommended(db, event) if decision == "approve" else action_type
    if chosen not in ACTION_CHOICES:
        raise ReviewError(f"action must be one of {', '.join(ACTION_CHOICES)}", 400)
    if db.scalar(select(Action.action_id).where(Action.platform == event.platform, Action.event_id == event.event_id,
                                               Action.action_type == chosen)):
        raise ReviewError(f"this event already has a {chosen} action")
    action = Action(action_id=f"mod-{uuid.uuid4().hex[:20]}", event_id=event.event_id, platform=event.platform,
                    user_id=event.author_id, action_type=chosen,
                    duration_hours=duration_hours if chosen in TIMED else None,
                    reason_code=f"moderator_{event.risk_category or 'review'}", reasoning=note,
                    confidence=1.0, policy="moderator", provider="moderator", status="pending",
                    evidence_chain=[{"kind": "moderator", "ref": moderator,
                                     "detail": f"{decision}: {chosen}" + (f" ({note})" if note else "")}])
    db.add(action)
    event.status = "decided"
    db.add(AuditLog(actor=f"moderator:{moderator}", kind="console.review_decided", event_id=event.event_id,
                    action_id=action.action_id, platform=event.platform,
                    detail={"decision": decision, "action_type": chosen, "duration_hours": duration_hours,
                            "note": note}))
    return action.action_id


def _review_actions(db: Any, events: list[Event]) -> dict[tuple[str, str], list[Action]]:
    if not events:
        return {}
    keys = [and_(Action.platform == e.platform, Action.event_id == e.event_id) for e in events]
    out: dict[tuple[str, str], list[Action]] = {}
    for action in db.scalars(select(Action).where(or_(*keys)).order_by(Action.created_at)):
        out.setdefault((action.platform, action.event_id), []).append(action)
    return out


def _why(actions: list[Action]) -> str:
    """Why a person sees it: the gate that handed it over, or what the pipeline did so far."""
    for action in actions:
        gates = [link.get("detail") for link in action.evidence_chain or [] if link.get("kind") == "gate"]
        if action.action_type == "human_review":
            return str(gates[-1]) if gates else "the reasoning stage asked for a person"
    if actions:
        return "; ".join(f"automatic {a.action_type}: {a.status}" for a in actions)
    return "risk over the threshold; no automatic decision yet"


def _item(event: Event, actions: list[Action] | None) -> dict[str, Any]:
    return {"event_id": event.event_id, "platform": event.platform, "channel_id": event.channel_id,
            "author_id": event.author_id, "user_id": event.user_id, "content": event.content[:300],
            "risk_score": event.risk_score, "risk_category": event.risk_category, "flags": event.flags or [],
            "received_at": event.received_at.isoformat(), "why": _why(actions or [])}


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
