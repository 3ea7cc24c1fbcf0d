"""REST API under /v1: ingest, synchronous screening, and the event record."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from marshmallow import ValidationError

from app import metrics, records
from app.config import PLATFORMS
from app.schemas import load_events, screen_request_schema
from web.auth import require_api_key
from web.errors import error_response
from web.intake import accept

bp = Blueprint("api", __name__, url_prefix="/v1")
log = logging.getLogger(__name__)


def json_body() -> Any:
    """The request's JSON, or a 415/400 that says exactly what was wrong."""
    if not request.is_json:
        metrics.INGEST_REJECTED.labels("unsupported_media_type").inc()
        abort(415, description=f"Expected application/json, got {request.mimetype or 'no Content-Type'}.")
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError) as exc:
        metrics.INGEST_REJECTED.labels("malformed_json").inc()
        abort(400, description=f"Body is not valid JSON: {exc}")
    except RecursionError:  # "[[[[..." deeper than the parser's stack: was a 500
        metrics.INGEST_REJECTED.labels("malformed_json").inc()
        abort(400, description="Body is nested too deeply to be an Event.")


@bp.post("/events/ingest")
@require_api_key
def ingest() -> tuple[Response, int]:
    settings = current_app.config["SETTINGS"]
    payload = json_body()
    try:
        events = load_events(payload, max_events=settings.MAX_BATCH_EVENTS, max_chars=settings.MAX_MESSAGE_CHARS)
    except ValidationError as exc:
        metrics.INGEST_REJECTED.labels("invalid").inc()
        return error_response(400, "Validation failed; nothing was accepted.", errors=exc.messages)
    return jsonify(accept(g.api_key, events)), 202


@bp.post("/screen")
@require_api_key
def screen_text() -> tuple[Response, int]:
    try:
        body = screen_request_schema(current_app.config["SETTINGS"].MAX_MESSAGE_CHARS).load(json_body())
    except ValidationError as exc:
        return error_response(400, "Validation failed.", errors=exc.messages)
    return jsonify(records.screen_now(body["text"], body["context"],
                                      current_app.config["SETTINGS"].SCREENING_MODEL)), 200


@bp.get("/events/<event_id>")
@require_api_key
def get_event(event_id: str) -> tuple[Response, int]:
    platform = request.args.get("platform")
    if platform is not None and platform not in PLATFORMS:
        return error_response(400, f"Unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}.")
    record = records.event_record(event_id, platform)
    if record is None:
        return error_response(404, f"No event {event_id!r} has been received.")
    return jsonify(record), 200
