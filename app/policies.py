"""Action policies (``ACTION_POLICY``) and the safety gates that stand before any platform call.

A policy turns the reasoning stage's recommendation and the author's recent violations into the
sanction to apply. The gates decide whether it is applied at all: exempt authors are skipped,
uncertain decisions and decisions past the day's quota go to a human, and dry-run scopes record
the decision without calling the platform. Everything here is pure except the quota, which is a
Redis set so that every worker counts against the same budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis

from app.config import Settings

SEVERITY = {"warning": 1, "timeout": 2, "mute": 3, "ban": 4}
DEFAULT_HOURS = {"timeout": 24.0, "mute": 168.0}
MODERATOR_BADGES = frozenset({"broadcaster", "moderator", "staff", "admin", "global_mod"})
QUOTA_TTL_S = 2 * 86_400


@dataclass(frozen=True)
class Step:
    action_type: str
    duration_hours: float | None = None

    def describe(self) -> str:
        return f"{self.action_type} {self.duration_hours:g} h" if self.duration_hours else self.action_type

    def rank(self) -> tuple[int, float]:
        """Order of strictness: the kind first, then the length (no duration on a ban is forever)."""
        hours = self.duration_hours if self.duration_hours is not None else math.inf
        return SEVERITY.get(self.action_type, 0), hours


# warning → timeout → longer timeout → mute → ban, one step per violation in the window.
LADDER = (Step("warning"), Step("timeout", 1.0), Step("timeout", 24.0), Step("mute", 168.0), Step("ban"))


class Policy(Protocol):
    name: str

    def decide(self, recommended: Step, prior_violations: int) -> tuple[Step, str]: ...


class GraduatedEscalation:
    """The author's violations in the window pick the ladder step; the recommendation is a floor.

    A first offence recommended as a warning stays a warning, the fourth becomes a mute even if
    the reasoner only asked for a warning, and a credible threat recommended as a ban is not
    softened to a warning because it is the author's first. Content removal (``delete_message``)
    and non-sanctions pass through unchanged.
    """

    name = "graduated_escalation"

    def decide(self, recommended: Step, prior_violations: int) -> tuple[Step, str]:
        if recommended.action_type not in SEVERITY:
            return recommended, "not a sanction: applied as recommended"
        index = min(max(prior_violations, 0), len(LADDER) - 1)
        step, asked = LADDER[index], with_default_duration(recommended)
        chosen = max(step, asked, key=Step.rank)
        return chosen, (f"{prior_violations} prior violation(s) in the window → ladder step {index + 1} "
                        f"({step.describe()}); recommended {asked.describe()}; applying {chosen.describe()}")


class SeverityBased:
    """The recommendation as the reasoner sized it for the content, whatever the author's history."""

    name = "severity_based"

    def decide(self, recommended: Step, prior_violations: int) -> tuple[Step, str]:
        chosen = with_default_duration(recommended)
        return chosen, f"severity-based: applying the recommended {chosen.describe()}"


POLICIES: dict[str, Policy] = {p.name: p for p in (GraduatedEscalation(), SeverityBased())}


def policy_for(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"ACTION_POLICY {name!r} is unknown; expected one of {', '.join(POLICIES)}") from None


def with_default_duration(step: Step) -> Step:
    if step.action_type in DEFAULT_HOURS and not step.duration_hours:
        return Step(step.action_type, DEFAULT_HOURS[step.action_type])
    return step


def expires_at(step: Step, applied_at: datetime) -> datetime | None:
    """Timeouts and mutes end; a ban ends only if it was given a duration."""
    if step.action_type in ("timeout", "mute", "ban") and step.duration_hours:
        return applied_at + timedelta(hours=step.duration_hours)
    return None


def exemption(settings: Settings, platform: str, user_id: str, author_id: str,
              metadata: Mapping[str, Any]) -> str | None:
    """Why this user must not be acted on automatically, or None.

    Moderator flags in the metadata describe the message's author, so they count only when the
    author is the one to be acted on.
    """
    if user_id in settings.EXEMPT_USERS or f"{platform}:{user_id}" in settings.EXEMPT_USERS:
        return "user is listed in EXEMPT_USERS"
    if user_id != author_id:
        return None
    if metadata.get("author_is_moderator") is True:
        return "author is flagged as a moderator"
    badges = MODERATOR_BADGES.intersection(_strings(metadata.get("author_badges")))
    if badges:
        return f"author holds the moderator badge {sorted(badges)[0]!r}"
    roles = set(settings.EXEMPT_ROLES).intersection(_strings(metadata.get("author_roles")))
    if roles:
        return f"author holds the exempt role {sorted(roles)[0]!r}"
    return None


def dry_run_reason(settings: Settings, platform: str, channel_id: str, has_credentials: bool) -> str | None:
    """Why this action is recorded but not sent (shadow mode), or None to act for real."""
    if settings.ACTIONS_DRY_RUN:
        return "ACTIONS_DRY_RUN is set"
    if platform in settings.DRY_RUN_CHANNELS:
        return f"platform {platform} is listed in DRY_RUN_CHANNELS"
    if f"{platform}:{channel_id}" in settings.DRY_RUN_CHANNELS:
        return f"channel {platform}:{channel_id} is listed in DRY_RUN_CHANNELS"
    if not has_credentials:
        return f"no credentials configured for {platform}"
    return None


def policy_name(settings: Settings, platform: str, channel_id: str) -> str:
    """ACTION_POLICY, unless ACTION_POLICY_SCOPES names another for the channel or the platform."""
    scoped = dict(entry.split("=", 1) for entry in settings.ACTION_POLICY_SCOPES if "=" in entry)
    return scoped.get(f"{platform}:{channel_id}") or scoped.get(platform) or settings.ACTION_POLICY


def quota_key(platform: str, now: datetime) -> str:
    return f"quota:actions:{platform}:{now.strftime('%Y%m%d')}"


def take_quota(client: redis.Redis, platform: str, action_id: str, limit: int, now: datetime) -> bool:
    """Count this action against the platform's daily budget; False once the budget is spent.

    A set, not a counter, so a retried action is counted once. Past the limit the action is taken
    back out and the caller sends it to human review: a runaway model or a raid cannot make the
    system ban thousands of accounts on its own.
    """
    if limit <= 0:
        return True
    key = quota_key(platform, now)
    pipe = client.pipeline(transaction=True)
    pipe.sadd(key, action_id)
    pipe.scard(key)
    pipe.expire(key, QUOTA_TTL_S)
    _, used, _ = pipe.execute()
    if used > limit:
        client.srem(key, action_id)
        return False
    return True


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
