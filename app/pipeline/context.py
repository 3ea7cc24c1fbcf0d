"""Context: everything the reasoning stage weighs for one risky event, gathered in one pass.

1. the event row, which must still be ``needs_review`` with no action (anything else: nothing to do,
   so a redelivered or swept message is harmless);
2. its embedding: reused from ``embedding:{event_id}`` or computed once and cached (7 days);
3. the k most similar past incidents from Qdrant, then the event itself is upserted so later
   events find it (the event never finds itself). Qdrant unreachable or failing does not hold the
   decision up: the context has no precedents, says so (``precedents_unavailable``) and the event
   is stored later (``remember``);
4. the author's history from PostgreSQL (``users`` and earlier ``actions``);
5. the conversation's aggregate: Redis ``session:{session_id}``, or the ``sessions`` snapshot once
   the live copy has expired.

The result is a small JSON-able dict (no chat text, no vectors) handed to ``reason.decide``. A new
deployment has no precedents and no history: the dict simply says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis
from sqlalchemy import exists, select
from sqlalchemy.orm import Session as DbSession

from app.llm import embeddings
from app.llm.embeddings import Embedder
from app.models import Action, Event, User
from app.models import Session as SessionRow
from app.sessions import read_state, session_key, to_contract
from app.vectorstore import Incident, IncidentStore

log = logging.getLogger(__name__)
SANCTIONS = ("warning", "timeout", "mute", "ban", "delete_message")
COUNTED_STATUSES = ("pending", "applied", "dry_run")  # decided against the author and not undone
RECENT_ACTIONS = 10
PILE_ON_AUTHORS = 3
STORE_UNAVAILABLE = "the incident store could not be opened"


def load_event(db: DbSession, platform: str, event_id: str) -> Event | None:
    return db.scalar(select(Event).where(Event.platform == platform, Event.event_id == event_id))


def has_action(db: DbSession, platform: str, event_id: str) -> bool:
    return bool(db.scalar(select(exists().where(Action.platform == platform, Action.event_id == event_id))))


def awaiting_decision(db: DbSession, event: Event | None) -> bool:
    return event is not None and event.status == "needs_review" and not has_action(db, event.platform,
                                                                                    event.event_id)


def gather(ref: dict[str, str], *, db: DbSession, client: redis.Redis, store: IncidentStore | None,
           embedder: Embedder, top_k: int, embedding_ttl_s: int) -> dict[str, Any] | None:
    """The context for ``reason.decide``, or None when the event needs no decision (any more).

    ``store`` None (it could not be opened) or failing: the context has no precedents and says why
    in ``precedents_unavailable``; the event is not stored, which ``remember`` does later."""
    event = load_event(db, ref["platform"], ref["event_id"])
    if event is None or not awaiting_decision(db, event):
        return None
    vector, reused = embedding(client, embedder, event, embedding_ttl_s)
    precedents: list[dict[str, Any]] = []
    unavailable = STORE_UNAVAILABLE if store is None else None
    if store is not None:
        try:
            precedents = store.similar(vector, top_k, exclude=(event.platform, event.event_id),
                                       embedding_model=embedder.model)
            store.upsert(incident(event, vector, embedder))
        except Exception as exc:  # the store is advisory: decide without precedents rather than not at all
            log.warning("incident store failed for %s:%s, deciding without precedents: %s", event.platform,
                        event.event_id, exc)
            precedents, unavailable = [], f"{type(exc).__name__}: {exc}"[:300]
    gathered = {
        "event": event_summary(event),
        "precedents": [precedent(p) for p in precedents],
        "author": author_history(db, event),
        "session": session_summary(client, db, event),
        "embedding": {"provider": embedder.name, "model": embedder.model, "dim": embedder.dim, "reused": reused},
    }
    if unavailable:
        gathered["precedents_unavailable"] = unavailable
    return gathered


def incident(event: Event, vector: Sequence[float], embedder: Embedder) -> Incident:
    return Incident(event.platform, event.event_id, event.author_id, event.occurred_at.isoformat(),
                    event.risk_score or 0.0, event.risk_category, vector, embedder.model)


def remember(ref: dict[str, str], *, db: DbSession, client: redis.Redis, store: IncidentStore, embedder: Embedder,
             embedding_ttl_s: int) -> bool:
    """Store an event that was decided while the store was down, so later events find it, with what
    was decided and what happened to it since (the outcome updates sent meanwhile found no point).
    Store errors propagate (the caller retries); False when the event is gone."""
    event = load_event(db, ref["platform"], ref["event_id"])
    if event is None:
        return False
    vector, _ = embedding(client, embedder, event, embedding_ttl_s)
    store.upsert(incident(event, vector, embedder))
    action = db.scalar(select(Action).where(Action.platform == event.platform, Action.event_id == event.event_id)
                       .order_by(Action.created_at.desc()).limit(1))
    if action is not None:
        store.record_outcome(event.platform, event.event_id, action_taken=action.action_type,
                             action_outcome=action.status)
    return True


def embedding(client: redis.Redis, embedder: Embedder, event: Event, ttl_s: int) -> tuple[list[float], bool]:
    """The event's vector and whether it came from the cache (screening may have computed it)."""
    vector = embeddings.cached(client, event.event_id, embedder)
    if vector is not None:
        return vector, True
    vector = embedder.embed([event.content])[0]
    embeddings.store(client, event.event_id, embedder, vector, ttl_s)
    return vector, False


