"""Inbound platform connectors: verify a delivery's signature, then normalise it into Events.

Each endpoint is two pure functions over ``(headers, raw body)``, so the web layer stays a
loop of ``verify`` → ``parse`` → dedup → enqueue::

    endpoint = ENDPOINTS[name]
    endpoint.verify(request.headers, raw, config[endpoint.key_setting], time.time())
    inbound = endpoint.parse(request.headers, raw)

Both raise ``WebhookRejected(status, reason)``; answer with ``status`` and log ``reason``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.platforms import discord, slack, twitch, web
from app.platforms.base import Inbound, WebhookRejected

__all__ = ["ENDPOINTS", "Endpoint", "Inbound", "WebhookRejected"]

Verifier = Callable[[Mapping[str, str], bytes, str, float], None]
Parser = Callable[[Mapping[str, str], bytes], Inbound]


@dataclass(frozen=True)
class Endpoint:
    """One inbound URL: which platform its Events belong to and which setting holds its key."""

    platform: str
    key_setting: str
    verify: Verifier
    parse: Parser


def _twitch(headers: Mapping[str, str], body: bytes, key: str, now: float) -> None:
    twitch.verify(headers, body, secret=key, now=now)


def _slack(headers: Mapping[str, str], body: bytes, key: str, now: float) -> None:
    slack.verify(headers, body, secret=key, now=now)


def _discord_interactions(headers: Mapping[str, str], body: bytes, key: str, now: float) -> None:
    discord.verify_interaction(headers, body, public_key=key, now=now)


def _discord_bridge(headers: Mapping[str, str], body: bytes, key: str, now: float) -> None:
    discord.verify_bridge(headers, body, secret=key, now=now)


def _web(headers: Mapping[str, str], body: bytes, key: str, now: float) -> None:
    web.verify(headers, body, secret=key, now=now)


ENDPOINTS: dict[str, Endpoint] = {
    "twitch": Endpoint("twitch", twitch.SETTING, _twitch, twitch.parse),
    "slack": Endpoint("slack", slack.SETTING, _slack, slack.parse),
    "discord_interactions": Endpoint(
        "discord", discord.PUBLIC_KEY_SETTING, _discord_interactions, discord.parse_interaction
    ),
    "discord": Endpoint("discord", discord.BRIDGE_SETTING, _discord_bridge, discord.parse_bridge),
    "web": Endpoint("web", web.SETTING, _web, web.parse),
}
