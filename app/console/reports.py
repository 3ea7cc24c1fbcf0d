"""Reporting queries over a date range: throughput, flag rate, actions, overturn rates, latency,
top targets and raids, and the decision log as CSV. Each is one aggregate query on an indexed range."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, func, select
from sqlalchemy.dialects.postgresql import array

from app.console.models import Appeal
from app.db import session_scope
from app.models import Action, Alert, AuditLog, Event
from app.platforms.outbound import SANCTIONS

QUANTILES = [0.5, 0.95, 0.99]
FLAGGED = Event.status.in_(("needs_review", "decided", "actioned"))  # ix_events_flagged_received_at
LATENCY_SAMPLE = 20_000
CSV_COLUMNS = ("at", "actor", "kind", "platform", "event_id", "action_id", "action_type", "status_detail",
               "reason", "platform_status")


@dataclass(frozen=True)
class Range:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max((self.end - self.start).total_seconds(), 1.0)

    def bucket(self) -> str:
        return "hour" if self.seconds <= 3 * 86_400 else "day"


def report(span: Range) -> dict[str, Any]:
    """Every section of the reports page. "Flagged" means over the threshold in force when the
    message was screened (its status says so), so a later threshold change does not rewrite history."""
    with session_scope() as db:
        in_range = and_(Event.received_at >= span.start, Event.received_at < span.end)
        series = _series(db, span, in_range)
        events, flagged = sum(p["events"] for p in series), sum(p["flagged"] for p in series)
        return {"events": events, "flagged": flagged, "events_per_s": events / span.seconds,
                "flag_rate": flagged / events if events else 0.0, "series": series,
                "actions": _actions(db, span), "overturns": _overturns(db, span),
                "latency": _latency(db, span, in_range, events), "targets": _targets(db, in_range),
                "raids": _raids(db, span)}


def _series(db: Any, span: Range, in_range: Any) -> list[dict[str, Any]]:
    bucket = func.date_trunc(span.bucket(), Event.received_at).label("bucket")
    rows = db.execute(select(bucket, func.count(), func.count().filter(FLAGGED))
                      .where(in_range).group_by(bucket).order_by(bucket)).all()
    return [{"at": b.isoformat(), "events": n, "flagged": f} for b, n, f in rows]


def _actions(db: Any, span: Range) -> list[dict[str, Any]]:
    rows = db.execute(select(Action.action_type, Action.platform, Action.status, func.count())
                      .where(Action.created_at >= span.start, Action.created_at < span.end,
                             Action.action_type != "none")
                      .group_by(Action.action_type, Action.platform, Action.status)
                      .order_by(func.count().desc())).all()
    return [{"action_type": t, "platform": p, "status": s, "count": n} for t, p, s, n in rows]


def _overturns(db: Any, span: Range) -> dict[str, list[dict[str, Any]]]:
    """Sanctions applied in the range and how many were overturned on appeal (or reversed at all)."""
    overturned = select(Appeal.action_id).where(Appeal.status == "overturned").scalar_subquery()
    rows = db.execute(
        select(Event.risk_category, Event.model_version, func.count(),
               func.count().filter(Action.action_id.in_(overturned)), func.count().filter(Action.status == "reversed"))
        .select_from(Action).join(Event, and_(Event.platform == Action.platform, Event.event_id == Action.event_id))
        .where(Action.created_at >= span.start, Action.created_at < span.end, Action.action_type.in_(SANCTIONS),
               Action.status.in_(("applied", "reversed")))
        .group_by(Event.risk_category, Event.model_version)).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for name, index in (("category", 0), ("model_version", 1)):
        totals: dict[str, list[int]] = {}
        for row in rows:
            counts = totals.setdefault(row[index] or "unknown", [0, 0, 0])
            for i in range(3):
                counts[i] += row[2 + i]
        out[name] = [{"key": k, "sanctions": n, "overturned": o, "reversed": r, "overturn_rate": o / n if n else 0.0}
                     for k, (n, o, r) in sorted(totals.items(), key=lambda kv: -kv[1][0])]
    return out


def _latency(db: Any, span: Range, in_range: Any, events: int) -> dict[str, dict[str, float | None]]:
    def pct(column: Any) -> Any:  # one sort per column for all three quantiles
        return func.percentile_cont(array(QUANTILES, type_=Float)).within_group(column)

    # Past LATENCY_SAMPLE messages, an evenly spread sample (every n-th row id) stands for the range:
    # sorting a week of traffic for three quantiles would cost more than the rest of the page.
    step = max(1, -(-events // LATENCY_SAMPLE))
    sample = Event.id % step == 0
    to_screened = func.extract("epoch", Event.screened_at - Event.received_at) * 1000
    model, screened = db.execute(select(pct(Event.screening_time_ms), pct(to_screened))
                                 .where(in_range, Event.screened_at.is_not(None), sample)).one()
    # Actions are decided seconds after their event arrived: their own time picks the range.
    to_action = func.extract("epoch", Action.applied_at - Event.received_at) * 1000
    acting = db.execute(select(pct(to_action)).select_from(Action)
                        .join(Event, and_(Event.platform == Action.platform, Event.event_id == Action.event_id))
                        .where(Action.created_at >= span.start, Action.created_at < span.end,
                               Action.applied_at.is_not(None), Action.provider != "moderator")).scalar()

    def named(values: Any) -> dict[str, float | None]:
        return {k: round(float(v), 1) if v is not None else None
                for k, v in zip(("p50", "p95", "p99"), values or (None, None, None), strict=True)}
    return {"model (screening_time_ms)": named(model), "received → screened": named(screened),
            "received → action applied": named(acting)}


def _targets(db: Any, in_range: Any) -> list[dict[str, Any]]:
    rows = db.execute(select(Event.platform, Event.user_id, func.count(), func.count(func.distinct(Event.author_id)))
                      .where(in_range, FLAGGED, Event.user_id.is_not(None))
                      .group_by(Event.platform, Event.user_id).order_by(func.count().desc()).limit(10)).all()
    return [{"platform": p, "user_id": u, "flagged": n, "authors": a} for p, u, n, a in rows]


def _raids(db: Any, span: Range) -> list[dict[str, Any]]:
    rows = db.scalars(select(Alert).where(Alert.created_at >= span.start, Alert.created_at < span.end)
                      .order_by(case((Alert.kind == "pile_on", 0), else_=1), Alert.escalation_score.desc())
                      .limit(10)).all()
    return [{"kind": a.kind, "session_id": a.session_id, "platform": a.platform, "target": a.target_user_id,
             "authors": len(a.authors or []), "escalation_score": a.escalation_score,
             "at": a.created_at.isoformat()} for a in rows]


def decision_log_csv(span: Range) -> Iterator[str]:
    """The audit log in the range as CSV, streamed a thousand rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield _drain(buffer)
    with session_scope() as db:
        rows = db.execute(select(AuditLog).where(AuditLog.at >= span.start, AuditLog.at < span.end)
                          .order_by(AuditLog.at, AuditLog.id).execution_options(yield_per=1000)).scalars()
        for n, row in enumerate(rows, 1):
            detail = row.detail or {}
            writer.writerow([row.at.isoformat(), row.actor, row.kind, row.platform or "", row.event_id or "",
                             row.action_id or "", detail.get("action_type", ""), detail.get("policy_note", ""),
                             _safe(detail.get("reason") or detail.get("error") or detail.get("note") or ""),
                             detail.get("platform_status") or ""])
            if n % 1000 == 0:
                yield _drain(buffer)
    yield _drain(buffer)


def _safe(value: Any) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet; message text must never run as one.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _drain(buffer: io.StringIO) -> str:
    out = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return out
