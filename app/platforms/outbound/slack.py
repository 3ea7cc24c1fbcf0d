"""Slack: delete a message where a token allows it, otherwise tell the moderators.

Slack has no timeout or ban outside Enterprise Grid admin APIs, and a bot token may only delete
the bot's own messages, so only an admin (or owner) *user* token (``SLACK_ADMIN_TOKEN``) can
remove a harasser's message. Every other action, and a deletion without that token, becomes a
notification in ``SLACK_MODERATOR_CHANNEL`` posted with the bot token; a person acts on it.

The Web API answers logical errors with HTTP 200 and ``{"ok": false, "error": ...}``; only a 429
(``Retry-After``) and Slack's own "try again" errors are worth retrying.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.config import Settings
from app.platforms.outbound import ActionRequest, Outcome, PermanentError, TransientError
from app.platforms.outbound.http import Transport, body_of, error_for, retry_after_header

TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
GONE_ERRORS = {"message_not_found"}
VERBS = {"warning": "warn", "timeout": "time out", "mute": "mute", "ban": "ban",
         "delete_message": "delete the message of"}


class SlackClient:
    platform = "slack"

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.base = settings.SLACK_API_BASE.rstrip("/")
        self.bot_token, self.admin_token = settings.SLACK_BOT_TOKEN, settings.SLACK_ADMIN_TOKEN
        self.moderator_channel = settings.SLACK_MODERATOR_CHANNEL
        self.transport = transport

    def apply(self, request: ActionRequest) -> Outcome:
        if request.action_type == "delete_message" and self.admin_token:
            if not request.message_id:
                raise PermanentError("no message ts to delete", code="missing_message_id")
            return self.call("chat.delete", self.admin_token, {"channel": request.channel_id, "ts": request.message_id})
        return self.notify(request, self.request_text(request))

    def reverse(self, request: ActionRequest) -> Outcome:
        if request.action_type == "delete_message" and self.admin_token:
            return Outcome(request="", note="a deleted message cannot be restored")
        return self.notify(request, f"Reversed: safety action `{request.action_id}` on <@{request.user_id}> "
                                    f"({request.action_type}) no longer stands. {request.reason}")

    def request_text(self, request: ActionRequest) -> str:
        verb = VERBS.get(request.action_type, request.action_type)
        hours = f" for {request.duration_s / 3600:g} h" if request.duration_s else ""
        return (f"Moderation needed: please {verb} <@{request.user_id}>{hours} "
                f"for message `{request.message_id}` in <#{request.channel_id}> "
                f"({request.reason_code}; safety action `{request.action_id}`).")

    def notify(self, request: ActionRequest, text: str) -> Outcome:
        if not (self.bot_token and self.moderator_channel):
            raise PermanentError(f"slack cannot {request.action_type} without SLACK_BOT_TOKEN and "
                                 "SLACK_MODERATOR_CHANNEL for a moderator notification", code="not_configured")
        outcome = self.call("chat.postMessage", self.bot_token,
                            {"channel": self.moderator_channel, "text": text, "unfurl_links": False})
        outcome.note = outcome.note or "moderators notified"
        return outcome

    def call(self, method: str, token: str, body: dict[str, Any]) -> Outcome:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
        described, key = f"POST /{method}", f"slack:{method}"

        def once(_attempt: int) -> Outcome:
            self.transport.pause(key)
            response = self.transport.send("POST", f"{self.base}/{method}", headers=headers, json=body,
                                           request=described)
            if response.status_code == 429:
                wait = retry_after_header(response) or 1.0
                self.transport.limiter.block(key, wait)
                raise error_for(response, described, code="ratelimited", retry_after=wait)
            if not response.is_success:
                raise error_for(response, described, retry_after=retry_after_header(response))
            return self.result(response, described)

        return self.transport.retrying(once)

    def result(self, response: httpx.Response, described: str) -> Outcome:
        data = body_of(response)
        data = data if isinstance(data, dict) else {}
        error = data.get("error")
        if data.get("ok"):
            return Outcome(request=described, status=response.status_code, response=_summary(data))
        if error in GONE_ERRORS:
            return Outcome(request=described, status=response.status_code, response=_summary(data),
                           note=f"already in effect ({error})")
        if error in TRANSIENT_ERRORS:
            raise TransientError(f"slack error {error} on {described}", status=response.status_code, code=error,
                                 request=described, retry_after=retry_after_header(response))
        raise PermanentError(f"slack error {error or 'unknown'} on {described}", status=response.status_code,
                             code=error, request=described)


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """The ids Slack returns, not the echoed message."""
    return {key: data[key] for key in ("ok", "error", "channel", "ts") if key in data}
