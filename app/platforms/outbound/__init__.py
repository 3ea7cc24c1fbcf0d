"""Outbound platform clients: the calls that carry a decided action to Discord, Twitch, Slack or a web chat.

One small interface (``Client.apply`` / ``Client.reverse`` over an ``ActionRequest``) with one
implementation per platform. Clients know the wire format, the platform's rate-limit headers and
which errors are worth retrying; they know nothing about the database, policies or Celery. A
transient failure that outlasts the short in-process retries surfaces as ``TransientError`` with
the wait the platform asked for, so the Celery task can retry later; a permanent one as
``PermanentError`` with the platform's status and error code, for the dead-letter stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from app.config import Settings

SANCTIONS = ("warning", "timeout", "mute", "ban", "delete_message")


@dataclass(frozen=True)
class ActionRequest:
    """What a client needs to act, taken from the action row and its event.

    ``scope`` holds the platform ids that are not the channel (Discord ``guild_id``, Twitch
    ``broadcaster_id``, a web chat's ``tenant_id``). ``delivery`` counts earlier deliveries of the
    same action (Celery retries): a "not found" on a repeated call can mean our own earlier call
    already worked.
    """

    action_id: str
    event_id: str
    platform: str
    action_type: str
    user_id: str
    channel_id: str
    message_id: str | None
    duration_s: int | None
    reason_code: str
    reason: str
    scope: dict[str, Any] = field(default_factory=dict)
    expires_at: str | None = None
    delivery: int = 0


@dataclass
class Outcome:
    """The platform's answer to the call that settled the action (``status`` None: no call was needed)."""

    request: str
    status: int | None = None
    response: Any = None
    note: str = ""
    attempts: list[int | str] = field(default_factory=list)
    expires_at: str | None = None

    def as_detail(self) -> dict[str, Any]:
        return {"platform_request": self.request, "platform_status": self.status,
                "platform_response": self.response, "note": self.note, "attempts": self.attempts}


class PlatformError(Exception):
    """A failed platform call; ``reason`` names status and the platform's error code, never message text."""

    def __init__(self, reason: str, *, status: int | None = None, code: Any = None, request: str = "",
                 attempts: list[int | str] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.code, self.request = reason, status, code, request
        self.attempts = attempts or []


class PermanentError(PlatformError):
    """Retrying cannot help: bad credentials, missing permission, unknown user, invalid request, config."""


class TransientError(PlatformError):
    """Worth another try later (429, 5xx, network, Twitch 409); ``retry_after`` is the wait in seconds."""

    def __init__(self, reason: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.retry_after = retry_after


class Client(Protocol):
    platform: str

    def apply(self, request: ActionRequest) -> Outcome: ...

    def reverse(self, request: ActionRequest) -> Outcome: ...


def configured(platform: str, settings: Settings) -> bool:
    """Whether the platform's credentials are set; without them its actions run dry."""
    if platform == "discord":
        return bool(settings.DISCORD_BOT_TOKEN)
    if platform == "twitch":
        return bool(settings.TWITCH_CLIENT_ID and settings.TWITCH_MODERATOR_TOKEN and settings.TWITCH_MODERATOR_ID)
    if platform == "slack":
        return bool(settings.SLACK_ADMIN_TOKEN or (settings.SLACK_BOT_TOKEN and settings.SLACK_MODERATOR_CHANNEL))
    if platform == "web":
        return bool(settings.WEB_CALLBACK_URL and settings.WEB_WEBHOOK_SECRET)
    return False


def client_for(platform: str, settings: Settings, transport: Any) -> Client:
    from app.platforms.outbound import discord, slack, twitch, web

    clients: dict[str, Callable[[Settings, Any], Client]] = {
        "discord": discord.DiscordClient, "twitch": twitch.TwitchClient, "slack": slack.SlackClient,
        "web": web.WebClient}
    if platform not in clients:
        raise PermanentError(f"no outbound client for platform {platform!r}")
    return clients[platform](settings, transport)


_http: httpx.Client | None = None


def shared_http() -> httpx.Client:
    """One connection pool per process; redirects are never followed (a 3xx is an error here)."""
    global _http
    if _http is None:
        _http = httpx.Client(follow_redirects=False)
    return _http
