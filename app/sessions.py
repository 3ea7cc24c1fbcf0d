"""Conversations as temporal processes: live session state in Redis (``session:{session_id}``).

Every update runs inside one Lua script per session, so several screening workers touching the
same conversation never lose an update (no read-modify-write from Python). The script orders
messages by their own timestamp (late arrivals are slotted in place), ignores an event id it has
already seen, and for each new message computes, from the conversation *before* it:

- ``heat``: time-decayed mean hostility of the last minutes (profanity and spam count as none);
- ``repeat``: how many hostile messages this author already aimed at the same target (quartered
  when the target attacked the author first: a victim answering back is not a repeat offender);
- ``pile_on``: distinct authors addressing the same target in the pile-on window (three or more,
  at least two of them hostile: a raid often opens with jeers the model alone lets through);
- a hostile reply to someone who has attacked the author twice is damped, not raised: the victim
  answering back is not the aggressor (flag ``answering_harasser``);
- the author's standing across sessions (``prior``, from the caller).

Only a message that is already somewhat hostile (model risk ≥ ``min_boost`` in a hostile
category) is raised by these signals, so friendly banter with profanity never escalates. The
script returns each message's final risk and flags, alerts to raise, and the new state.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

SESSION_LUA = r"""
local key = KEYS[1]
local P = cjson.decode(ARGV[1])
local raw = redis.call('GET', key)
local s
if raw then s = cjson.decode(raw) else
  s = {session_id = P.session_id, platform = P.platform, channel_id = P.channel_id, started_at = 0,
       last_ts = 0, message_count = 0, harassment_flags_count = 0, escalation_score = 0,
       window = {}, participants = {}, targets = {}, alerted = {escalation = 0, pile_on = {}}}
end
if type(s.participants) ~= 'table' then s.participants = {} end
if type(s.targets) ~= 'table' then s.targets = {} end
local seen = {}
for _, m in ipairs(s.window) do seen[m[7]] = true end

local function clamp(x) if x < 0 then return 0 elseif x > 1 then return 1 end return x end

local function heat_before(ts)
  local num, den = 0, 0
  for _, m in ipairs(s.window) do
    local age = (ts - m[1]) / 1000
    if age >= 0 and age <= P.heat_horizon_s then
      local w = math.exp(-age / P.heat_half_life_s)
      num = num + w * m[4]
      den = den + w
    end
  end
  if den == 0 then return 0, 0 end
  return num / den, den
end

local function count_recent(ts, seconds)
  local n = 0
  for _, m in ipairs(s.window) do
    if m[1] <= ts and (ts - m[1]) / 1000 <= seconds then n = n + 1 end
  end
  return n
end

-- Clearly hostile messages (model risk >= repeat_min_risk) from `from` to `to` before ts.
local function hostile_hits(from, to, ts)
  local n, t = 0, s.targets[to]
  if not t then return 0 end
  for _, h in ipairs(t.hits) do
    if h.author == from and h.strong == 1 and h.ts <= ts and (ts - h.ts) / 1000 <= P.heat_horizon_s then n = n + 1 end
  end
  return n
end