def event_summary(event: Event) -> dict[str, Any]:
    meta = event.event_metadata or {}
    return {"platform": event.platform, "event_id": event.event_id, "author_id": event.author_id,
            "user_id": event.user_id, "session_id": event.session_id, "risk_score": event.risk_score,
            "risk_category": event.risk_category, "confidence": event.confidence, "flags": list(event.flags or []),
            "model_version": event.model_version, "author_reputation": meta.get("author_reputation")}


def precedent(payload: dict[str, Any]) -> dict[str, Any]:
    keys = ("event_id", "platform", "similarity", "risk_score", "risk_category", "action_taken", "action_outcome",
            "timestamp")
    return {key: payload.get(key) for key in keys}


def author_history(db: DbSession, event: Event) -> dict[str, Any]:
    user = db.scalar(select(User).where(User.platform == event.platform, User.user_id == event.author_id))
    actions = list(db.scalars(
        select(Action).where(Action.platform == event.platform, Action.user_id == event.author_id,
                             Action.event_id != event.event_id)
        .order_by(Action.created_at.desc()).limit(RECENT_ACTIONS)))
    counted = sum(a.action_type in SANCTIONS and a.status in COUNTED_STATUSES for a in actions)
    meta_reputation = (event.event_metadata or {}).get("author_reputation")
    return {
        "user_id": event.author_id,
        "known": user is not None,
        "reputation": _reputation(user, meta_reputation),
        # act keeps users.violation_count for applied sanctions; dry-run and pending decisions count too,
        # so a shadow-mode deployment or a burst of messages still sees a repeat offender.
        "violation_count": max(user.violation_count if user else 0, counted),
        "reversed_count": sum(a.status == "reversed" for a in actions),
        "flagged_count": user.flagged_count if user else 0,
        "message_count": user.message_count if user else 0,
        "prior_actions": [{"action_id": a.action_id, "event_id": a.event_id, "action_type": a.action_type,
                           "status": a.status, "reason_code": a.reason_code,
                           "created_at": a.created_at.isoformat() if a.created_at else None} for a in actions],
    }


def _reputation(user: User | None, from_platform: Any) -> float:
    """Our own standing when we know the author; else the platform's metadata; else neutral."""
    if user is not None:
        return round(float(user.reputation), 4)
    if isinstance(from_platform, int | float) and 0 <= from_platform <= 1:
        return round(float(from_platform), 4)
    return 0.5


def session_summary(client: redis.Redis, db: DbSession, event: Event) -> dict[str, Any]:
    live = read_state(client, session_key(event.session_id))
    if live:
        try:
            return _summarise(to_contract(live), event, source="redis")
        except (KeyError, TypeError, ValueError):
            log.warning("session %s: unreadable live state, using the snapshot", event.session_id)
    row = db.get(SessionRow, event.session_id)
    if row is None:
        return {"session_id": event.session_id, "source": None, "escalation_score": 0.0, "message_count": 0,
                "harassment_flags_count": 0, "participant_count": 0, "time_span_minutes": 0.0,
                "author_flagged_count": 0, "pile_on": False}
    span = (row.last_event_at - row.started_at).total_seconds() / 60
    contract = {"session_id": row.session_id, "participants": row.participants, "message_count": row.message_count,
                "escalation_score": row.escalation_score, "harassment_flags_count": row.harassment_flags_count,
                "time_span_minutes": round(span, 3), "targets": (row.temporal_features or {}).get("target_stats")}
    return _summarise(contract, event, source="postgres")


def _summarise(contract: dict[str, Any], event: Event, *, source: str) -> dict[str, Any]:
    participants = _as_list(contract.get("participants"))
    me = next((p for p in participants if isinstance(p, dict) and p.get("user_id") == event.author_id), {})
    target = next((t for t in _as_list(contract.get("targets"))
                   if isinstance(t, dict) and event.user_id and t.get("user_id") == event.user_id), {})
    return {
        "session_id": contract.get("session_id", event.session_id), "source": source,
        "escalation_score": round(float(contract.get("escalation_score") or 0.0), 4),
        "message_count": int(contract.get("message_count") or 0),
        "harassment_flags_count": int(contract.get("harassment_flags_count") or 0),
        "participant_count": len(participants),
        "time_span_minutes": float(contract.get("time_span_minutes") or 0.0),
        "author_flagged_count": int(me.get("flagged_count") or 0),
        "pile_on": int(target.get("distinct_authors") or 0) >= PILE_ON_AUTHORS or "pile_on" in (event.flags or []),
    }


def _as_list(value: Any) -> Sequence[Any]:
    if isinstance(value, dict):
        return [{"user_id": k, **v} if isinstance(v, dict) else {"user_id": k} for k, v in value.items()]
    return value if isinstance(value, list) else []
