"""Policy settings stored in PostgreSQL, over the environment's defaults, effective without a restart.

The console writes a row per overridden setting and then a fresh token to ``policy:version`` in
Redis. Every process keeps the overrides it last read with the token it saw; one GET per batch or
action tells it whether to read them again. The environment stays the default: a setting with no
row, or reset in the console, is the environment's value.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app import policies
from app.config import PLATFORMS, Settings, _convert
from app.console.models import PolicySetting
from app.db import session_scope
from app.models import AuditLog

VERSION_KEY = "policy:version"
MAX_AGE_S = 60.0  # re-read at least this often, even if the version key was lost with a Redis flush
EDITABLE = ("SCREENING_THRESHOLD", "ACTION_POLICY", "ACTION_POLICY_SCOPES", "ACTIONS_DRY_RUN",
            "DRY_RUN_CHANNELS", "DAILY_ACTION_QUOTA", "EXEMPT_USERS", "EXEMPT_ROLES")
_TYPES = {f.name: f.type for f in dataclasses.fields(Settings)}
_cache: dict[str, tuple[Any, float, dict[str, Any]]] = {}


class PolicyError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def effective(settings: Settings, client: redis.Redis) -> Settings:
    """``settings`` with the console's overrides applied (the same object when there are none)."""
    return _apply(settings, overrides(settings, client))


def queue_effective(pipe: Any, settings: Settings) -> Callable[[list[Any]], Settings]:
    """``effective`` sharing a caller's pipeline (one round trip with its other work): queue the read
    of the version, and get back the function that applies the overrides to the pipeline's replies."""
    start = len(pipe)
    pipe.get(VERSION_KEY)

    return lambda replies: _apply(settings, _overrides(settings, replies[start]))


def overrides(settings: Settings, client: redis.Redis) -> dict[str, Any]:
    return _overrides(settings, client.get(VERSION_KEY))


def _apply(settings: Settings, values: dict[str, Any]) -> Settings:
    return dataclasses.replace(settings, **values) if values else settings


def _overrides(settings: Settings, version: Any) -> dict[str, Any]:
    cached = _cache.get(settings.DATABASE_URL)
    if cached and cached[0] == version and time.monotonic() - cached[1] < MAX_AGE_S:
        return cached[2]
    with session_scope() as db:
        rows = db.scalars(select(PolicySetting)).all()
        values = {row.name: _stored(row.name, row.value) for row in rows if row.name in EDITABLE}
    _cache[settings.DATABASE_URL] = (version, time.monotonic(), values)
    return values


def parse(form: Mapping[str, str]) -> dict[str, Any]:
    """Validate the submitted settings (their text form); a PolicyError names every bad field."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in EDITABLE:
        if name not in form:
            continue
        try:
            values[name] = _validate(name, _convert(name, _TYPES[name], form[name].strip()))
        except ValueError as exc:
            errors[name] = str(exc).removeprefix(f"setting {name}: ")
    if errors:
        raise PolicyError(errors)
    return values


def save(settings: Settings, client: redis.Redis, values: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """Store what differs from the environment, drop what equals it, audit the change; returns it."""
    current = effective(settings, client)
    changed = {name: value for name, value in values.items() if getattr(current, name) != value}
    if not changed:
        return {}
    with session_scope() as db:
        for name, value in changed.items():
            if getattr(settings, name) == value:
                db.execute(delete(PolicySetting).where(PolicySetting.name == name))
            else:
                stored = list(value) if isinstance(value, tuple) else value
                db.execute(pg_insert(PolicySetting).values(name=name, value=stored, updated_by=actor)
                           .on_conflict_do_update(index_elements=["name"],
                                                  set_={"value": stored, "updated_by": actor,
                                                        "updated_at": func.now()}))
        db.add(AuditLog(actor=actor, kind="console.policy_changed", detail={
            "changes": {name: {"before": _plain(getattr(current, name)), "after": _plain(value)}
                        for name, value in changed.items()}}))
    client.set(VERSION_KEY, secrets.token_hex(8))  # after the commit: every process re-reads
    return changed


def sources(settings: Settings, client: redis.Redis) -> dict[str, str]:
    """Where each editable setting's value comes from: ``console`` or ``environment``."""
    stored = overrides(settings, client)
    return {name: "console" if name in stored else "environment" for name in EDITABLE}


def as_text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _validate(name: str, value: Any) -> Any:
    if name == "SCREENING_THRESHOLD" and not 0.0 < value <= 1.0:
        raise ValueError("must be above 0 and at most 1")
    if name == "DAILY_ACTION_QUOTA" and value < 0:
        raise ValueError("must be 0 (no quota) or more")
    if name == "ACTION_POLICY":
        policies.policy_for(value)
    if name == "ACTION_POLICY_SCOPES":
        for entry in value:
            scope, _, policy = entry.partition("=")
            if scope.split(":", 1)[0] not in PLATFORMS or not policy:
                raise ValueError(f"{entry!r}: write platform=policy or platform:channel=policy")
            policies.policy_for(policy)
    if name == "DRY_RUN_CHANNELS":
        for entry in value:
            if entry.split(":", 1)[0] not in PLATFORMS:
                raise ValueError(f"{entry!r}: write platform or platform:channel ({', '.join(PLATFORMS)})")
    return value


def _stored(name: str, value: Any) -> Any:
    return tuple(value) if _TYPES[name] == "tuple[str, ...]" else value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value

