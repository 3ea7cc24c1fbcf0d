"""The Redis Streams that mirror every stage, and the few helpers that write and read them.

Each entry carries ``event_id`` and ``platform`` as plain fields (so a reader can filter without
parsing) and ``data``: the JSON of the stage's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

RAW = "events:raw"
SCREENED = "events:screened"
REASONING_QUEUE = "events:reasoning_queue"
ACTIONS_PENDING = "events:actions_pending"
ACTIONS_APPLIED = "events:actions_applied"
DLQ_ERRORS = "events:dlq_errors"
ALERTS = "events:alerts"
ALL = (RAW, SCREENED, REASONING_QUEUE, ACTIONS_PENDING, ACTIONS_APPLIED, DLQ_ERRORS, ALERTS)


def entry(event_id: str, platform: str | None, data: Mapping[str, Any], **extra: Any) -> dict[str, str]:
    fields = {"event_id": event_id, "platform": platform or "", "data": json.dumps(data, separators=(",", ":"))}
    fields.update({key: str(value) for key, value in extra.items()})
    return fields


def add_many(pipe: redis.client.Pipeline, stream: str, entries: Iterable[Mapping[str, str]], maxlen: int) -> None:
    """Queue XADDs on a pipeline; approximate MAXLEN keeps trimming cheap."""
    for fields in entries:
        pipe.xadd(stream, dict(fields), maxlen=maxlen, approximate=True)


def decode(fields: Mapping[str, str]) -> dict[str, Any]:
    """An entry back to a dict: the stage output with the plain fields beside it."""
    out: dict[str, Any] = {key: value for key, value in fields.items() if key != "data"}
    out["data"] = json.loads(fields.get("data", "{}"))
    return out


def dead_letter(client: redis.Redis, *, stage: str, error: str, items: Iterable[Mapping[str, Any]],
                maxlen: int) -> None:
    """Permanent failures land here with their reason, one entry per event, so nothing is silently lost."""
    pipe = client.pipeline(transaction=False)
    for item in items:
        event = item.get("event", item)
        add_many(pipe, DLQ_ERRORS, [entry(str(event.get("event_id", "")), event.get("platform"),
                                          {"stage": stage, "error": error[:2000], "item": item})], maxlen)
    pipe.execute()
