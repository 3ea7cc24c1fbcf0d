"""Twitch Helix moderation: ban, timeout (a ban with a duration), unban, delete one message, warn.

Every call acts as the moderator whose user token we hold (``moderator_id`` must be that token's
user) in the broadcaster's channel taken from the event. Rate limits are Twitch's points bucket:
``Ratelimit-Remaining`` at 0 makes the next caller wait until ``Ratelimit-Reset`` (epoch seconds),
and a 429 waits until then too. A 409 means a concurrent change of the user's ban state: retried.

Twitch has no idempotency key and says not to branch on its error messages, so a 400 on a ban
(``already banned``) or a 404 on a delete counts as done only when this is a repeated attempt,
whose first try may have worked before its answer was lost; the first time, it is an error.

User tokens expire (about four hours) or are revoked, and Twitch asks apps to react to the 401
rather than watch the clock. With ``TWITCH_REFRESH_TOKEN`` and ``TWITCH_CLIENT_SECRET`` set, a 401
refreshes the token at ``TWITCH_AUTH_BASE/token`` and sends the call once more. The new pair lives
in Redis (``twitch:token:<client id>:<moderator id>:<fingerprint of the configured refresh
token>``), shared by every worker and kept over restarts of the workers; a lock lets one worker
refresh while the others wait for its token. Configuring a new refresh token (a re-authorised
moderator) starts from it, not from the pair an older one led to. Without a refresh token, or
when Twitch refuses it, the action fails for good with the steps to fix it.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
import logging
import urllib.parse
from typing import Any

import httpx

from app.config import Settings
from app.platforms.outbound import ActionRequest, Outcome, PermanentError, TransientError
from app.platforms.outbound.http import Transport, backoff, body_of, error_for, retry_after_header

log = logging.getLogger(__name__)
MAX_TIMEOUT_S = 1_209_600  # two weeks
REFRESH_LOCK_S = 10.0  # how long one worker may hold the refresh; the others wait at most this long
REASON_CHARS = 500
DEFAULT_TIMEOUT_S = 600


class TwitchClient:
    platform = "twitch"

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.base = settings.TWITCH_API_BASE.rstrip("/")
        self.client_id, self.moderator_id = settings.TWITCH_CLIENT_ID, settings.TWITCH_MODERATOR_ID
        self.token = settings.TWITCH_MODERATOR_TOKEN
        self.refresh_token, self.client_secret = settings.TWITCH_REFRESH_TOKEN, settings.TWITCH_CLIENT_SECRET
        self.auth_base = settings.TWITCH_AUTH_BASE.rstrip("/")
        self.transport = transport
        self.bucket = f"twitch:{self.client_id}:{self.moderator_id}"
        seed = hashlib.sha256(self.refresh_token.encode()).hexdigest()[:12]
        self.token_key = f"twitch:token:{self.client_id}:{self.moderator_id}:{seed}"

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
        described = f"{method} {path}"

        def send(token: str) -> httpx.Response:
            self.transport.pause(self.bucket)
            headers = {"Authorization": f"Bearer {token}", "Client-Id": self.client_id}
            response = self.transport.send(method, self.base + path, headers=headers, json=json, params=query,
                                           request=described)
            self.learn(response)
            return response

        def once(attempt: int) -> Outcome:
            token = self.current_token()
            response = send(token)
            if response.status_code == 401:
                response = send(self.refreshed(token, described))
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

    def current_token(self) -> str:
        """The newest access token: one a worker refreshed (Redis) before the configured one."""
        return self._pair()[0]

    def _pair(self) -> tuple[str, str]:
        """The newest (access, refresh) pair: the one stored by the last refresh, else the configured one."""
        raw = self.transport.limiter.client.get(self.token_key) if self.refresh_token else None
        if not raw:
            return self.token, self.refresh_token
        pair = jsonlib.loads(raw)
        return str(pair["access_token"]), str(pair["refresh_token"])

    def refreshed(self, rejected: str, described: str) -> str:
        """A new access token after Twitch rejected ``rejected`` (HTTP 401), or a PermanentError that
        says what to do. One worker refreshes; the others wait for the token it stores."""
        if not (self.refresh_token and self.client_secret):
            raise PermanentError(
                f"HTTP 401 on {described}: Twitch rejected the moderator token; set TWITCH_REFRESH_TOKEN and "
                "TWITCH_CLIENT_SECRET to refresh it automatically, or a new TWITCH_MODERATOR_TOKEN",
                status=401, code="token_rejected", request=described)
        store = self.transport.limiter.client
        lock = f"{self.token_key}:lock"
        deadline = self.transport.clock() + REFRESH_LOCK_S
        while not store.set(lock, "1", nx=True, px=int(REFRESH_LOCK_S * 1000)):
            access, _ = self._pair()
            if access != rejected:
                return access  # another worker refreshed it meanwhile
            if self.transport.clock() >= deadline:
                raise TransientError("another worker is refreshing the Twitch token", retry_after=1.0,
                                     code="token_refresh_busy", request=described)
            self.transport.sleep(0.1)
        try:
            access, refresh_token = self._pair()
            return access if access != rejected else self._refresh(store, refresh_token)
        finally:
            store.delete(lock)

    def _refresh(self, store: Any, refresh_token: str) -> str:
        form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token,
                                       "client_id": self.client_id, "client_secret": self.client_secret})
        described = "POST /oauth2/token"
        response = self.transport.send("POST", f"{self.auth_base}/token", request=described, content=form.encode(),
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        if response.status_code in (400, 401, 403):
            raise PermanentError(
                f"HTTP {response.status_code} on {described}: Twitch refused to refresh the moderator token; "
                "re-authorise the moderator account and set new TWITCH_MODERATOR_TOKEN and TWITCH_REFRESH_TOKEN",
                status=response.status_code, code="token_refresh_refused", request=described)
        if not response.is_success:
            raise error_for(response, described, retry_after=retry_after_header(response))
        body = body_of(response)
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise TransientError(f"no access_token in the answer to {described}", code="token_refresh_malformed",
                                 request=described)
        # Twitch may hand out a new refresh token with the access token: keep whichever is newest.
        pair = {"access_token": body["access_token"], "refresh_token": body.get("refresh_token") or refresh_token}
        store.set(self.token_key, jsonlib.dumps(pair))
        log.info("refreshed the Twitch moderator token of %s", self.moderator_id)
        return pair["access_token"]

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