local results = {}
local alerts = {}
for _, e in ipairs(P.events) do
  if not seen[e.eid] then
    seen[e.eid] = true
    local hostile = e.hostile == 1 and e.risk >= P.min_boost
    local heat = heat_before(e.ts)
    local burst = clamp(count_recent(e.ts, 60) / P.burst_messages)
    local target = e.target ~= '' and e.target or nil
    local repeat_n, harassed_by_target, pile, hostile_pile = 0, 0, {}, {}
    if target then
      repeat_n = hostile_hits(e.author, target, e.ts)
      harassed_by_target = hostile_hits(target, e.author, e.ts)
      local t = s.targets[target]
      if t then
        for _, h in ipairs(t.hits) do
          if h.ts <= e.ts and (e.ts - h.ts) / 1000 <= P.pile_window_s then
            pile[h.author] = true
            if h.hostile == 1 then hostile_pile[h.author] = true end
          end
        end
      end
      if e.risk >= P.pile_min_risk then pile[e.author] = true end
      if hostile then hostile_pile[e.author] = true end
    end
    local pile_authors, hostile_authors = 0, 0
    for _ in pairs(pile) do pile_authors = pile_authors + 1 end
    for _ in pairs(hostile_pile) do hostile_authors = hostile_authors + 1 end
    local piled = target and pile_authors >= P.pile_on_authors and hostile_authors >= P.pile_on_hostile

    local final, flags = e.risk, {}
    if hostile and harassed_by_target >= 2 and repeat_n < harassed_by_target then
      -- The author is answering someone who keeps attacking them: a victim, not the aggressor.
      final = e.risk * P.victim_damp
      table.insert(flags, 'answering_harasser')
    elseif hostile then
      -- Heat only tips messages the model already leans on; repetition and pile-ons reach lower.
      local heat_excess = 0
      if e.risk >= P.heat_min_risk then heat_excess = clamp((heat - P.heat_floor) / (1 - P.heat_floor)) end
      local rep = clamp(repeat_n / P.repeat_full)
      if harassed_by_target > 0 and harassed_by_target >= repeat_n then rep = rep * 0.25 end
      local boost = P.w_heat * heat_excess + P.w_burst * burst * heat_excess + P.w_repeat * rep
                    + P.w_pile * (piled and 1 or 0) + P.w_prior * e.prior
      final = clamp(e.risk + boost)
      if heat_excess > 0.25 then table.insert(flags, 'escalating_session') end
      if rep >= 0.5 then table.insert(flags, 'repeated_targeting') end
      if piled then table.insert(flags, 'pile_on') end
      if e.prior >= 0.5 then table.insert(flags, 'repeat_offender') end
    end

    -- Insert in timestamp order; the window keeps the newest P.window messages.
    -- Window items are arrays (ts, risk, final, hostility, author, target, eid): the state is
    -- decoded and encoded on every update, and repeated keys would double its size.
    local item = {e.ts, e.risk, final, hostile and e.risk or e.risk * 0.5 * e.hostile, e.author, e.target, e.eid}
    local pos = #s.window + 1
    while pos > 1 and s.window[pos - 1][1] > e.ts do pos = pos - 1 end
    table.insert(s.window, pos, item)
    while #s.window > P.window do table.remove(s.window, 1) end

    s.message_count = s.message_count + 1
    local flagged = final >= P.threshold
    if flagged then s.harassment_flags_count = s.harassment_flags_count + 1 end
    if s.started_at == 0 or e.ts < s.started_at then s.started_at = e.ts end
    if e.ts > s.last_ts then s.last_ts = e.ts end

    local p = s.participants[e.author] or {n = 0, flagged = 0, max_risk = 0, recent = 0, targets = {}}
    if type(p.targets) ~= 'table' then p.targets = {} end
    p.n = p.n + 1
    if not p.last or e.ts > p.last then p.last = e.ts end
    if flagged then p.flagged = p.flagged + 1 end
    if final > p.max_risk then p.max_risk = final end
    p.recent = 0.6 * p.recent + 0.4 * final
    if target then p.targets[target] = (p.targets[target] or 0) + 1 end
    s.participants[e.author] = p

    if target then
      local t = s.targets[target] or {hits = {}, flagged = 0, authors = {}}
      if type(t.authors) ~= 'table' then t.authors = {} end
      if e.risk >= P.pile_min_risk then
        table.insert(t.hits, {ts = e.ts, author = e.author, hostile = hostile and 1 or 0,
                              strong = (hostile and e.risk >= P.repeat_min_risk) and 1 or 0})
      end
      if flagged then
        t.flagged = t.flagged + 1
        t.authors[e.author] = true
      end
      -- Keep hostile hits for the horizon (repeat targeting) and the rest for the pile-on window only.
      local kept = {}
      for _, h in ipairs(t.hits) do
        local age = (s.last_ts - h.ts) / 1000
        if age <= P.pile_window_s or (h.hostile == 1 and age <= P.heat_horizon_s) then table.insert(kept, h) end
      end
      while #kept > P.max_hits do table.remove(kept, 1) end
      t.hits = kept
      s.targets[target] = t
      local last = s.alerted.pile_on[target]
      if hostile and piled and (not last or (e.ts - last) / 1000 > P.heat_horizon_s) then
        s.alerted.pile_on[target] = e.ts
        local names = {}
        for a in pairs(pile) do table.insert(names, a) end
        table.insert(alerts, {kind = 'pile_on', target = target, authors = names, eid = e.eid, ts = e.ts})
      end
    end
    table.insert(results, {eid = e.eid, final = final, flags = flags, heat = heat, burst = burst,
                           repeat_n = repeat_n, pile_authors = pile_authors, hostile_authors = hostile_authors})
  end
end
-- Long busy channels: forget clean participants and quiet targets that left the horizon.
local horizon_ms = P.heat_horizon_s * 1000
for uid, p in pairs(s.participants) do
  if p.flagged == 0 and p.last and s.last_ts - p.last > horizon_ms then s.participants[uid] = nil end
end
for uid, t in pairs(s.targets) do
  if t.flagged == 0 and #t.hits == 0 then s.targets[uid] = nil end
end

