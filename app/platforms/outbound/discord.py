"""Discord REST v10: timeouts, bans, message deletion and warnings by DM, with Discord's own rate limits.

Discord has no separate mute: a mute is a longer timeout (``communication_disabled_until``),
clamped a minute below the 28-day maximum because Discord refuses "exactly 28 days" computed on
our clock. Every moderation call carries ``X-Audit-Log-Reason`` (URL-encoded, at most 512
characters encoded), so the guild's own audit log says why.

Rate limits come from the response headers, never from constants: each route maps to a bucket
(``X-RateLimit-Bucket``) per top-level resource (guild or channel id), an empty bucket makes the
next caller wait ``X-RateLimit-Reset-After``, and a 429 marked global pauses every Discord call
of every worker for ``retry_after``.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.config import Settings
from app.platforms.outbound import ActionRequest, Outcome, PermanentError, PlatformError, TransientError
from app.platforms.outbound.http import Transport, body_of, error_for, retry_after_header

USER_AGENT = "DiscordBot (https://github.com/safety-moderation/safety, 0.1.0)"
MAX_TIMEOUT = timedelta(days=28) - timedelta(seconds=60)
AUDIT_REASON_CHARS = 512
NONCE_CHARS = 25  # Discord's limit for a message nonce
GLOBAL_KEY = "discord:global"
ROUTE_TTL_S = 86_400

# JSON error codes that mean the wanted state already holds (another moderator, or our own
# earlier attempt, got there first).
UNKNOWN_MESSAGE, UNKNOWN_MEMBER, UNKNOWN_BAN = 10008, 10007, 10026


class DiscordClient:
    platform = "discord"

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.base = settings.DISCORD_API_BASE.rstrip("/")
        self.token = settings.DISCORD_BOT_TOKEN
        self.transport = transport

    def apply(self, request: ActionRequest) -> Outcome:
        kind = request.action_type
        if kind in ("timeout", "mute"):
            until = self.clamp_until(request.duration_s or 3600)
            outcome = self.member_timeout(request, until.isoformat())
            outcome.expires_at = until.isoformat()
            return outcome
        if kind == "ban":
            return self.call("PUT", f"/guilds/{_guild(request)}/bans/{request.user_id}", major=_guild(request),
                             route="PUT /guilds/{id}/bans/{id}", reason=request.reason,
                             json={"delete_message_seconds": 0})
        if kind == "delete_message":
            return self.delete_message(request)
        if kind == "warning":
            return self.warn_by_dm(request)
        raise PermanentError(f"discord has no {kind!r} action")

    def reverse(self, request: ActionRequest) -> Outcome:
        kind = request.action_type
        if kind in ("timeout", "mute"):
            return self.member_timeout(request, None, gone_ok=(UNKNOWN_MEMBER,))
        if kind == "ban":
            return self.call("DELETE", f"/guilds/{_guild(request)}/bans/{request.user_id}", major=_guild(request),
                             route="DELETE /guilds/{id}/bans/{id}", reason=request.reason, gone_ok=(UNKNOWN_BAN,))
        note = "a deleted message cannot be restored" if kind == "delete_message" else "nothing to undo on Discord"
        return Outcome(request="", note=note)

    def clamp_until(self, duration_s: int) -> datetime:
        now = datetime.fromtimestamp(self.transport.clock(), tz=UTC)
        return now + min(timedelta(seconds=duration_s), MAX_TIMEOUT)

    def member_timeout(self, request: ActionRequest, until: str | None,
                       gone_ok: tuple[int, ...] = ()) -> Outcome:
        guild = _guild(request)
        return self.call("PATCH", f"/guilds/{guild}/members/{request.user_id}", major=guild,
                         route="PATCH /guilds/{id}/members/{id}", reason=request.reason,
                         json={"communication_disabled_until": until}, gone_ok=gone_ok)

    def delete_message(self, request: ActionRequest) -> Outcome:
        if not request.message_id:
            raise PermanentError("no message id to delete", code="missing_message_id")
        return self.call("DELETE", f"/channels/{request.channel_id}/messages/{request.message_id}",
                         major=request.channel_id, route="DELETE /channels/{id}/messages/{id}",
                         reason=request.reason, gone_ok=(UNKNOWN_MESSAGE,))

    def warn_by_dm(self, request: ActionRequest) -> Outcome:
        """Discord has no warning API: a direct message, as moderation bots do.

        The message ``nonce`` with ``enforce_nonce`` is Discord's idempotency key: a retried send
        within minutes returns the first message instead of posting a second warning.
        """
        dm = self.call("POST", "/users/@me/channels", major="@me", route="POST /users/@me/channels",
                       json={"recipient_id": request.user_id})
        channel = dm.response.get("id") if isinstance(dm.response, dict) else None
        if not channel:
            raise PermanentError("Discord returned no DM channel id", status=dm.status)
        text = (f"You have received a warning from the moderators ({request.reason_code}). "
                "Please keep the conversation respectful.")
        sent = self.call("POST", f"/channels/{channel}/messages", major=channel, route="POST /channels/{id}/messages",
                         json={"content": text, "nonce": request.action_id[:NONCE_CHARS], "enforce_nonce": True})
        sent.attempts = [*dm.attempts, *sent.attempts]
        return sent

    def call(self, method: str, path: str, *, major: str, route: str, reason: str | None = None,
             json: Any = None, gone_ok: tuple[int, ...] = ()) -> Outcome:
        headers = {"Authorization": f"Bot {self.token}", "User-Agent": USER_AGENT}
        if reason:
            headers["X-Audit-Log-Reason"] = audit_reason(reason)
        described = f"{method} {path}"

        def once(_attempt: int) -> Outcome:
            bucket_key = self.bucket_key(route, major)
            self.transport.pause(GLOBAL_KEY, bucket_key)
            response = self.transport.send(method, self.base + path, headers=headers, json=json, request=described)
            self.learn(response, route, major)
            if response.is_success:
                return Outcome(request=described, status=response.status_code, response=body_of(response))
            code = _json_code(response)
            if code in gone_ok:
                return Outcome(request=described, status=response.status_code, response=body_of(response),
                               note=f"already in effect (Discord code {code})")
            raise self.error(response, described, code, self.bucket_key(route, major))

        return self.transport.retrying(once)

    def bucket_key(self, route: str, major: str) -> str:
        bucket = self.transport.limiter.get(f"discord:route:{route}") or route
        return f"discord:bucket:{bucket}:{major}"

    def learn(self, response: httpx.Response, route: str, major: str) -> None:
        """Record the bucket this route belongs to and how much of it is left."""
        headers = response.headers
        bucket = headers.get("X-RateLimit-Bucket")
        if bucket:
            self.transport.limiter.remember(f"discord:route:{route}", bucket, ROUTE_TTL_S)
        remaining, reset_after = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset-After")
        if remaining is not None and reset_after is not None and response.status_code != 429:
            try:
                self.transport.limiter.observe(self.bucket_key(route, major), int(remaining), float(reset_after))
            except ValueError:
                pass

    def error(self, response: httpx.Response, described: str, code: Any,
              bucket_key: str) -> PlatformError:
        if response.status_code != 429:
            return error_for(response, described, code=code, retry_after=retry_after_header(response))
        body = body_of(response)
        body = body if isinstance(body, dict) else {}
        retry_after = _float(body.get("retry_after"))
        if retry_after is None:
            retry_after = retry_after_header(response) or 1.0
        is_global = bool(body.get("global")) or response.headers.get("X-RateLimit-Global", "").lower() == "true"
        self.transport.limiter.block(GLOBAL_KEY if is_global else bucket_key, retry_after)
        scope = "global" if is_global else response.headers.get("X-RateLimit-Scope", "user")
        return TransientError(f"HTTP 429 ({scope} rate limit) on {described}", retry_after=retry_after,
                              status=429, code=scope, request=described)


def audit_reason(reason: str) -> str:
    """URL-encode as discord.py does (spaces and ``/`` kept), truncating the text until it fits 512."""
    text = reason[:AUDIT_REASON_CHARS]
    encoded = urllib.parse.quote(text, safe="/ ")
    while len(encoded) > AUDIT_REASON_CHARS:
        text = text[:-1]
        encoded = urllib.parse.quote(text, safe="/ ")
    return encoded


def _guild(request: ActionRequest) -> str:
    guild = request.scope.get("guild_id")
    if not guild:
        raise PermanentError("no guild_id in the event metadata (a DM cannot be moderated)", code="missing_guild_id")
    return str(guild)


def _json_code(response: httpx.Response) -> Any:
    body = body_of(response)
    return body.get("code") if isinstance(body, dict) else None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None

