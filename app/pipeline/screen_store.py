"""Screening's writes: events with their predictions, authors, session snapshots and alerts, in bulk.

All statements are upserts keyed on the natural keys, so a retried batch changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from app.db import key_table, key_values
from app.models import Alert, Event, User
from app.models import Session as SessionRow
from app.standing import decided_sanctions

if TYPE_CHECKING:
    from app.pipeline.screen import Screened

PREDICTION_COLUMNS = ("status", "risk_score", "risk_category", "confidence", "flags",
                      "screening_time_ms", "model_version", "screened_at")
SESSION_COLUMNS = ("participants", "message_count", "started_at", "last_event_at", "escalation_score",
                   "harassment_flags_count", "temporal_features")


def ms_to_dt(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _events_upsert():  # type: ignore[no-untyped-def]
    stmt = insert(Event.__table__)
    # RETURNING names the rows this statement wrote: a row another reader screened meanwhile is
    # left as it is and not returned (see app.pipeline.screen: only written rows are mirrored).
    return stmt.on_conflict_do_update(
        index_elements=["platform", "event_id"],
        set_={col: stmt.excluded[col] for col in PREDICTION_COLUMNS},
        where=Event.__table__.c.status == "received",
    ).returning(Event.__table__.c.platform, Event.__table__.c.event_id)


def _authors_upsert():  # type: ignore[no-untyped-def]
    users = User.__table__
    stmt = insert(users)
    flagged = users.c.flagged_count + stmt.excluded.flagged_count
    return stmt.on_conflict_do_update(
        index_elements=["platform", "user_id"],
        set_={"message_count": users.c.message_count + stmt.excluded.message_count,
              "flagged_count": flagged,
              "reputation": literal(1.0) - func.least(1.0, (flagged + 2 * users.c.violation_count) / 6.0),
              "last_seen": func.greatest(users.c.last_seen, stmt.excluded.last_seen)},
    ).returning(users.c.platform, users.c.user_id, users.c.message_count, users.c.flagged_count,
                users.c.violation_count, decided_sanctions(users.c.platform, users.c.user_id),
                sort_by_parameter_order=True)


def _sessions_upsert():  # type: ignore[no-untyped-def]
    stmt = insert(SessionRow.__table__)
    # The Redis state is the newest truth for the conversation; the row is its snapshot.
    return stmt.on_conflict_do_update(
        index_elements=["session_id"],
        set_={col: stmt.excluded[col] for col in SESSION_COLUMNS} | {"updated_at": func.now()})


# Built once: Core statements executed with a list of rows compile once and are cached, where
# ``insert().values(rows)`` would be compiled again for every batch (milliseconds each).
EVENTS_UPSERT = _events_upsert()
AUTHORS_UPSERT = _authors_upsert()
SESSIONS_UPSERT = _sessions_upsert()
ALERTS_INSERT = insert(Alert.__table__).on_conflict_do_nothing(index_elements=["alert_id"])
_WANTED = key_table("wanted", "platform", "event_id")
_EVENTS = Event.__table__
_BY_KEY = and_(_EVENTS.c.platform == _WANTED.c.platform, _EVENTS.c.event_id == _WANTED.c.event_id)
SCREENED_KEYS = select(_EVENTS.c.platform, _EVENTS.c.event_id).join(_WANTED, _BY_KEY).where(
    _EVENTS.c.status != "received")
STORED_EVENTS = select(_EVENTS).join(_WANTED, _BY_KEY)


def screened_keys(db: DbSession, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (platform, event_id) PostgreSQL holds as screened."""
    if not keys:
        return set()
    rows = db.connection().execute(SCREENED_KEYS, key_values(_WANTED, keys))
    return {(platform, event_id) for platform, event_id in rows}


def save_events(db: DbSession, screened: Sequence[Screened], now: datetime) -> set[tuple[str, str]]:
    """Insert (or complete a ``received`` row); returns the (platform, event_id) actually written."""
    if not screened:
        return set()
    rows = db.connection().execute(EVENTS_UPSERT, [_event_row(item, now) for item in screened])
    return {(platform, event_id) for platform, event_id in rows}


def load_screened(db: DbSession, items: Sequence[dict[str, Any]]) -> list[Screened]:
    """The stored outcome of already screened events, to mirror as PostgreSQL holds it; ``items``
    are queue items ({"event", "received_at", "stream_id"})."""
    from app.pipeline.screen import Screened

    if not items:
        return []
    keys = [(i["event"]["platform"], i["event"]["event_id"]) for i in items]
    rows = {(r.platform, r.event_id): r for r in db.connection().execute(
        STORED_EVENTS, key_values(_WANTED, keys))}
    out = []
    for item, key in zip(items, keys, strict=True):
        row = rows.get(key)
        if row is None or row.status == "received":
            continue
        prediction = {"event_id": row.event_id, "risk_score": row.risk_score, "risk_category": row.risk_category,
                      "confidence": row.confidence, "flags": list(row.flags or []),
                      "screening_time_ms": row.screening_time_ms, "model_version": row.model_version}
        out.append(Screened(item["event"] | {"session_id": row.session_id}, int(item["received_at"]), prediction,
                            row.status, stream_id=item.get("stream_id")))
    return out


def _event_row(item: Screened, now: datetime) -> dict[str, Any]:
    e, p = item.event, item.prediction
    return {
        "event_id": e["event_id"], "platform": e["platform"], "session_id": e["session_id"],
        "channel_id": e["channel_id"], "author_id": e["author_id"], "user_id": e.get("user_id"),
        "content": e["content"], "metadata": e["metadata"],
        "occurred_at": datetime.fromisoformat(e["metadata"]["timestamp"]),
        "received_at": ms_to_dt(item.received_at_ms),
        "status": item.status, "risk_score": p["risk_score"], "risk_category": p["risk_category"],
        "confidence": p["confidence"], "flags": p["flags"], "screening_time_ms": p["screening_time_ms"],
        "model_version": p["model_version"], "screened_at": now,
    }


def save_authors(db: DbSession, screened: Sequence[Screened], now: datetime) -> list[Any]:
    """Count messages and flags per author; returns the new totals for the standing cache
    (platform, user_id, messages, flagged, applied violations, decided sanctions: app.standing.of_rows)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for item in screened:
        seen = counts.setdefault((item.event["platform"], item.event["author_id"]), [0, 0])
        seen[0] += 1
        seen[1] += item.status == "needs_review"
    rows = [{"platform": p, "user_id": u, "message_count": m, "flagged_count": f, "last_seen": now,
             "reputation": 1.0 - min(1.0, f / 6)}
            for (p, u), (m, f) in sorted(counts.items())]
    return list(db.connection().execute(AUTHORS_UPSERT, rows))


def save_sessions(db: DbSession, sessions: dict[str, dict[str, Any]]) -> None:
    if not sessions:
        return
    rows = [{
        "session_id": s["session_id"], "platform": s["platform"], "channel_id": s["channel_id"],
        "participants": s["participants"], "message_count": s["message_count"],
        "started_at": ms_to_dt(s["started_at_ms"]), "last_event_at": ms_to_dt(s["last_event_at_ms"]),
        "escalation_score": s["escalation_score"], "harassment_flags_count": s["harassment_flags_count"],
        "temporal_features": s["temporal_features"] | {"targets_summary": s["targets"]},
    } for _, s in sorted(sessions.items())]
    db.connection().execute(SESSIONS_UPSERT, rows)


def save_alerts(db: DbSession, alerts: Sequence[dict[str, Any]]) -> None:
    if alerts:
        db.connection().execute(ALERTS_INSERT, list(alerts))