-- Session escalation: recent hostility, its trend and the pace, read at the newest message.
local heat_now = heat_before(s.last_ts)
local n = #s.window
local recent, older, rn, on = 0, 0, 0, 0
-- Hostility, not blame: a flame war heats the room even when one side is only answering back.
for i = n, math.max(1, n - 4), -1 do recent = recent + s.window[i][4]; rn = rn + 1 end
for i = n - 5, math.max(1, n - 9), -1 do older = older + s.window[i][4]; on = on + 1 end
local trend = 0
if on > 0 then trend = clamp((recent / rn - older / on) * 2) end
local pace = clamp(count_recent(s.last_ts, 60) / P.burst_messages)
local escalation = clamp(0.7 * heat_now + 0.25 * trend + 0.2 * pace * heat_now)
s.escalation_score = math.floor(escalation * 10000 + 0.5) / 10000
if s.escalation_score >= P.alert_escalation and s.alerted.escalation == 0 then
  s.alerted.escalation = 1
  table.insert(alerts, {kind = 'escalation', escalation = s.escalation_score, ts = s.last_ts})
elseif s.escalation_score < P.alert_escalation / 2 then
  s.alerted.escalation = 0
end
-- PostgreSQL gets a snapshot when something happened (a flag, an alert) or the last one is older
-- than snapshot_every_s; otherwise the session is marked dirty and the maintenance task writes it.
local flagged_now = #alerts > 0
for _, r in ipairs(results) do if r.final >= P.threshold then flagged_now = true end end
local due = flagged_now or (s.last_ts - (s.snap_ts or 0)) / 1000 >= P.snapshot_every_s or not s.snap_ts
if due and #results > 0 then
  s.snap_ts = s.last_ts
  redis.call('ZREM', KEYS[2], P.session_id)
elseif #results > 0 then
  local now = redis.call('TIME')
  redis.call('ZADD', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000), P.session_id)
