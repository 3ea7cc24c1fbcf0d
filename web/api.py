"""REST API under /v1: ingest, synchronous screening, and the event record."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import TooManyRequests

from app import metrics, records
from app.config import PLATFORMS
from app.schemas import ScreenRequestSchema, load_events
from web.auth import require_api_key
from web.errors import error_response

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
    try:
        result = current_app.extensions["ingestor"].ingest(g.api_key, events)
    except redis.RedisError:
        log.exception("ingest could not reach Redis")
        metrics.INGEST_REJECTED.labels("redis_unavailable").inc()
        return error_response(503, "Event store unavailable; nothing was accepted.")
    if result.limited:
        metrics.INGEST_REJECTED.labels("rate_limited").inc()
        retry_s = max(1, -(-result.retry_after_ms // 1000))
        raise TooManyRequests(description=f"Rate limit exceeded for this key; retry in {retry_s} s.",
                              response=Response(headers={"Retry-After": str(retry_s)}))
    queued = _enqueue(result.accepted)
    body = {"accepted": [a["event"]["event_id"] for a in result.accepted], "duplicates": result.duplicates,
            "queued": queued}
    return jsonify(body), 202


def _enqueue(accepted: list[dict[str, Any]]) -> bool:
    """Queue the batch; on failure the events are already durable in events:raw and the sweeper requeues them."""
    if not accepted:
        return True
    from tasks.celery_app import enqueue_screening

    try:
        enqueue_screening([{"event": a["event"], "received_at": a["received_at"]} for a in accepted])
    except Exception:  # the broker can fail independently of the stream write
        log.exception("could not enqueue %d accepted events; the sweeper will pick them up", len(accepted))
        return False
    return True


@bp.post("/screen")
@require_api_key
def screen_text() -> tuple[Response, int]:
    try:
        body = ScreenRequestSchema().load(json_body())
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
