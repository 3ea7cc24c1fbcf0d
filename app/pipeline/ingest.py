"""Ingest: rate limit, deduplicate and mirror accepted events into ``events:raw`` in one Redis call.

One Lua script does the token bucket, ``SET NX dedup:{platform}:{event_id}`` and ``XADD`` for a
whole request, so a request costs one round trip and is all-or-nothing with respect to the rate
limit: either the bucket had room for every event and each new one is mirrored, or nothing is
written at all.

``events:raw`` is also the screening queue: the screening workers read it through a consumer
group (app/streams.py). The same script says whether the web must wake a reader with a
``screen.batch`` message: only when none is queued already (``screen:wake``, set here, cleared by
the task when it starts), so a busy webhook sends a Celery message every few dozen events, not one
per request.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from app import streams

INGEST_LUA = """
local rate, burst, now_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost, ttl, maxlen, received_at = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local group, wake_ms = ARGV[8], tonumber(ARGV[9])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(bucket[1]), tonumber(bucket[2])
if tokens == nil then tokens, ts = burst, now_ms end
tokens = math.min(burst, tokens + math.max(0, now_ms - ts) * rate / 1000)
if tokens < cost then
  return {-1, math.ceil((cost - tokens) * 1000 / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tokens - cost, 'ts', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
local out = {1}
local added = 0
for i = 4, #KEYS do
  local base = 9 + 3 * (i - 4)
  if redis.call('SET', KEYS[i], '-', 'NX', 'EX', ttl) then
    if added == 0 and redis.call('EXISTS', KEYS[2]) == 0 then
      -- a fresh (or flushed) Redis: the readers' group must exist before the first entry
      redis.call('XGROUP', 'CREATE', KEYS[2], group, '0', 'MKSTREAM')
    end
    added = added + 1
    local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*',
      'event_id', ARGV[base + 1], 'platform', ARGV[base + 2], 'received_at', received_at,
      'data', ARGV[base + 3])
    redis.call('SET', KEYS[i], id, 'XX', 'KEEPTTL')
    out[#out + 1] = id
  else
    out[#out + 1] = false
  end
end
if added > 0 and redis.call('SET', KEYS[3], '1', 'NX', 'PX', wake_ms) then
  out[1] = 2
end
return out
"""


# Set while a screen.batch message is queued and not yet started. Its TTL bounds how long a lost
# wake message (a broker restart) can hold back the next one; beat's keepalive covers quiet times.
WAKE_KEY = "screen:wake"
WAKE_MS = 2_000


def dedup_key(platform: str, event_id: str) -> str:
    return f"dedup:{platform}:{event_id}"


def ratelimit_key(bucket: str) -> str:
    # Never store an API key itself in Redis: a hash names the bucket just as well.
    return "ratelimit:" + hashlib.sha256(bucket.encode()).hexdigest()[:24]


@dataclass
class IngestResult:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    received_at_ms: int = 0
    retry_after_ms: int | None = None  # set when the rate limit refused the whole request
    wake: bool = False  # no screen.batch was queued: the caller sends one

    @property
    def limited(self) -> bool:
        return self.retry_after_ms is not None


class Ingestor:
    """Holds the registered script so each request is a single EVALSHA."""

    def __init__(self, client: redis.Redis, *, rate_per_s: float, burst: int, dedup_ttl_s: int,
                 stream_maxlen: int, wake_ms: int = WAKE_MS) -> None:
        self.client = client
        self.script = client.register_script(INGEST_LUA)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.dedup_ttl_s = dedup_ttl_s
        self.stream_maxlen = stream_maxlen
        self.wake_ms = wake_ms

    def ingest(self, bucket: str, events: list[dict[str, Any]]) -> IngestResult:
        """``bucket`` names the rate limit: the API key, or the webhook endpoint for platform deliveries."""
        now_ms = int(time.time() * 1000)
        keys = [ratelimit_key(bucket), streams.RAW, WAKE_KEY] + [dedup_key(e["platform"], e["event_id"])
                                                                 for e in events]
        args: list[Any] = [self.rate_per_s, self.burst, now_ms, len(events), self.dedup_ttl_s,
                           self.stream_maxlen, now_ms, streams.SCREENING_GROUP, self.wake_ms]
        for event in events:
            args += [event["event_id"], event["platform"], json.dumps(event, separators=(",", ":"))]
        reply = self.script(keys=keys, args=args)
        result = IngestResult(received_at_ms=now_ms, wake=int(reply[0]) == 2)
        if int(reply[0]) == -1:
            result.retry_after_ms = int(reply[1])
            return result
        for event, stream_id in zip(events, reply[1:], strict=True):
            if stream_id:
                result.accepted.append({"event": event, "received_at": now_ms, "stream_id": stream_id})
            else:
                result.duplicates.append(event["event_id"])
        return result
