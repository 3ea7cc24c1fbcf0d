"""What every way in shares once events are validated: rate limit, dedup, mirror, wake a reader.

Accepted events are queued by the XADD itself (``events:raw`` is read by the screening workers'
consumer group); the web sends a ``screen.batch`` message only when the ingest script says no
reader is awake, not one per request.
"""

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
    if result.wake:
        _wake()
    return {"accepted": [a["event"]["event_id"] for a in result.accepted], "duplicates": result.duplicates,
            "queued": True}


def _wake() -> None:
    """The events are queued already (in the stream); a lost wake only delays them until the wake
    key expires or beat's keepalive runs, so a broker error is logged, not answered with an error."""
    from tasks.celery_app import wake_screening

    try:
        wake_screening()
    except Exception:  # the broker can fail independently of the stream write
        log.exception("could not wake a screening worker; the keepalive will")
