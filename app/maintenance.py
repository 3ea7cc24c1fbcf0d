"""Maintenance: the sweeper that re-enqueues accepted events that never reached PostgreSQL.

``events:raw`` is the durable record of what was accepted. If a screening message is lost (the
broker restarted without persistence, a send failed after the XADD), the event is still in the
stream; the sweeper walks the stream behind a checkpoint, finds entries older than a grace period
with no row in ``events`` and queues them again. Screening is idempotent, so a false alarm costs a
skipped row, never a double screening.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session as DbSession

from app import streams
from app.models import Event

CHECKPOINT_KEY = "sweep:events:raw:checkpoint"
BUSY_QUEUE_LENGTH = 1_000


def sweep(client: redis.Redis, db: DbSession, enqueue: Callable[[list[dict[str, Any]]], None], *,
          grace_s: int, limit: int = 2_000, chunk: int = 100, now_ms: int | None = None) -> int:
    """Re-enqueue stuck events; returns how many. Skips when the screening queue is merely busy."""
    if client.llen("screening") > BUSY_QUEUE_LENGTH:
        return 0
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    start = client.get(CHECKPOINT_KEY)
    entries = client.xrange(streams.RAW, min=f"({start}" if start else "-", max=str(now_ms - grace_s * 1000),
                            count=limit)
    if not entries:
        return 0
    items = [{"event": json.loads(f["data"]), "received_at": int(f["received_at"]), "stream_id": sid}
             for sid, f in entries]
    stored = _stored(db, items)
    missing = [i for i in items if (i["event"]["platform"], i["event"]["event_id"]) not in stored]
    for n in range(0, len(missing), chunk):
        enqueue(missing[n:n + chunk])
    client.set(CHECKPOINT_KEY, entries[-1][0])
    return len(missing)


def _stored(db: DbSession, items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    keys = [(i["event"]["platform"], i["event"]["event_id"]) for i in items]
    rows = db.execute(select(Event.platform, Event.event_id).where(tuple_(Event.platform, Event.event_id).in_(keys)))
    return {(p, e) for p, e in rows}