end
redis.call('SET', key, cjson.encode(s), 'EX', P.ttl)
if not (due and #results > 0) then
  return cjson.encode({lite = {message_count = s.message_count, escalation_score = s.escalation_score},
                       results = results, alerts = alerts})
end
-- The caller needs the Session contract, not the bookkeeping: leave hits and alert marks out.
local targets = {}
for uid, t in pairs(s.targets) do targets[uid] = {flagged = t.flagged, authors = t.authors} end
local view = {session_id = s.session_id, platform = s.platform, channel_id = s.channel_id,
              started_at = s.started_at, last_ts = s.last_ts, message_count = s.message_count,
              harassment_flags_count = s.harassment_flags_count, escalation_score = s.escalation_score,
              window = s.window, participants = s.participants, targets = targets}
return cjson.encode({state = view, results = results, alerts = alerts})
"""


@dataclass(frozen=True)
class SessionParams:
    """The knobs of the temporal model; defaults tuned on the conversation benchmark (make eval-sessions)."""

    ttl: int = 1800
    window: int = 50
    threshold: float = 0.7
    min_boost: float = 0.35
    heat_horizon_s: float = 600.0
    heat_half_life_s: float = 180.0
    heat_floor: float = 0.25
    heat_min_risk: float = 0.5
    repeat_min_risk: float = 0.35
    burst_messages: float = 10.0
    repeat_full: float = 2.0
    pile_window_s: float = 120.0
    pile_min_risk: float = 0.15
    pile_on_authors: int = 3
    pile_on_hostile: int = 2
    max_hits: int = 24
    snapshot_every_s: float = 10.0
    victim_damp: float = 0.7
    alert_escalation: float = 0.6
    w_heat: float = 0.25
    w_burst: float = 0.1
    w_repeat: float = 0.25
    w_pile: float = 0.35
    w_prior: float = 0.15
    enabled: bool = True


@dataclass(frozen=True)
class SessionUpdate:
    event_id: str
    session_id: str
    timestamp_ms: int
    risk: float
    hostile: bool          # the model's category is abuse (not none, profanity or spam)
    author_id: str
    target_id: str | None  # the addressed user: reply parent, first mention or the event's user_id
    prior: float = 0.0     # the author's standing across sessions, 0 (clean) to 1 (repeat offender)


@dataclass
class MessageVerdict:
    final_risk: float
    flags: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionResult:
    contract: dict[str, Any]  # the full contract when a snapshot is due, else message_count and escalation
    verdicts: dict[str, MessageVerdict]
    alerts: list[dict[str, Any]]
    snapshot: bool = True


DIRTY_KEY = "sessions:dirty"  # sorted set: sessions whose newest state is not yet in PostgreSQL


def session_key(session_id: str) -> str:
    return f"session:{session_id}"


# Drop a dirty mark only if nobody marked the session again since it was read.
CLEAR_DIRTY_LUA = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""


def dirty_sessions(client: redis.Redis, older_than_ms: int, limit: int = 500) -> list[tuple[str, float]]:
    """Sessions with updates not yet snapshotted, marked before ``older_than_ms`` (epoch ms)."""
    return [(sid, score) for sid, score in
            client.zrangebyscore(DIRTY_KEY, "-inf", older_than_ms, start=0, num=limit, withscores=True)]


def clear_dirty(client: redis.Redis, session_id: str, score: float) -> None:
    client.eval(CLEAR_DIRTY_LUA, 1, DIRTY_KEY, session_id, repr(score) if score % 1 else str(int(score)))


class SessionStore:
    def __init__(self, client: redis.Redis, params: SessionParams) -> None:
        self.client = client
        self.script = client.register_script(SESSION_LUA)
        self.params = params

    def update(self, updates: Sequence[SessionUpdate], places: dict[str, tuple[str, str]]
               ) -> dict[str, SessionResult]:
        """Apply a batch, one script call per session, all in one pipeline round trip."""
        by_session: dict[str, list[SessionUpdate]] = defaultdict(list)
        for update in sorted(updates, key=lambda u: u.timestamp_ms):
            by_session[update.session_id].append(update)
        pipe = self.client.pipeline(transaction=False)
        order = list(by_session)
        base = {k: v for k, v in self.params.__dict__.items() if k != "enabled"}
        for session_id in order:
            platform, channel_id = places[session_id]
            payload = base | {"session_id": session_id, "platform": platform, "channel_id": channel_id,
                              "events": [_event_arg(u, self.params.enabled) for u in by_session[session_id]]}
            self.script(keys=[session_key(session_id), DIRTY_KEY], args=[json.dumps(payload)], client=pipe)
        return {sid: _result(json.loads(raw)) for sid, raw in zip(order, pipe.execute(), strict=True)}

    def get(self, session_id: str) -> dict[str, Any] | None:
        raw = self.client.get(session_key(session_id))
        return to_contract(json.loads(raw)) if raw else None


def _event_arg(u: SessionUpdate, enabled: bool) -> dict[str, Any]:
    # With session signals switched off (the benchmark's baseline) nothing counts as hostile, so
    # the state is still kept but no message is raised by it.
    return {"eid": u.event_id, "ts": u.timestamp_ms, "risk": round(u.risk, 4),
            "hostile": 1 if (u.hostile and enabled) else 0, "author": u.author_id, "target": u.target_id or "",
            "prior": round(u.prior, 4) if enabled else 0.0}


def _result(reply: dict[str, Any]) -> SessionResult:
    lite = reply.get("lite")
    verdicts = {
        r["eid"]: MessageVerdict(float(r["final"]), list(r["flags"] or []),
                                 {k: r[k] for k in ("heat", "burst", "repeat_n", "pile_authors", "hostile_authors")})
        for r in reply["results"] or []
    }
    alerts = list(reply["alerts"] or [])
    if lite:
        return SessionResult(dict(lite), verdicts, alerts, snapshot=False)
    return SessionResult(to_contract(reply["state"]), verdicts, alerts)


def _items(value: Any) -> dict[str, Any]:
    """cjson turns an empty table into {} or [] unpredictably; both mean 'nothing'."""
    return value if isinstance(value, dict) else {}


def to_contract(state: dict[str, Any]) -> dict[str, Any]:
    """Redis state → the design's Session contract, with per-participant and per-target detail."""
    window = state.get("window") or []
    timestamps = [m[0] for m in window]
    participants = _items(state.get("participants"))
    targets = _items(state.get("targets"))
    started, last = state.get("started_at") or 0, state.get("last_ts") or 0
    return {
        "session_id": state["session_id"],
        "platform": state.get("platform"),
        "channel_id": state.get("channel_id"),
        "participants": [
            {"user_id": uid, "message_count": p["n"], "flagged_count": p["flagged"],
             "max_risk": round(p["max_risk"], 4), "escalation": round(p["recent"], 4),
             "targets": sorted(_items(p.get("targets")))}
            for uid, p in sorted(participants.items())],
        "targets": [
            {"user_id": uid, "distinct_authors": len(_items(t.get("authors"))), "flagged_count": t["flagged"]}
            for uid, t in sorted(targets.items())],
        "message_count": state.get("message_count", 0),
        "time_span_minutes": round((last - started) / 60_000, 3) if started else 0.0,
        "escalation_score": state.get("escalation_score", 0.0),
        "harassment_flags_count": state.get("harassment_flags_count", 0),
        "temporal_features": {
            "intervals": [round((b - a) / 1000, 3) for a, b in zip(timestamps, timestamps[1:], strict=False)],
            "risk_scores": [m[2] for m in window],
            "targets": [m[5] or None for m in window],
        },
        "started_at_ms": started,
        "last_event_at_ms": last,
    }
