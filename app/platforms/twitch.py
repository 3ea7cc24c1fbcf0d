"""Twitch EventSub webhook transport: signature check, handshake, revocation, ``channel.chat.message``.

Signed bytes are ``message id header + timestamp header + raw body`` (verbatim, no separators),
HMAC-SHA256 with ``TWITCH_EVENTSUB_SECRET``, compared with its ``sha256=`` prefix. Every
verification failure is 403, as Twitch's own samples answer. A message whose timestamp (the time
Twitch sent this attempt) is more than 10 minutes old is a replay and refused too; re-deliveries
keep the message id, which is the ``dedup_key``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.platforms.base import (
    TEXT_HEADERS,
    Inbound,
    JsonObject,
    WebhookRejected,
    as_list,
    as_object,
    as_opt_str,
    as_str,
    as_text,
    get_header,
    is_digits,
    iso_timestamp,
    load_json_object,
    make_event,
    pick_target,
    require_headers,
    require_key,
    strings,
    unique,
)

SETTING = "TWITCH_EVENTSUB_SECRET"
MESSAGE_ID = "Twitch-Eventsub-Message-Id"
MESSAGE_RETRY = "Twitch-Eventsub-Message-Retry"
MESSAGE_TYPE = "Twitch-Eventsub-Message-Type"
MESSAGE_SIGNATURE = "Twitch-Eventsub-Message-Signature"
MESSAGE_TIMESTAMP = "Twitch-Eventsub-Message-Timestamp"

MAX_AGE_SECONDS = 600
FORBIDDEN = 403
CHAT_MESSAGE = "channel.chat.message"


def sign(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The ``Twitch-Eventsub-Message-Signature`` value for a delivery (for fakes and tests)."""
    signed = message_id.encode() + timestamp.encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(
    headers: Mapping[str, str], body: bytes, *, secret: str, now: float, max_age: float = MAX_AGE_SECONDS
) -> None:
    """Raise ``WebhookRejected(403)`` unless the signature matches and the message is fresh."""
    require_key(secret, SETTING)
    message_id, timestamp, signature = require_headers(
        headers, (MESSAGE_ID, MESSAGE_TIMESTAMP, MESSAGE_SIGNATURE), status=FORBIDDEN
    )
    expected = sign(secret, message_id, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise WebhookRejected(FORBIDDEN, "signature mismatch")
    if now - _sent_at(timestamp).timestamp() > max_age:
        raise WebhookRejected(FORBIDDEN, "message older than 10 minutes")


def parse(headers: Mapping[str, str], body: bytes) -> Inbound:
    """Dispatch on ``Twitch-Eventsub-Message-Type``: challenge, revocation or notification.

    An unknown message type is acknowledged and ignored rather than refused: failed deliveries
    count towards Twitch revoking the subscription.
    """
    payload = load_json_object(body)
    kind = get_header(headers, MESSAGE_TYPE)
    if kind == "webhook_callback_verification":
        return _challenge(payload)
    if kind == "revocation":
        return _revocation(headers, payload)
    if kind == "notification":
        return _notification(headers, payload)
    if not kind:
        raise WebhookRejected(400, f"missing header {MESSAGE_TYPE}")
    return Inbound(events=[], dedup_key=get_header(headers, MESSAGE_ID), notes={"ignored_message_type": kind[:64]})


def _sent_at(timestamp: str) -> datetime:
    try:
        return datetime.fromisoformat(iso_timestamp(timestamp))
    except ValueError:
        raise WebhookRejected(FORBIDDEN, "unreadable message timestamp") from None


def _event_time(headers: Mapping[str, str]) -> str:
    try:
        return iso_timestamp(get_header(headers, MESSAGE_TIMESTAMP) or "")
    except ValueError:
        raise WebhookRejected(400, f"missing or unreadable {MESSAGE_TIMESTAMP}") from None


def _challenge(payload: JsonObject) -> Inbound:
    """Twitch checks the body equals the challenge and the media type is text/plain."""
    challenge = as_str(payload.get("challenge"), "challenge")
    return Inbound(events=[], reply=(200, challenge, dict(TEXT_HEADERS)))


def _revocation(headers: Mapping[str, str], payload: JsonObject) -> Inbound:
    """No event, but the operator must learn why chat stopped arriving (and resubscribe)."""
    subscription = as_object(payload.get("subscription"), "subscription")
    revocation = {key: subscription.get(key) for key in ("id", "type", "version", "status", "condition")}
    return Inbound(events=[], dedup_key=get_header(headers, MESSAGE_ID), notes={"revocation": revocation})


def _notification(headers: Mapping[str, str], payload: JsonObject) -> Inbound:
    subscription = as_object(payload.get("subscription"), "subscription")
    subscription_type = as_str(subscription.get("type"), "subscription.type")
    inbound = Inbound(events=[], dedup_key=get_header(headers, MESSAGE_ID), notes=_retry_note(headers))
    if subscription_type != CHAT_MESSAGE:
        inbound.notes["ignored_subscription_type"] = subscription_type
        return inbound
    event = as_object(payload.get("event"), "event")
    if _is_own_bot(event, subscription):
        inbound.notes["ignored"] = "own bot message"
        return inbound
    inbound.events.append(chat_message_event(event, headers, subscription_id=subscription.get("id")))
    return inbound


def _retry_note(headers: Mapping[str, str]) -> JsonObject:
    retry = get_header(headers, MESSAGE_RETRY)
    return {"twitch_retry": int(retry)} if retry and is_digits(retry) else {}


def _is_own_bot(event: JsonObject, subscription: JsonObject) -> bool:
    """The subscription reads chat as our bot (``condition.user_id``); its own notices are not screened."""
    condition = subscription.get("condition")
    bot_id = condition.get("user_id") if isinstance(condition, dict) else None
    return bot_id is not None and event.get("chatter_user_id") == bot_id


def chat_message_event(event: JsonObject, headers: Mapping[str, str], *, subscription_id: Any = None) -> JsonObject:
    """Normalise a ``channel.chat.message`` event.

    Shared chat: a message shown in this channel but sent in a partner channel carries
    ``source_*`` fields; it is moderated there, so the Event names the source channel and message
    (a copy received through both channels' subscriptions then de-duplicates to one event). The
    event has no timestamp of its own; the delivery's ``Twitch-Eventsub-Message-Timestamp`` is
    the closest to when it was said.
    """
    author_id = as_str(event.get("chatter_user_id"), "event.chatter_user_id")
    broadcaster_id = as_str(event.get("broadcaster_user_id"), "event.broadcaster_user_id")
    message_id = as_str(event.get("message_id"), "event.message_id")
    message = as_object(event.get("message"), "event.message")
    source_channel = as_opt_str(event.get("source_broadcaster_user_id"), "event.source_broadcaster_user_id")
    source_message = as_opt_str(event.get("source_message_id"), "event.source_message_id")
    reply = event.get("reply") if isinstance(event.get("reply"), dict) else None
    mentions = _mentions(message)
    metadata = _chat_metadata(event, headers, mentions, reply)
    metadata["message_id"] = source_message or message_id
    metadata["broadcaster_id"] = source_channel or broadcaster_id
    if subscription_id:
        metadata["subscription_id"] = subscription_id
    if source_channel:
        metadata.update(shared_chat=True, received_broadcaster_id=broadcaster_id, received_message_id=message_id)
    return make_event(
        platform="twitch",
        event_id=source_message or message_id,
        author_id=author_id,
        content=as_text(message.get("text"), "event.message.text"),
        channel_id=source_channel or broadcaster_id,
        user_id=pick_target(author_id, [reply.get("parent_user_id") if reply else None, *mentions]),
        metadata=metadata,
    )


def _mentions(message: JsonObject) -> list[str]:
    fragments = as_list(message.get("fragments") or [], "event.message.fragments")
    found = (
        f["mention"].get("user_id")
        for f in fragments
        if isinstance(f, dict) and f.get("type") == "mention" and isinstance(f.get("mention"), dict)
    )
    return unique(m for m in found if isinstance(m, str) and m)


def _chat_metadata(
    event: JsonObject, headers: Mapping[str, str], mentions: list[str], reply: JsonObject | None
) -> JsonObject:
    metadata: JsonObject = {
        "timestamp": _event_time(headers),
        "mentions": mentions,
        "author_name": event.get("chatter_user_name"),
        "author_login": event.get("chatter_user_login"),
        "author_badges": strings(
            [b.get("set_id") for b in as_list(event.get("badges") or [], "event.badges") if isinstance(b, dict)]
        ),
        "message_type": event.get("message_type"),
        "source": "eventsub",
    }
    if reply:
        # Twitch replies form reply chains inside one chat, not separate spaces, so no thread_id.
        metadata["reply_to_message_id"] = reply.get("parent_message_id")
        metadata["reply_to_user_login"] = reply.get("parent_user_login")
        metadata["reply_thread_message_id"] = reply.get("thread_message_id")
    cheer = event.get("cheer")
    if isinstance(cheer, dict):
        metadata["cheer_bits"] = cheer.get("bits")
    return metadata
