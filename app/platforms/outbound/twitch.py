"""Twitch Helix moderation: ban, timeout (a ban with a duration), unban, delete one message, warn.

Every call acts as the moderator whose user token we hold (``moderator_id`` must be that token's
user) in the broadcaster's channel taken from the event. Rate limits are Twitch's points bucket:
``Ratelimit-Remaining`` at 0 makes the next caller wait until ``Ratelimit-Reset`` (epoch seconds),
and a 429 waits until then too. A 409 means a concurrent change of the user's ban state: retried.

Twitch has no idempotency key and says not to branch on its error messages, so a 400 on a ban
(``already banned``) or a 404 on a delete counts as done only when this is a repeated attempt,
whose first try may have worked before its answer was lost; the first time, it is an error.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.config import Settings
from app.platforms.outbound import ActionRequest, Outcome, PermanentError
from app.platforms.outbound.http import Transport, backoff, body_of, error_for, retry_after_header

MAX_TIMEOUT_S = 1_209_600  # two weeks
REASON_CHARS = 500
DEFAULT_TIMEOUT_S = 600


class TwitchClient:
    platform = "twitch"

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.base = settings.TWITCH_API_BASE.rstrip("/")
        self.client_id, self.moderator_id = settings.TWITCH_CLIENT_ID, settings.TWITCH_MODERATOR_ID
        self.token = settings.TWITCH_MODERATOR_TOKEN
        self.transport = transport
        self.bucket = f"twitch:{self.client_id}:{self.moderator_id}"

    def apply(self, request: ActionRequest) -> Outcome:
        kind, reason = request.action_type, request.reason[:REASON_CHARS]
        if kind in ("timeout", "mute"):
            duration = min(MAX_TIMEOUT_S, max(1, request.duration_s or DEFAULT_TIMEOUT_S))
            data = {"user_id": request.user_id, "duration": duration, "reason": reason}
            outcome = self.call("POST", "/moderation/bans", request, json={"data": data}, repeat_ok=(400,))
            outcome.expires_at = _end_time(outcome.response)
            return outcome
        if kind == "ban":
            return self.call("POST", "/moderation/bans", request,
                             json={"data": {"user_id": request.user_id, "reason": reason}}, repeat_ok=(400,))
        if kind == "warning":
            return self.call("POST", "/moderation/warnings", request,
                             json={"data": {"user_id": request.user_id, "reason": reason}})
        if kind == "delete_message":
            # Without message_id this endpoint deletes every message in the chat: never send that.
            if not request.message_id:
                raise PermanentError("no message id to delete", code="missing_message_id")
            return self.call("DELETE", "/moderation/chat", request, params={"message_id": request.message_id},
                             repeat_ok=(404,))
        raise PermanentError(f"twitch has no {kind!r} action")

    def reverse(self, request: ActionRequest) -> Outcome:
        if request.action_type in ("timeout", "mute", "ban"):
            # 400 "user is not banned": the timeout already ran out, which is what we wanted.
            return self.call("DELETE", "/moderation/bans", request, params={"user_id": request.user_id},
                             gone_ok=(400,))
        note = "a deleted message cannot be restored" if request.action_type == "delete_message" else \
            "nothing to undo on Twitch"
        return Outcome(request="", note=note)

    def call(self, method: str, path: str, request: ActionRequest, *, json: Any = None,
             params: dict[str, str] | None = None, repeat_ok: tuple[int, ...] = (),
             gone_ok: tuple[int, ...] = ()) -> Outcome:
        broadcaster = request.scope.get("broadcaster_id") or request.channel_id
        query = {"broadcaster_id": str(broadcaster), "moderator_id": self.moderator_id, **(params or {})}
        headers = {"Authorization": f"Bearer {self.token}", "Client-Id": self.client_id}
        described = f"{method} {path}"

        def once(attempt: int) -> Outcome:
            self.transport.pause(self.bucket)
            response = self.transport.send(method, self.base + path, headers=headers, json=json, params=query,
                                           request=described)
            self.learn(response)
            status = response.status_code
            if response.is_success:
                return Outcome(request=described, status=status, response=body_of(response))
            repeated = attempt > 0 or request.delivery > 0
            if status in gone_ok or (repeated and status in repeat_ok):
                return Outcome(request=described, status=status, response=body_of(response),
                               note=f"already in effect (HTTP {status})")
            raise error_for(response, described, code=_message(response), transient=(409,),
                            retry_after=self.wait_after(response) if status == 429 else retry_after_header(response))

        return self.transport.retrying(once)

    def learn(self, response: httpx.Response) -> None:
        remaining, reset = response.headers.get("Ratelimit-Remaining"), response.headers.get("Ratelimit-Reset")
        if remaining is None or reset is None:
            return
        try:
            self.transport.limiter.observe(self.bucket, int(remaining), float(reset) - self.transport.clock())
        except ValueError:
            pass

    def wait_after(self, response: httpx.Response) -> float:
        """Until the bucket refills (``Ratelimit-Reset``); a 429 without it backs off on our schedule."""
        try:
            wait = float(response.headers["Ratelimit-Reset"]) - self.transport.clock()
        except (KeyError, ValueError):
            wait = backoff(1)
        wait = max(wait, 0.05)
        self.transport.limiter.block(self.bucket, wait)
        return wait


def _message(response: httpx.Response) -> Any:
    body = body_of(response)
    return body.get("message") if isinstance(body, dict) else None


def _end_time(body: Any) -> str | None:
    data = body.get("data") if isinstance(body, dict) else None
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    end = first.get("end_time")
    return end if isinstance(end, str) else None
