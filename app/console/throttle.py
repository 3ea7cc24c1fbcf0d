"""Failed sign-ins counted in Redis, per account name and per client address, each in a fixed window.

A name is counted whether or not an account has it, and a refusal reads the same either way, so the
throttle tells nobody which names exist. While either budget is spent every attempt is refused without
checking the password (a right guess during the lock would otherwise still be recognisable). The window
starts at the first failure and is not extended by refused attempts, so Retry-After is honest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis

WINDOW_S = 15 * 60
ACCOUNT_LIMIT = 5  # failures per account name per window
# Per client address: room for a few people sharing an office NAT. Behind a reverse proxy every client
# has the proxy's address (the console reads the socket's peer, never X-Forwarded-For, which a client
# could forge), so there this budget is shared by all and the per-account one does the real work.
ADDRESS_LIMIT = 50


@dataclass(frozen=True)
class Blocked:
    scope: str  # "account" or "address"
    retry_after_s: int


def _account_key(username: str) -> str:
    return "console:signin_failures:account:" + hashlib.sha256(username.encode()).hexdigest()


def _address_key(address: str) -> str:
    return "console:signin_failures:address:" + address


def blocked(client: redis.Redis, username: str, address: str) -> Blocked | None:
    """Whether an attempt for ``username`` from ``address`` is refused now, and for how long."""
    pipe = client.pipeline(transaction=False)
    for key in (_account_key(username), _address_key(address)):
        pipe.get(key)
        pipe.ttl(key)
    account, account_ttl, by_address, address_ttl = pipe.execute()
    if account is not None and int(account) >= ACCOUNT_LIMIT:
        return Blocked("account", max(int(account_ttl), 1))
    if by_address is not None and int(by_address) >= ADDRESS_LIMIT:
        return Blocked("address", max(int(address_ttl), 1))
    return None


def record_failure(client: redis.Redis, username: str, address: str) -> Blocked | None:
    """Count one failure against both budgets; returns the lock this failure started, if any."""
    pipe = client.pipeline(transaction=True)
    for key in (_account_key(username), _address_key(address)):
        pipe.set(key, 0, ex=WINDOW_S, nx=True)  # the window opens at the first failure (works on Redis 6.2)
        pipe.incr(key)
    _, account, _, by_address = pipe.execute()
    if account == ACCOUNT_LIMIT:
        return Blocked("account", WINDOW_S)
    if by_address == ADDRESS_LIMIT:
        return Blocked("address", WINDOW_S)
    return None


def clear_account(client: redis.Redis, username: str) -> None:
    """A successful sign-in (or an admin's unlock) forgives the account's failures, not the address's."""
    client.delete(_account_key(username))
