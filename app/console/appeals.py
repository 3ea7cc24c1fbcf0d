"""Appeals: a user contests an action; a moderator upholds it (saying why) or overturns it.

Filing is idempotent per action while an appeal is open (a unique partial index). Overturning is
recorded here; reversing the action through the platform and marking the precedent in Qdrant is
the caller's next step (``web/console`` does both), so this module stays free of queues.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.console.models import Appeal
from app.db import session_scope
from app.models import Action, AuditLog, Event
from app.platforms.outbound import SANCTIONS

STATUSES = ("open", "upheld", "overturned")
PAGE_SIZE = 50
APPEALABLE = ("applied", "dry_run", "reversed")


class AppealError(ValueError):
    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def file(action_id: str, statement: str, *, source: str) -> tuple[dict[str, Any], bool]:
    """Open an appeal against a sanction; returns it and whether it is new (else the open one)."""
    with session_scope() as db:
        action = db.get(Action, action_id)
        if action is None:
            raise AppealError(f"no action {action_id!r}", 404)
        if action.action_type not in SANCTIONS or action.status not in APPEALABLE:
            raise AppealError(f"action {action_id} is {action.status} {action.action_type}; only a sanction "
                              "that was applied can be appealed")
        event = db.scalars(select(Event).where(Event.platform == action.platform,
                                               Event.event_id == action.event_id)).first()
        appeal_id = f"apl-{uuid.uuid4().hex[:20]}"
        inserted = db.execute(pg_insert(Appeal).values(
            appeal_id=appeal_id, action_id=action_id, event_id=action.event_id, platform=action.platform,
            user_id=action.user_id, statement=statement, source=source, status="open",
            risk_category=event.risk_category if event else None, model_version=event.model_version if event else None,
        ).on_conflict_do_nothing(index_elements=["action_id"], index_where=Appeal.status == "open")
            .returning(Appeal.appeal_id)).scalar()
        if inserted is None:
            existing = db.scalars(select(Appeal).where(Appeal.action_id == action_id, Appeal.status == "open")).one()
            return appeal_dict(existing), False
        db.add(AuditLog(actor=source, kind="appeal.filed", event_id=action.event_id, action_id=action_id,
                        platform=action.platform, detail={"appeal_id": appeal_id, "statement": statement}))
        db.flush()
        return appeal_dict(db.get(Appeal, appeal_id)), True  # type: ignore[arg-type]


def decide(appeal_id: str, outcome: str, *, moderator: str, reason: str) -> dict[str, Any]:
    """Record ``upheld`` or ``overturned`` on an open appeal; returns it."""
    if outcome not in ("upheld", "overturned"):
        raise AppealError("the outcome is upheld or overturned", 400)
    if not reason.strip():
        raise AppealError("say why: the user is told", 400)
    with session_scope() as db:
        appeal = db.scalars(select(Appeal).where(Appeal.appeal_id == appeal_id).with_for_update()).first()
        if appeal is None:
            raise AppealError(f"no appeal {appeal_id!r}", 404)
        if appeal.status != "open":
            raise AppealError(f"appeal {appeal_id} was already {appeal.status} by {appeal.decided_by}")
        appeal.status, appeal.decision_reason = outcome, reason.strip()
        appeal.decided_by, appeal.decided_at = moderator, datetime.now(UTC)
        db.add(AuditLog(actor=f"moderator:{moderator}", kind=f"appeal.{outcome}", event_id=appeal.event_id,
                        action_id=appeal.action_id, platform=appeal.platform,
                        detail={"appeal_id": appeal_id, "reason": appeal.decision_reason}))
        return appeal_dict(appeal)


def get(appeal_id: str) -> dict[str, Any] | None:
    with session_scope() as db:
        appeal = db.get(Appeal, appeal_id)
        return appeal_dict(appeal) if appeal else None


def listing(status: str, page_no: int) -> dict[str, Any]:
    with session_scope() as db:
        where = Appeal.status == status
        total = db.scalar(select(func.count()).select_from(Appeal).where(where)) or 0
        order = Appeal.created_at if status == "open" else Appeal.decided_at.desc()
        rows = db.scalars(select(Appeal).where(where).order_by(order)
                          .offset((page_no - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        return {"items": [appeal_dict(a) for a in rows], "total": total, "page": page_no,
                "pages": max(1, -(-total // PAGE_SIZE))}


def appeal_dict(a: Appeal) -> dict[str, Any]:
    return {"appeal_id": a.appeal_id, "action_id": a.action_id, "event_id": a.event_id, "platform": a.platform,
            "user_id": a.user_id, "statement": a.statement, "source": a.source, "status": a.status,
            "risk_category": a.risk_category, "model_version": a.model_version,
            "created_at": a.created_at.isoformat() if a.created_at else None,
            "decided_at": a.decided_at.isoformat() if a.decided_at else None,
            "decided_by": a.decided_by, "decision_reason": a.decision_reason}
