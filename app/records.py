"""Read models for the API: the event record and synchronous screening."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from app import streams
from app.config import PLATFORMS
from app.db import session_scope
from app.models import Action, Alert, Event, User
from app.models import Session as SessionRow
from app.pipeline.ingest import dedup_key
from app.pipeline.screen import prediction_dict
from app.redis_client import get_redis

EVENT_FIELDS = ("event_id", "platform", "user_id", "author_id", "content", "channel_id", "session_id")
ACTION_FIELDS = ("action_id", "event_id", "action_type", "duration_hours", "user_id", "platform",
                 "reason_code", "reasoning", "confidence", "evidence_chain", "policy", "provider", "status")


def event_record(event_id: str, platform: str | None) -> dict[str, Any] | None:
    """The stored record, or, for an event accepted but not yet screened, its copy in events:raw."""
    with session_scope() as db:
        query = select(Event).where(Event.event_id == event_id)
        if platform:
            query = query.where(Event.platform == platform)
        row = db.scalars(query.order_by(Event.id).limit(1)).first()
        if row is not None:
            action = db.scalars(select(Action).where(Action.platform == row.platform, Action.event_id == event_id)
                                .order_by(Action.created_at.desc()).limit(1)).first()
            return _from_row(row, action)
    return _from_stream(event_id, platform)


def _from_row(row: Event, action: Action | None) -> dict[str, Any]:
    event = {name: getattr(row, name) for name in EVENT_FIELDS} | {"metadata": row.event_metadata}
    prediction = None
    if row.risk_score is not None:
        prediction = {"event_id": row.event_id, "risk_score": row.risk_score, "risk_category": row.risk_category,
                      "confidence": row.confidence, "flags": row.flags,
                      "screening_time_ms": row.screening_time_ms, "model_version": row.model_version}
    return {"event": event, "status": row.status, "risk_prediction": prediction,
            "action": _action(action) if action else None,
            "received_at": row.received_at.isoformat(),
            "screened_at": row.screened_at.isoformat() if row.screened_at else None}


def _action(action: Action) -> dict[str, Any]:
    out = {name: getattr(action, name) for name in ACTION_FIELDS}
    out["applied_at"] = action.applied_at.isoformat() if action.applied_at else None
    out["expires_at"] = action.expires_at.isoformat() if action.expires_at else None
    return out


def _from_stream(event_id: str, platform: str | None) -> dict[str, Any] | None:
    client = get_redis()
    platforms = [platform] if platform else list(PLATFORMS)
    for stream_id in client.mget([dedup_key(p, event_id) for p in platforms]):
        if not stream_id or stream_id == "-":
            continue
        entries = client.xrange(streams.RAW, min=stream_id, max=stream_id)
        if entries:
            event = json.loads(entries[0][1]["data"])
            return {"event": event, "status": "received", "risk_prediction": None, "action": None,
                    "received_at": entries[0][1].get("received_at"), "screened_at": None}
    return None


def screen_now(text: str, context: Sequence[str], model: str) -> dict[str, Any]:
    """POST /v1/screen: the same rules and model as the worker, without a session; a long text is
    read whole, in the worker's windows."""
    from app.pipeline import windows
    from ml.screening import get_screener

    screener = get_screener(model)
    started = time.perf_counter()
    result = windows.screen_whole(screener, [text], [list(context)])[0]
    return prediction_dict("", result, (time.perf_counter() - started) * 1000) | {"event_id": None}


def session_record(session_id: str) -> dict[str, Any] | None:
    """The live conversation from Redis, or its last snapshot once the idle TTL has expired it."""
    from app.sessions import read_state, session_key, to_contract

    state = read_state(get_redis(), session_key(session_id))
    if state:
        return _public_session(to_contract(state), live=True)
    with session_scope() as db:
        row = db.get(SessionRow, session_id)
        if row is None:
            return None
        features = dict(row.temporal_features)
        targets = features.pop("targets_summary", [])
        contract = {"session_id": row.session_id, "platform": row.platform, "channel_id": row.channel_id,
                    "participants": row.participants, "targets": targets, "message_count": row.message_count,
                    "time_span_minutes": round((row.last_event_at - row.started_at).total_seconds() / 60, 3),
                    "escalation_score": row.escalation_score,
                    "harassment_flags_count": row.harassment_flags_count, "temporal_features": features}
    return _public_session(contract, live=False)


def _public_session(contract: dict[str, Any], *, live: bool) -> dict[str, Any]:
    out = {k: v for k, v in contract.items() if not k.endswith("_at_ms")}
    out["live"] = live
    return out


def user_record(platform: str, user_id: str) -> dict[str, Any] | None:
    """An author's standing across sessions, with their recent actions."""
    from app.standing import decided_violations, standing_of

    with session_scope() as db:
        user = db.scalars(select(User).where(User.platform == platform, User.user_id == user_id)).first()
        if user is None:
            return None
        actions = db.scalars(select(Action).where(Action.platform == platform, Action.user_id == user_id)
                             .order_by(Action.created_at.desc()).limit(20)).all()
        sessions = db.execute(select(Event.session_id, func.count()).where(
            Event.platform == platform, Event.author_id == user_id).group_by(Event.session_id)
            .order_by(func.count().desc()).limit(20)).all()
        decided = decided_violations(db, [(platform, user_id)]).get((platform, user_id), {})
        violations = max(user.violation_count, sum(decided.values()))
        first, last = db.execute(select(func.min(Event.occurred_at), func.max(Event.occurred_at)).where(
            Event.platform == platform, Event.author_id == user_id)).one()
        standing = standing_of(user.message_count, user.flagged_count, violations)
        # Violations are the sanctions decided and not undone, dry-run ones included and counted
        # apart; first/last seen are the author's own messages' times, not when we received them.
        return {"platform": platform, "user_id": user_id, "message_count": user.message_count,
                "flagged_count": user.flagged_count, "violation_count": violations,
                "violations": {status: decided.get(status, 0) for status in ("applied", "dry_run", "pending")},
                "dry_run_violations": decided.get("dry_run", 0),
                "reputation": standing["reputation"], "repeat_offender_score": standing["prior"],
                "first_seen": (first or user.first_seen).isoformat(), "last_seen": (last or user.last_seen).isoformat(),
                "sessions": [{"session_id": sid, "message_count": n} for sid, n in sessions],
                "recent_actions": [_action(a) for a in actions]}


def alert_list(limit: int = 50, session_id: str | None = None) -> list[dict[str, Any]]:
    with session_scope() as db:
        query = select(Alert).order_by(Alert.created_at.desc()).limit(limit)
        if session_id:
            query = query.where(Alert.session_id == session_id)
        return [{"alert_id": a.alert_id, "kind": a.kind, "session_id": a.session_id, "platform": a.platform,
                 "event_id": a.event_id, "target_user_id": a.target_user_id, "authors": a.authors,
                 "escalation_score": a.escalation_score, "created_at": a.created_at.isoformat(),
                 "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None}
                for a in db.scalars(query)]
