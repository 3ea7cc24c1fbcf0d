"""Conversations, authors and alerts: what the temporal model sees."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from app import records
from app.charts import session_risk_svg
from app.config import PLATFORMS
from web.auth import require_api_key
from web.errors import error_response

bp = Blueprint("sessions", __name__, url_prefix="/v1")


@bp.get("/sessions/<path:session_id>")
@require_api_key
def get_session(session_id: str) -> tuple[Response, int]:
    record = records.session_record(session_id)
    if record is None:
        return error_response(404, f"No session {session_id!r}; session ids look like 'discord:<channel_id>'.")
    return jsonify(record), 200


@bp.get("/sessions/<path:session_id>/chart.svg")
@require_api_key
def session_chart(session_id: str) -> tuple[Response, int]:
    """The session's risk over time: one dot per message in the live window, the threshold dashed."""
    record = records.session_record(session_id)
    if record is None:
        return error_response(404, f"No session {session_id!r}; session ids look like 'discord:<channel_id>'.")
    threshold = current_app.config["SETTINGS"].SCREENING_THRESHOLD
    return Response(session_risk_svg(record, threshold), mimetype="image/svg+xml"), 200


@bp.get("/users/<platform>/<user_id>")
@require_api_key
def get_user(platform: str, user_id: str) -> tuple[Response, int]:
    if platform not in PLATFORMS:
        return error_response(400, f"Unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}.")
    record = records.user_record(platform, user_id)
    if record is None:
        return error_response(404, f"No messages from {platform} user {user_id!r} have been screened.")
    return jsonify(record), 200


@bp.get("/alerts")
@require_api_key
def list_alerts() -> tuple[Response, int]:
    raw = request.args.get("limit", "50")
    limit = min(int(raw), 500) if raw.isascii() and raw.isdigit() else 50  # "²" passes isdigit, not int()
    return jsonify({"alerts": records.alert_list(limit, request.args.get("session_id"))}), 200
