"""Web chat: a signed callback to the site's ``WEB_CALLBACK_URL``, which applies the action itself.

The callback is a Standard Webhooks delivery signed with ``WEB_WEBHOOK_SECRET`` (the secret the
site already shares with us for inbound events): ``webhook-id`` is the action id (``-reverse``
appended for a reversal) and stays the same on every retry, so the site de-duplicates on it;
``Idempotency-Key`` carries the same value for backends that look there. Any 2xx is success; a
``410 Gone`` means the endpoint was retired and is final; 429, 502, 503, 504 and other 5xx are
retried, honouring ``Retry-After``. Redirects are not followed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from app.config import Settings
from app.platforms.base import WebhookRejected
from app.platforms.outbound import ActionRequest, Outcome, PermanentError
from app.platforms.outbound.http import Transport, body_of, error_for, retry_after_header
from app.platforms.standard_webhooks import sign

REQUESTED = "moderation.action.requested"
REVERSED = "moderation.action.reversed"
RATE_KEY = "web:callback"


class WebClient:
    platform = "web"

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.url, self.secret = settings.WEB_CALLBACK_URL, settings.WEB_WEBHOOK_SECRET
        self.transport = transport

    def apply(self, request: ActionRequest) -> Outcome:
        return self.deliver(REQUESTED, request.action_id, request)

    def reverse(self, request: ActionRequest) -> Outcome:
        return self.deliver(REVERSED, f"{request.action_id}-reverse", request)

    def payload(self, kind: str, request: ActionRequest) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.transport.clock(), tz=UTC).isoformat()
        return {"type": kind, "timestamp": now, "data": {
            "action_id": request.action_id, "event_id": request.event_id, "action_type": request.action_type,
            "user_id": request.user_id, "room_id": request.channel_id, "message_id": request.message_id,
            "duration_seconds": request.duration_s, "expires_at": request.expires_at,
            "reason_code": request.reason_code, "reason": request.reason, **request.scope}}

    def deliver(self, kind: str, webhook_id: str, request: ActionRequest) -> Outcome:
        body = json.dumps(self.payload(kind, request), separators=(",", ":")).encode()
        described = f"POST {self.url}"

        def once(_attempt: int) -> Outcome:
            self.transport.pause(RATE_KEY)
            timestamp = int(self.transport.clock())  # Standard Webhooks stamps and signs each attempt afresh
            headers = {"Content-Type": "application/json", "webhook-id": webhook_id,
                       "webhook-timestamp": str(timestamp), "Idempotency-Key": webhook_id,
                       "webhook-signature": self.signature(webhook_id, timestamp, body)}
            response = self.transport.send("POST", self.url, headers=headers, content=body, request=described)
            if response.is_success:
                return Outcome(request=described, status=response.status_code, response=body_of(response))
            wait = retry_after_header(response)
            if response.status_code == 429 and wait:
                self.transport.limiter.block(RATE_KEY, wait)
            raise error_for(response, described, retry_after=wait)

        return self.transport.retrying(once)

    def signature(self, webhook_id: str, timestamp: int, body: bytes) -> str:
        try:
            return sign(self.secret, webhook_id, timestamp, body)
        except WebhookRejected:
            raise PermanentError("WEB_WEBHOOK_SECRET is not a valid whsec_ base64 secret", code="config") from None
