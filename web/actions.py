"""REST API for actions: read one with its audit trail, and reverse an applied one.

A reversal is checked here (the action exists and is an applied sanction) and carried out by the
``act.reverse`` task on the actions queue, which calls the platform with retries and writes the
audit row naming the moderator; the answer is 202 as soon as it is queued.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from app.db import session_scope
from app.models import Action, AuditLog
from app.pipeline import act
from web.api import json_body
from web.auth import require_api_key
from web.errors import error_response

bp = Blueprint("actions", __name__, url_prefix="/v1")


class ReverseSchema(Schema):
    moderator = fields.String(required=True, validate=validate.Length(min=1, max=100))
    reason = fields.String(load_default="", validate=validate.Length(max=500))


@bp.get("/actions/<action_id>")
@require_api_key
def get_action(action_id: str) -> tuple[Response, int]:
    with session_scope() as db:
        action = db.get(Action, action_id)
        if action is None:
            return error_response(404, f"No action {action_id!r}.")  # type: ignore[return-value]
        audit = db.scalars(select(AuditLog).where(AuditLog.action_id == action_id).order_by(AuditLog.id))
        return jsonify({"action": act.action_dict(action), "audit": [_audit(row) for row in audit]}), 200


@bp.post("/actions/<action_id>/reverse")
@require_api_key
def reverse_action(action_id: str) -> tuple[Response, int]:
    try:
        body = ReverseSchema().load(json_body())
    except ValidationError as exc:
        return error_response(400, "Validation failed.", errors=exc.messages)  # type: ignore[return-value]
    with session_scope() as db:
        action = db.get(Action, action_id)
        if action is None:
            return error_response(404, f"No action {action_id!r}.")  # type: ignore[return-value]
        record = act.action_dict(action)
        if action.status == "reversed":
            return jsonify({"action_id": action_id, "status": "reversed", "action": record}), 200
        try:
            act.check_reversible(action)
        except act.NotReversible as exc:
            return error_response(409, str(exc))  # type: ignore[return-value]
    enqueue_reversal(action_id, f"moderator:{body['moderator']}", body["reason"])
    return jsonify({"action_id": action_id, "status": "reversing", "action": record}), 202


def enqueue_reversal(action_id: str, actor: str, reason: str) -> None:
    from tasks.celery_app import app as celery

    celery.send_task("act.reverse", args=[action_id, actor, reason], queue="actions")


def _audit(row: AuditLog) -> dict[str, Any]:
    return {"at": row.at.isoformat(), "actor": row.actor, "kind": row.kind, "event_id": row.event_id,
            "platform": row.platform, "detail": row.detail}
