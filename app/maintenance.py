"""Maintenance: the sweepers that pick up work whose queue message was lost.

``events:raw`` is the durable record of what was accepted and, through its consumer group, the
screening queue itself: an entry is acknowledged only in the Redis call that mirrors it into
``events:screened``, and one whose reader died is claimed by the next screening task (XAUTOCLAIM,
tasks/screen.py) within seconds. So nothing accepted waits on a sweep; ``sweep`` only wakes a reader
when the group has work and no message came (beat's keepalive does the same every second), and
forgets consumers of processes long gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import exists, select
from sqlalchemy.orm import Session as DbSession

from app import streams
from app.models import Action, Event

BUSY_QUEUE_LENGTH = 1_000


def sweep(client: redis.Redis, wake: Callable[[], None], *, forget_after_s: int = 3_600) -> int:
    """Wake a screening reader when entries wait in the group; returns how many wait (undelivered
    plus pending). A consumer with nothing pending and idle for ``forget_after_s`` is deleted."""
    streams.ensure_group(client)
    undelivered, pending = streams.group_backlog(client)
    waiting = undelivered + pending
    if waiting:
        wake()
    for consumer in client.xinfo_consumers(streams.RAW, streams.SCREENING_GROUP):
        if not consumer["pending"] and consumer["idle"] >= forget_after_s * 1000:
            client.xgroup_delconsumer(streams.RAW, streams.SCREENING_GROUP, consumer["name"])
    return waiting


REASONING_MARK = "sweep:reasoning:{platform}:{event_id}"


def sweep_reasoning(client: redis.Redis, db: DbSession, enqueue: Callable[[list[dict[str, Any]]], None], *,
                    older_than_s: int, limit: int = 500, now: datetime | None = None) -> int:
    """Re-enqueue ``context.gather`` for events screened risky long ago that still have no action.

    A lost context/reason message, a worker that died for good or a dead-lettered attempt leaves the
    event in ``needs_review`` with no ``actions`` row. Both stages skip an event that was decided
    meanwhile, so a false alarm costs one skipped task. A Redis mark (TTL ``older_than_s``) keeps the
    same event from being queued again on every beat while its message waits in a long queue.
    """
    if client.llen("reasoning") > BUSY_QUEUE_LENGTH:
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
    no_action = ~exists().where(Action.platform == Event.platform, Action.event_id == Event.event_id)
    rows = db.execute(select(Event.platform, Event.event_id)
                      .where(Event.status == "needs_review", Event.screened_at < cutoff, no_action)
                      .order_by(Event.screened_at).limit(limit)).all()
    if not rows:
        return 0
    marks = [REASONING_MARK.format(platform=platform, event_id=event_id) for platform, event_id in rows]
    refs = [{"platform": p, "event_id": e} for (p, e), fresh in zip(rows, _mark(client, marks, older_than_s),
                                                                     strict=True) if fresh]
    if refs:
        enqueue(refs)
    return len(refs)


ACTION_MARK = "sweep:actions:{action_id}"


def sweep_actions(client: redis.Redis, db: DbSession, enqueue: Callable[[list[str]], None], *,
                  older_than_s: int, limit: int = 500, now: datetime | None = None) -> int:
    """Send ``act.apply`` again for actions still ``pending`` long after they were decided.

    The reasoning stage commits the action and then sends ``act.apply``; if that message is lost
    (the broker restarted without persistence, the send failed after the commit) the decision never
    reaches the platform and nothing says so. ``apply`` works only on a pending row under a row
    lock, so a message that was merely slow costs one no-op. ``older_than_s`` should outlast the
    act worker's own retries (12 to 24 minutes, tasks/act.py); past it, a retry still waiting on a long
    Retry-After and the sweeper's message may both call the platform, which a timeout or ban set
    twice absorbs. A Redis mark (TTL ``older_than_s``) keeps the same action from being sent again
    on every beat while its message waits in a long queue.
    """
    if client.llen("actions") > BUSY_QUEUE_LENGTH:
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
    ids = db.execute(select(Action.action_id).where(Action.status == "pending", Action.created_at < cutoff)
                     .order_by(Action.created_at).limit(limit)).scalars().all()
    if not ids:
        return 0
    marks = [ACTION_MARK.format(action_id=action_id) for action_id in ids]
    fresh = [action_id for action_id, marked in zip(ids, _mark(client, marks, older_than_s), strict=True) if marked]
    if fresh:
        enqueue(fresh)
    return len(fresh)


def _mark(client: redis.Redis, keys: list[str], ttl_s: int) -> list[bool]:
    """Set each mark unless it is there (one round trip); True where this call set it, i.e. where
    the work was not already queued within the last ``ttl_s`` seconds."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, 1, nx=True, ex=ttl_s)
    return [bool(marked) for marked in pipe.execute()]


def snapshot_sessions(client: redis.Redis, db: DbSession, *, older_than_s: float = 10.0) -> int:
    """Write the newest state of sessions whose last updates skipped the PostgreSQL snapshot
    (screening snapshots at most every few seconds per session), so nothing is lost when the
    30-minute idle key expires."""
    from app.pipeline.screen_store import save_sessions
    from app.sessions import clear_dirty, dirty_sessions, read_state, session_key, to_contract

    marked = dirty_sessions(client, int(time.time() * 1000 - older_than_s * 1000))
    contracts, seen = {}, []
    for session_id, score in marked:
        state = read_state(client, session_key(session_id))
        if state:
            contracts[session_id] = to_contract(state)
        seen.append((session_id, score))
    save_sessions(db, contracts)
    db.commit()
    for session_id, score in seen:
        clear_dirty(client, session_id, score)
    return len(contracts)
