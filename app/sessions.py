"""Live conversation state in Redis (``session:{session_id}``, 30 minutes idle TTL).

Every update runs inside one Lua script per session, so several screening workers touching the
same conversation never lose an update (no read-modify-write from Python). The script orders
messages by their own timestamp (late arrivals are slotted in place), ignores an event id it has
already seen, and returns the Session contract of the design for the PostgreSQL snapshot.

The escalation score here is an exponentially weighted risk over the recent window, damped when
the conversation is slow; the full temporal model (bursts, targeting, pile-ons) builds on it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

SESSION_LUA = """
local key = KEYS[1]
local ttl, window, threshold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local raw = redis.call('GET', key)
local s
if raw then s = cjson.decode(raw) else
  s = {session_id = ARGV[4], platform = ARGV[5], channel_id = ARGV[6], started_at = false,
       last_ts = 0, message_count = 0, harassment_flags_count = 0, participants = {}, window = {}, seen = {}}
end
local seen = {}
for _, id in ipairs(s.seen) do seen[id] = true end
local n = (#ARGV - 6) / 5
for k = 0, n - 1 do
  local b = 7 + 5 * k
  local eid, ts, risk = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  local author, target = ARGV[b + 3], ARGV[b + 4]
  if not seen[eid] then
    seen[eid] = true
    table.insert(s.seen, eid)
    local item = {ts, risk, author, target, eid}
    local pos = #s.window + 1
    while pos > 1 and s.window[pos - 1][1] > ts do pos = pos - 1 end
    table.insert(s.window, pos, item)
    s.message_count = s.message_count + 1
    if risk >= threshold then s.harassment_flags_count = s.harassment_flags_count + 1 end
    s.participants[author] = (s.participants[author] or 0) + 1
    if (not s.started_at) or ts < s.started_at then s.started_at = ts end
    if ts > s.last_ts then s.last_ts = ts end
  end
end
while #s.window > window do table.remove(s.window, 1) end
while #s.seen > 4 * window do table.remove(s.seen, 1) end
-- Escalation: EWMA of risk in time order, damped when messages are minutes apart.
local ewma, prev = 0, nil
for _, item in ipairs(s.window) do
  local pace = 1.0
  if prev then
    local gap = (item[1] - prev) / 1000
    if gap > 120 then pace = 0.5 end
  end
  ewma = 0.7 * ewma + 0.3 * item[2] * pace
  prev = item[1]
end
s.escalation_score = math.floor(ewma * 10000 + 0.5) / 10000
redis.call('SET', key, cjson.encode(s), 'EX', ttl)
return cjson.encode(s)
"""


@dataclass(frozen=True)
class SessionUpdate:
    event_id: str
    session_id: str
    timestamp_ms: int
    risk: float
    author_id: str
    target_id: str | None


def session_key(session_id: str) -> str:
    return f"session:{session_id}"


class SessionStore:
    def __init__(self, client: redis.Redis, *, ttl_s: int, window: int, threshold: float) -> None:
        self.client = client
        self.script = client.register_script(SESSION_LUA)
        self.ttl_s, self.window, self.threshold = ttl_s, window, threshold

    def update(self, updates: Sequence[SessionUpdate], platform_channel: dict[str, tuple[str, str]]
               ) -> dict[str, dict[str, Any]]:
        """Apply a batch of updates, one script call per session, all in one pipeline round trip."""
        by_session: dict[str, list[SessionUpdate]] = defaultdict(list)
        for update in updates:
            by_session[update.session_id].append(update)
        pipe = self.client.pipeline(transaction=False)
        order = list(by_session)
        for session_id in order:
            platform, channel_id = platform_channel[session_id]
            args: list[Any] = [self.ttl_s, self.window, self.threshold, session_id, platform, channel_id]
            for u in by_session[session_id]:
                args += [u.event_id, u.timestamp_ms, round(u.risk, 4), u.author_id, u.target_id or ""]
            self.script(keys=[session_key(session_id)], args=args, client=pipe)
        replies = pipe.execute()
        return {sid: to_contract(json.loads(raw)) for sid, raw in zip(order, replies, strict=True)}

    def get(self, session_id: str) -> dict[str, Any] | None:
        raw = self.client.get(session_key(session_id))
        return to_contract(json.loads(raw)) if raw else None


def to_contract(state: dict[str, Any]) -> dict[str, Any]:
    """Redis state → the design's Session contract."""
    window = state.get("window") or []
    timestamps = [item[0] for item in window]
    participants = state.get("participants") or {}
    started, last = state.get("started_at") or 0, state.get("last_ts") or 0
    return {
        "session_id": state["session_id"],
        "platform": state.get("platform"),
        "channel_id": state.get("channel_id"),
        "participants": sorted(participants),
        "message_count": state.get("message_count", 0),
        "time_span_minutes": round((last - started) / 60_000, 3) if started else 0.0,
        "escalation_score": state.get("escalation_score", 0.0),
        "harassment_flags_count": state.get("harassment_flags_count", 0),
        "temporal_features": {
            "intervals": [round((b - a) / 1000, 3) for a, b in zip(timestamps, timestamps[1:], strict=False)],
            "risk_scores": [item[1] for item in window],
            "targets": [item[3] or None for item in window],
        },
        "started_at_ms": started,
        "last_event_at_ms": last,
    }
