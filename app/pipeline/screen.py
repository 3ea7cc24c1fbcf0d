"""Screen: rules + model + session for a batch of events, then persist and publish.

Order matters for idempotency (acks_late redelivers a batch whose worker died):
1. drop events that PostgreSQL already holds as screened (a redelivery screens nothing twice);
2. score the rest in one batched model call and update their sessions atomically in Redis;
3. write events, authors and session snapshots in one transaction;
4. only after the commit, mirror to ``events:screened`` and, for risky events,
   ``events:reasoning_queue`` (enqueue after commit: a reader never sees a row that is not there).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import redis
from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from app import metrics, streams
from app.config import Settings
from app.models import Event, User
from app.models import Session as SessionRow
from app.sessions import SessionStore, SessionUpdate


class Screening(Protocol):
    risk_score: float
    risk_category: str
    confidence: float
    flags: list[str]
    model_version: str
    embedding: list[float] | None


class Screener(Protocol):
    model_version: str

    def screen(self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None
               ) -> Sequence[Screening]: ...


@dataclass(frozen=True)
class Screened:
    event: dict[str, Any]
    received_at_ms: int
    prediction: dict[str, Any]
    status: str


def prediction_dict(event_id: str, result: Screening, elapsed_ms: float) -> dict[str, Any]:
    """The RiskPrediction contract of the design."""
    return {
        "event_id": event_id,
        "risk_score": round(float(result.risk_score), 4),
        "risk_category": result.risk_category,
        "confidence": round(float(result.confidence), 4),
        "flags": list(result.flags),
        "screening_time_ms": round(elapsed_ms, 3),
        "model_version": result.model_version,
    }


def event_time_ms(event: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(event["metadata"]["timestamp"]).timestamp() * 1000)


def already_screened(db: DbSession, events: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    keys = [(e["platform"], e["event_id"]) for e in events]
    if not keys:
        return set()
    rows = db.execute(select(Event.platform, Event.event_id).where(
        tuple_(Event.platform, Event.event_id).in_(keys), Event.status != "received"))
    return {(platform, event_id) for platform, event_id in rows}


def score(screener: Screener, events: Sequence[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    started = time.perf_counter()
    results = screener.screen([e["content"] for e in events])
    per_event_ms = (time.perf_counter() - started) * 1000 / max(len(events), 1)
    predictions = [prediction_dict(e["event_id"], r, per_event_ms) for e, r in zip(events, results, strict=True)]
    for p in predictions:
        metrics.SCREENING_DURATION.observe(p["screening_time_ms"])
    return predictions


def update_sessions(store: SessionStore, events: Sequence[dict[str, Any]],
                    predictions: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    updates = [SessionUpdate(e["event_id"], e["session_id"], event_time_ms(e), p["risk_score"],
                             e["author_id"], e.get("user_id")) for e, p in zip(events, predictions, strict=True)]
    places = {e["session_id"]: (e["platform"], e["channel_id"]) for e in events}
    return store.update(updates, places)


def persist(db: DbSession, screened: Sequence[Screened], sessions: dict[str, dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    rows = [_event_row(item, now) for item in screened]
    stmt = insert(Event).values(rows)
    prediction_cols = ("status", "risk_score", "risk_category", "confidence", "flags",
                       "screening_time_ms", "model_version", "screened_at")
    db.execute(stmt.on_conflict_do_update(
        index_elements=["platform", "event_id"],
        set_={col: stmt.excluded[col] for col in prediction_cols},
        where=Event.status == "received"))
    _upsert_authors(db, screened, now)
    _upsert_sessions(db, sessions)


def _event_row(item: Screened, now: datetime) -> dict[str, Any]:
    e, p = item.event, item.prediction
    return {
        "event_id": e["event_id"], "platform": e["platform"], "session_id": e["session_id"],
        "channel_id": e["channel_id"], "author_id": e["author_id"], "user_id": e.get("user_id"),
        "content": e["content"], "metadata": e["metadata"],
        "occurred_at": datetime.fromisoformat(e["metadata"]["timestamp"]),
        "received_at": datetime.fromtimestamp(item.received_at_ms / 1000, UTC),
        "status": item.status, "risk_score": p["risk_score"], "risk_category": p["risk_category"],
        "confidence": p["confidence"], "flags": p["flags"], "screening_time_ms": p["screening_time_ms"],
        "model_version": p["model_version"], "screened_at": now,
    }


def _upsert_authors(db: DbSession, screened: Sequence[Screened], now: datetime) -> None:
    counts: dict[tuple[str, str], list[int]] = {}
    for item in screened:
        key = (item.event["platform"], item.event["author_id"])
        seen = counts.setdefault(key, [0, 0])
        seen[0] += 1
        seen[1] += item.status == "needs_review"
    rows = [{"platform": p, "user_id": u, "message_count": m, "flagged_count": f, "last_seen": now}
            for (p, u), (m, f) in sorted(counts.items())]
    stmt = insert(User).values(rows)
    db.execute(stmt.on_conflict_do_update(
        index_elements=["platform", "user_id"],
        set_={"message_count": User.message_count + stmt.excluded.message_count,
              "flagged_count": User.flagged_count + stmt.excluded.flagged_count,
              "last_seen": func.greatest(User.last_seen, stmt.excluded.last_seen)}))


def _upsert_sessions(db: DbSession, sessions: dict[str, dict[str, Any]]) -> None:
    if not sessions:
        return
    rows = [{
        "session_id": s["session_id"], "platform": s["platform"], "channel_id": s["channel_id"],
        "participants": s["participants"], "message_count": s["message_count"],
        "started_at": datetime.fromtimestamp(s["started_at_ms"] / 1000, UTC),
        "last_event_at": datetime.fromtimestamp(s["last_event_at_ms"] / 1000, UTC),
        "escalation_score": s["escalation_score"], "harassment_flags_count": s["harassment_flags_count"],
        "temporal_features": s["temporal_features"],
    } for _, s in sorted(sessions.items())]
    stmt = insert(SessionRow).values(rows)
    # The Redis state is the newest truth for the conversation; the row is its snapshot.
    db.execute(stmt.on_conflict_do_update(
        index_elements=["session_id"],
        set_={col: stmt.excluded[col] for col in (
            "participants", "message_count", "started_at", "last_event_at", "escalation_score",
            "harassment_flags_count", "temporal_features")} | {"updated_at": func.now()}))


def publish(client: redis.Redis, result: BatchResult, maxlen: int) -> None:
    screened, sessions = result.screened, result.sessions
    if not screened:
        return
    pipe = client.pipeline(transaction=False)
    screened_at = int(time.time() * 1000)
    for item in screened:
        e = item.event
        session = sessions.get(e["session_id"], {})
        data = {"event": e, "risk_prediction": item.prediction, "status": item.status,
                "session": {"session_id": e["session_id"], "escalation_score": session.get("escalation_score"),
                            "message_count": session.get("message_count")}}
        fields = streams.entry(e["event_id"], e["platform"], data,
                               received_at=item.received_at_ms, screened_at=screened_at)
        streams.add_many(pipe, streams.SCREENED, [fields], maxlen)
        if item.status == "needs_review":
            streams.add_many(pipe, streams.REASONING_QUEUE, [fields], maxlen)
    pipe.execute()


@dataclass(frozen=True)
class BatchResult:
    screened: list[Screened]
    sessions: dict[str, dict[str, Any]]


def screen_batch(items: Sequence[dict[str, Any]], *, screener: Screener, db: DbSession,
                 client: redis.Redis, settings: Settings) -> BatchResult:
    """Screen queued items ({"event", "received_at"}) and persist; the caller commits, then publishes."""
    done = already_screened(db, [i["event"] for i in items])
    todo = _unique([i for i in items if (i["event"]["platform"], i["event"]["event_id"]) not in done])
    if not todo:
        return BatchResult([], {})
    events = [i["event"] for i in todo]
    predictions = score(screener, events, settings.SCREENING_THRESHOLD)
    store = SessionStore(client, ttl_s=settings.SESSION_TTL_S, window=settings.SESSION_WINDOW,
                         threshold=settings.SCREENING_THRESHOLD)
    sessions = update_sessions(store, events, predictions)
    screened = [Screened(i["event"], int(i["received_at"]), p,
                         "needs_review" if p["risk_score"] >= settings.SCREENING_THRESHOLD else "screened")
                for i, p in zip(todo, predictions, strict=True)]
    persist(db, screened, sessions)
    return BatchResult(screened, sessions)


def _unique(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A batch can hold the same event twice (the sweeper and a late redelivery); keep the first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for item in items:
        key = (item["event"]["platform"], item["event"]["event_id"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
