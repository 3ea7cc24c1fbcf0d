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


# Screening reads ``events:raw`` through one consumer group: each entry is delivered to one
# screening process, stays in the group's pending list until that process has written it to
# PostgreSQL and mirrored it into ``events:screened``, and is claimed by another process when its
# reader died (XAUTOCLAIM). The stream is the queue; Celery messages only wake the readers.
SCREENING_GROUP = "screening"


def ensure_group(client: redis.Redis, stream: str = RAW, group: str = SCREENING_GROUP) -> None:
    """Create the consumer group if it is missing. From the start of the stream: an entry already
    screened is recognised in PostgreSQL and acknowledged without being screened again."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


BACKLOG_COUNT_CAP = 1_000  # the sweeper needs "some wait", not the exact count of a long backlog


def group_backlog(client: redis.Redis, stream: str = RAW, group: str = SCREENING_GROUP) -> tuple[int, int]:
    """(entries never delivered to a reader, entries delivered but not acknowledged) of the group.

    Redis 7 reports the first as the group's ``lag``; Redis 6.2 (the embedded default's wheel) has
    no lag, so it is counted from the group's last delivered id, up to BACKLOG_COUNT_CAP."""
    info = next(g for g in client.xinfo_groups(stream) if g["name"] == group)
    pending = int(info["pending"])
    lag = info.get("lag")
    if lag is not None:
        return int(lag), pending
    last = info.get("last-delivered-id") or "0-0"
    last = last.decode() if isinstance(last, bytes) else str(last)
    return len(client.xrange(stream, min=f"({last}", max="+", count=BACKLOG_COUNT_CAP)), pending


# Acknowledge a screened entry and mirror it in one step: an entry is written to events:screened
# (and events:reasoning_queue when risky) only by the reader whose XACK removed it from the pending
# list, so a batch claimed by a second reader while the first was merely slow is mirrored once, and
# a reader killed before this call leaves its entries pending, to be mirrored by whoever claims them.
ACK_AND_MIRROR_LUA = """
local group, maxlen = ARGV[1], ARGV[2]
local out = {}
for base = 2, #ARGV - 1, 7 do
  local sid, eid, review = ARGV[base + 1], ARGV[base + 2], ARGV[base + 7]
  local mine = 1
  if sid ~= '' then mine = redis.call('XACK', KEYS[1], group, sid) end
  if mine == 1 and eid ~= '' then
    local fields = {'event_id', eid, 'platform', ARGV[base + 3], 'data', ARGV[base + 4],
                    'received_at', ARGV[base + 5], 'screened_at', ARGV[base + 6]}
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    if review == '1' then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    end
  end
  out[#out + 1] = mine
end
return out
"""


class Mirror:
    """One ACK_AND_MIRROR_LUA call for a batch. ``add`` a screened entry (``stream_id`` empty when it
    did not come from the consumer group) or an entry to acknowledge only (``event_id`` empty)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.args: list[str] = []

    def add(self, stream_id: str | None, event_id: str = "", platform: str = "", data: str = "",
            received_at: int = 0, screened_at: int = 0, review: bool = False) -> None:
        self.args += [stream_id or "", event_id, platform, data, str(received_at), str(screened_at),
                      "1" if review else "0"]

    def run(self, pipe: redis.client.Pipeline, maxlen: int) -> None:
        """Queue the call on ``pipe``; its reply is one 1/0 per ``add``, 1 where this call mirrored."""
        if self.args:
            pipe.eval(ACK_AND_MIRROR_LUA, 3, RAW, SCREENED, REASONING_QUEUE, SCREENING_GROUP, maxlen,
                      *self.args)
