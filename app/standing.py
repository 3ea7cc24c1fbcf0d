"""An author's standing across sessions, so a repeat offender is recognised in a new channel.

PostgreSQL (``users``) is the record; Redis keeps a one-hour copy per author so screening reads it
without a database round trip: ``user:reputation:{platform}:{user_id}``. The design names the key
``user:reputation:{user_id}``; the platform is part of it here because ids are only unique per
platform (a web chat's "42" is not Discord's "42").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session as DbSession

from app.models import Action, User

TTL_S = 3600
Key = tuple[str, str]
# What counts as a violation: a sanction decided against the author and not undone, dry-run
# included (a shadow deployment still decided it; the API marks it). The same as
# app.pipeline.context's SANCTIONS and COUNTED_STATUSES; users.violation_count holds applied ones only.
SANCTIONS = ("warning", "timeout", "mute", "ban", "delete_message")
DECIDED = ("pending", "applied", "dry_run")


def reputation_key(platform: str, user_id: str) -> str:
    return f"user:reputation:{platform}:{user_id}"


def standing_of(message_count: int, flagged_count: int, violation_count: int) -> dict[str, Any]:
    """``prior`` 0 (clean) → 1 (repeat offender) from flagged messages and applied actions;
    ``reputation`` is its complement, the 0-1 figure the API and moderators see."""
    prior = min(1.0, (flagged_count + 2 * violation_count) / 6)
    return {"messages": message_count, "flagged": flagged_count, "violations": violation_count,
            "prior": round(prior, 4), "reputation": round(1 - prior, 4)}


def queue_priors(pipe: Any, authors: Iterable[Key]) -> Callable[[list[Any], redis.Redis, DbSession], dict[Key, float]]:
    """Each author's prior, Redis first, PostgreSQL for the misses (then cached), read in a caller's
    pipeline (one round trip with its other work): queue the cached standings, and get back the
    function that reads them from the pipeline's replies, asks PostgreSQL for the misses and caches
    what it found."""
    keys = sorted(set(authors))
    start = len(pipe)
    if keys:
        pipe.mget([reputation_key(p, u) for p, u in keys])

    def read(replies: list[Any], client: redis.Redis, db: DbSession) -> dict[Key, float]:
        if not keys:
            return {}
        out: dict[Key, float] = {}
        missing: list[Key] = []
        for key, raw in zip(keys, replies[start], strict=True):
            if raw:
                out[key] = json.loads(raw)["prior"]
            else:
                missing.append(key)
        if missing:
            rows = list(db.execute(select(User.platform, User.user_id, User.message_count, User.flagged_count,
                                          User.violation_count)
                                   .where(tuple_(User.platform, User.user_id).in_(missing))))
            decided = decided_violations(db, [(r[0], r[1]) for r in rows])
            found = {(r[0], r[1]): standing_of(r[2], r[3], max(r[4], sum(decided.get((r[0], r[1]), {}).values())))
                     for r in rows}
            for key in missing:
                out[key] = found[key]["prior"] if key in found else 0.0
            cache(client, found.items())
        return out

    return read


def cache(client: redis.Redis, standings: Iterable[tuple[Key, dict[str, Any]]]) -> None:
    pipe = client.pipeline(transaction=False)
    for (platform, user_id), standing in standings:
        pipe.set(reputation_key(platform, user_id), json.dumps(standing), ex=TTL_S)
    pipe.execute()


def refresh(client: redis.Redis, rows: Sequence[Any], db: DbSession | None = None) -> None:
    """Re-cache after an update that RETURNING gave us (platform, user_id, messages, flagged, violations);
    with ``db``, the violations are the decided ones (dry-run and pending too), not only the applied."""
    decided = decided_violations(db, [(r[0], r[1]) for r in rows]) if db is not None else {}
    cache(client, (((r[0], r[1]), standing_of(r[2], r[3], max(r[4], sum(decided.get((r[0], r[1]), {}).values()))))
                   for r in rows))


def decided_violations(db: DbSession, keys: Sequence[Key]) -> dict[Key, dict[str, int]]:
    """Sanctions decided against each author and not undone, by status (pending, applied, dry_run)."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = db.execute(select(Action.platform, Action.user_id, Action.status, func.count())
                      .where(Action.user_id.in_(sorted({u for _, u in wanted})), Action.action_type.in_(SANCTIONS),
                             Action.status.in_(DECIDED))
                      .group_by(Action.platform, Action.user_id, Action.status))
    out: dict[Key, dict[str, int]] = {}
    for platform, user_id, status, count in rows:
        if (platform, user_id) in wanted:
            out.setdefault((platform, user_id), {})[status] = count
    return out
