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
from sqlalchemy import and_, func, literal, select
from sqlalchemy.orm import Session as DbSession

from app.db import key_table, key_values
from app.models import Action, User

TTL_S = 3600
# SET KEYS[i] to ARGV[i + 1] with ARGV[1] seconds to live.
CACHE_LUA = "for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1]) end"
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


# A sanction decided and not undone, in plain parameters rather than an expanding IN: a statement
# counting them may run once for many rows (executemany).
DECIDED_SANCTION = (Action.action_type.in_([literal(name) for name in SANCTIONS]),
                    Action.status.in_([literal(name) for name in DECIDED]))


def decided_sanctions(platform: Any, user_id: Any) -> Any:
    """How many sanctions were decided against (platform, user_id) and not undone: a scalar subquery
    on the caller's columns, so the author's totals and this count come back in one statement."""
    return (select(func.count()).where(Action.platform == platform, Action.user_id == user_id, *DECIDED_SANCTION)
            .correlate(User.__table__).scalar_subquery())


_WANTED = key_table("wanted", "platform", "user_id")
_USERS = User.__table__
# An author's totals with the sanctions decided against them (the rows ``of_rows`` reads).
TOTALS = select(_USERS.c.platform, _USERS.c.user_id, _USERS.c.message_count, _USERS.c.flagged_count,
                _USERS.c.violation_count, decided_sanctions(_USERS.c.platform, _USERS.c.user_id)).join(
    _WANTED, and_(_USERS.c.platform == _WANTED.c.platform, _USERS.c.user_id == _WANTED.c.user_id))


def of_rows(rows: Iterable[Sequence[Any]]) -> list[tuple[Key, dict[str, Any]]]:
    """Standings from rows (platform, user_id, messages, flagged, applied violations, decided sanctions):
    the violations are the decided ones (dry-run and pending too) where they outnumber the applied."""
    return [((r[0], r[1]), standing_of(r[2], r[3], max(r[4], r[5]))) for r in rows]


def queue_priors(pipe: Any, authors: Iterable[Key]) -> Callable[[list[Any], DbSession], dict[Key, float]]:
    """Each author's prior, Redis first, PostgreSQL for the misses, read in a caller's pipeline (one
    round trip with its other work): queue the cached standings, and get back the function that reads
    them from the pipeline's replies and asks PostgreSQL for the misses. Caching is the caller's: the
    screening batch caches every author it counted once its transaction committed
    (app.pipeline.screen.publish)."""
    keys = sorted(set(authors))
    start = len(pipe)
    if keys:
        pipe.mget([reputation_key(p, u) for p, u in keys])

    def read(replies: list[Any], db: DbSession) -> dict[Key, float]:
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
            found = dict(of_rows(db.connection().execute(TOTALS, key_values(_WANTED, missing))))
            for key in missing:
                out[key] = found[key]["prior"] if key in found else 0.0
        return out

    return read


def cache(client: redis.Redis, standings: Iterable[tuple[Key, dict[str, Any]]]) -> None:
    pipe = client.pipeline(transaction=False)
    queue_cache(pipe, standings)
    pipe.execute()


def queue_cache(pipe: Any, standings: Iterable[tuple[Key, dict[str, Any]]]) -> None:
    """One command for the lot (a SET each would cost a reply each to the caller)."""
    pairs = [(reputation_key(platform, user_id), json.dumps(standing)) for (platform, user_id), standing in standings]
    if pairs:
        pipe.eval(CACHE_LUA, len(pairs), *[key for key, _ in pairs], TTL_S, *[value for _, value in pairs])


def decided_violations(db: DbSession, keys: Sequence[Key]) -> dict[Key, dict[str, int]]:
    """Sanctions decided against each author and not undone, by status (pending, applied, dry_run)."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = db.execute(select(Action.platform, Action.user_id, Action.status, func.count())
                      .where(Action.user_id.in_(sorted({u for _, u in wanted})), *DECIDED_SANCTION)
                      .group_by(Action.platform, Action.user_id, Action.status))
    out: dict[Key, dict[str, int]] = {}
    for platform, user_id, status, count in rows:
        if (platform, user_id) in wanted:
            out.setdefault((platform, user_id), {})[status] = count
    return out
