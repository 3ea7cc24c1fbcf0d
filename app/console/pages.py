"""What the event and user pages show, read in as few queries as a page allows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app import records
from app.console.models import Appeal
from app.db import session_scope
from app.models import Action, AuditLog, Event, User

TIMELINE = 40  # messages either side of the event in its conversation
PAGE_SIZE = 50


def event_page(platform: str, event_id: str) -> dict[str, Any] | None:
    with session_scope() as db:
        event = db.scalars(select(Event).where(Event.platform == platform, Event.event_id == event_id)).first()
        if event is None:
            return None
        before = db.scalars(select(Event).where(Event.session_id == event.session_id,
                                                Event.received_at < event.received_at)
                            .order_by(Event.received_at.desc()).limit(TIMELINE)).all()
        after = db.scalars(select(Event).where(Event.session_id == event.session_id,
                                               Event.received_at >= event.received_at, Event.id != event.id)
                           .order_by(Event.received_at).limit(TIMELINE)).all()
        actions = db.scalars(select(Action).where(Action.platform == platform, Action.event_id == event_id)
                             .order_by(Action.created_at)).all()
        audit = db.scalars(select(AuditLog).where(AuditLog.platform == platform, AuditLog.event_id == event_id)
                           .order_by(AuditLog.id)).all()
        return {"event": event_dict(event),
                "timeline": [event_dict(e) for e in [*reversed(before), event, *after]],
                "actions": [action_dict(a) for a in actions],
                "audit": [audit_dict(r) for r in audit],
                "evidence": [link for a in actions for link in (a.evidence_chain or [])]}


def user_page(platform: str, user_id: str, page_no: int) -> dict[str, Any]:
    with session_scope() as db:
        user = db.scalars(select(User).where(User.platform == platform, User.user_id == user_id)).first()
        where = (Action.platform == platform, Action.user_id == user_id)
        total = db.scalar(select(func.count()).select_from(Action).where(*where)) or 0
        actions = db.scalars(select(Action).where(*where).order_by(Action.created_at.desc())
                             .offset((page_no - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        other = db.execute(select(User.platform, User.violation_count, User.message_count)
                           .where(User.user_id == user_id, User.platform != platform)).all()
        flagged = db.scalars(select(Event).where(Event.platform == platform, Event.author_id == user_id,
                                                 Event.status.in_(("needs_review", "decided", "actioned")))
                             .order_by(Event.received_at.desc()).limit(20)).all()
        appeals = db.scalars(select(Appeal).where(Appeal.platform == platform, Appeal.user_id == user_id)
                             .order_by(Appeal.created_at.desc()).limit(20)).all()
        return {"user": records.user_record(platform, user_id) if user else None,
                "actions": [action_dict(a) for a in actions], "total": total, "page": page_no,
                "pages": max(1, -(-total // PAGE_SIZE)),
                "elsewhere": [{"platform": p, "violation_count": v, "message_count": m} for p, v, m in other],
                "flagged": [event_dict(e) for e in flagged],
                "appeals": [{"appeal_id": a.appeal_id, "status": a.status, "action_id": a.action_id} for a in appeals]}


def event_dict(e: Event) -> dict[str, Any]:
    return {"event_id": e.event_id, "platform": e.platform, "session_id": e.session_id, "channel_id": e.channel_id,
            "author_id": e.author_id, "user_id": e.user_id, "content": e.content, "status": e.status,
            "risk_score": e.risk_score, "risk_category": e.risk_category, "confidence": e.confidence,
            "flags": e.flags or [], "model_version": e.model_version, "screening_time_ms": e.screening_time_ms,
            "received_at": e.received_at.isoformat(), "metadata": e.event_metadata}


def action_dict(a: Action) -> dict[str, Any]:
    return {"action_id": a.action_id, "event_id": a.event_id, "platform": a.platform, "user_id": a.user_id,
            "action_type": a.action_type, "duration_hours": a.duration_hours, "status": a.status,
            "reason_code": a.reason_code, "reasoning": a.reasoning, "confidence": a.confidence,
            "provider": a.provider, "policy": a.policy, "evidence_chain": a.evidence_chain or [],
            "created_at": a.created_at.isoformat() if a.created_at else None,
            "applied_at": a.applied_at.isoformat() if a.applied_at else None,
            "expires_at": a.expires_at.isoformat() if a.expires_at else None,
            "reversible": a.status == "applied" and a.action_type in ("warning", "timeout", "mute", "ban",
                                                                       "delete_message")}


def audit_dict(r: AuditLog) -> dict[str, Any]:
    detail = r.detail or {}
    return {"at": r.at.isoformat(), "actor": r.actor, "kind": r.kind, "action_id": r.action_id,
            "platform_status": detail.get("platform_status"), "reason": detail.get("reason") or detail.get("error"),
            "note": detail.get("note") or detail.get("reversal_reason"), "detail": detail}
