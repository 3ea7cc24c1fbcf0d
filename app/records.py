"""Read models for the API: the event record and synchronous screening."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from app.config import PLATFORMS
from app.db import session_scope
from app.models import Action, Event
from app.pipeline.ingest import dedup_key
from app.pipeline.screen import prediction_dict
from app.redis_client import get_redis
from app import streams

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
    """POST /v1/screen: the same rules and model as the worker, without a session."""
    from ml.screening import get_screener

    screener = get_screener(model)
    started = time.perf_counter()
    result = screener.screen([text], [list(context)])[0]
    return prediction_dict("", result, (time.perf_counter() - started) * 1000) | {"event_id": None}
