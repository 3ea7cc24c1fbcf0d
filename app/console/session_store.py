"""Console sessions in Redis, and an index of each account's sessions so one can end the others.

A session lives under ``console:session:<sha256 of the cookie's token>``; the index
``console:account_sessions:<account id>`` is a set of those keys. A session that expired on its own
leaves a stale member, which every read of the index prunes; the index itself expires with the
account's last session.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import redis

PREFIX = "console:session:"


def key(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


def _index(account_id: int) -> str:
    return f"console:account_sessions:{account_id}"


def create(client: redis.Redis, account_id: int, ttl_s: int, *, address: str = "", agent: str = "") -> str:
    """A new session for the account; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    data = {"account_id": account_id, "csrf": secrets.token_urlsafe(32), "started_at": int(time.time()),
            "address": address[:64], "agent": agent[:200]}
    pipe = client.pipeline(transaction=True)
    pipe.set(key(token), json.dumps(data), ex=ttl_s)
    pipe.sadd(_index(account_id), key(token))
    pipe.expire(_index(account_id), ttl_s)
    pipe.execute()
    return token


def load(client: redis.Redis, token: str, ttl_s: int) -> dict[str, Any] | None:
    """The session's data, its idle life renewed; None when there is none."""
    raw = client.get(key(token))
    if not raw:
        return None
    data: dict[str, Any] = json.loads(raw)
    pipe = client.pipeline(transaction=False)
    pipe.expire(key(token), ttl_s)
    pipe.expire(_index(int(data["account_id"])), ttl_s)
    pipe.execute()
    return data


def end(client: redis.Redis, token: str, account_id: int | None = None) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(key(token), key(token) + ":flash")
    if account_id is not None:
        pipe.srem(_index(account_id), key(token))
    pipe.execute()


def listing(client: redis.Redis, account_id: int) -> dict[str, dict[str, Any]]:
    """The account's live sessions by their Redis key (stale index members are dropped here)."""
    members = sorted(m.decode() if isinstance(m, bytes) else m for m in client.smembers(_index(account_id)))
    if not members:
        return {}
    raws = client.mget(members)
    live, stale = {}, []
    for member, raw in zip(members, raws, strict=True):
        if raw:
            live[member] = json.loads(raw)
        else:
            stale.append(member)
    if stale:
        client.srem(_index(account_id), *stale)
    return live


def end_all(client: redis.Redis, account_id: int, *, keep_token: str | None = None) -> int:
    """End every session of the account except the one holding ``keep_token``; returns how many ended."""
    keep = key(keep_token) if keep_token else None
    others = [member for member in listing(client, account_id) if member != keep]
    if others:
        pipe = client.pipeline(transaction=True)
        pipe.delete(*others, *(member + ":flash" for member in others))
        pipe.srem(_index(account_id), *others)
        pipe.execute()
    return len(others)
