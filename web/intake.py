"""What every way in shares once events are validated: rate limit, dedup, mirror, enqueue."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Response, current_app
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from app import metrics

log = logging.getLogger(__name__)


def accept(bucket: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Accept canonical events; raises 429/503 HTTP errors with nothing written."""
    try:
        result = current_app.extensions["ingestor"].ingest(bucket, events)
    except redis.RedisError as exc:
        log.exception("ingest could not reach Redis")
        metrics.INGEST_REJECTED.labels("redis_unavailable").inc()
        raise ServiceUnavailable(description="Event store unavailable; nothing was accepted.") from exc
    if result.limited:
        metrics.INGEST_REJECTED.labels("rate_limited").inc()
        retry_s = max(1, -(-result.retry_after_ms // 1000))
        raise TooManyRequests(description=f"Rate limit exceeded; retry in {retry_s} s.",
                              response=Response(headers={"Retry-After": str(retry_s)}))
    return {"accepted": [a["event"]["event_id"] for a in result.accepted], "duplicates": result.duplicates,
            "queued": _enqueue(result.accepted)}


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
