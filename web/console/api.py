"""``POST /v1/appeals``: a platform integration files a user's appeal (API key, JSON)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from marshmallow import Schema, ValidationError, fields, validate

from app.console import appeals
from web.api import json_body
from web.auth import require_api_key
from web.errors import error_response

bp = Blueprint("appeals_api", __name__, url_prefix="/v1")


class AppealSchema(Schema):
    action_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    statement = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    source = fields.String(load_default="api", validate=validate.Length(min=1, max=48))


@bp.post("/appeals")
@require_api_key
def file_appeal() -> tuple[Response, int]:
    try:
        body = AppealSchema().load(json_body())
    except ValidationError as exc:
        return error_response(400, "Validation failed.", errors=exc.messages)  # type: ignore[return-value]
    try:
        appeal, new = appeals.file(body["action_id"], body["statement"], source=f"api:{body['source']}")
    except appeals.AppealError as exc:
        return error_response(exc.status, str(exc))  # type: ignore[return-value]
    return jsonify({"appeal": appeal, "new": new}), 201 if new else 200


@bp.get("/appeals/<appeal_id>")
@require_api_key
def get_appeal(appeal_id: str) -> tuple[Response, int]:
    appeal = appeals.get(appeal_id)
    if appeal is None:
        return error_response(404, f"No appeal {appeal_id!r}.")  # type: ignore[return-value]
    return jsonify({"appeal": appeal}), 200
