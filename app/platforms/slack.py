"""Slack Events API: v0 request signing, ``url_verification`` and ``message`` events.

Signed bytes are ``b"v0:" + X-Slack-Request-Timestamp + b":" + raw body`` (HMAC-SHA256 with
``SLACK_SIGNING_SECRET``, hex, ``v0=`` prefix), and the timestamp must be within 5 minutes, as
``slack_sdk.signature`` checks. Failures are 401. Slack retries a slow or failed delivery up to
3 times with ``X-Slack-Retry-Num``; the envelope's ``event_id`` stays the same, so it is the
``dedup_key`` and the retry number is only noted.

An edit arrives as a ``message`` event with subtype ``message_changed``: the edited message in
``event.message`` (with ``edited: {user, ts}``), the one before in ``event.previous_message``. When
the text changed, the new text is screened as its own Event (``as_edit``); Slack also sends
``message_changed`` for link unfurls and attachments, with the text unchanged, and those are
acknowledged and ignored. Deletions (``message_deleted``) are ignored like other subtypes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from app.platforms.base import (
    TEXT_HEADERS,
    Inbound,
    JsonObject,
    WebhookRejected,
    as_edit,
    as_edited_text,
    as_object,
    as_opt_str,
    as_str,
    as_text,
    get_header,
    is_digits,
    iso_from_epoch,
    load_json_object,
    make_event,
    object_or_empty,
    pick_target,
    require_headers,
    require_key,
    unique,
)

SETTING = "SLACK_SIGNING_SECRET"
REQUEST_TIMESTAMP = "X-Slack-Request-Timestamp"
SIGNATURE = "X-Slack-Signature"
RETRY_NUM = "X-Slack-Retry-Num"
RETRY_REASON = "X-Slack-Retry-Reason"

TOLERANCE_SECONDS = 300
UNAUTHORIZED = 401
# Subtypes that are still a person's own words; everything else (bot_message, message_deleted,
# channel_join, tombstone, ...) is either not a user message or not a new one. MESSAGE_CHANGED
# wraps an edit of one of these and is handled on its own.
USER_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "me_message"})
MESSAGE_CHANGED = "message_changed"
# <@U123ABC> or <@U123ABC|name>; W-prefixed ids are Enterprise Grid users.
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
SLACK_TS = re.compile(r"(\d+)\.(\d{1,6})")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` value for a request (for fakes and tests)."""
    basestring = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), basestring, hashlib.sha256).hexdigest()


def verify(
    headers: Mapping[str, str], body: bytes, *, secret: str, now: float, tolerance: float = TOLERANCE_SECONDS
) -> None:
    """Raise ``WebhookRejected(401)`` unless the v0 signature matches within the time window."""
    require_key(secret, SETTING)
    timestamp, signature = require_headers(headers, (REQUEST_TIMESTAMP, SIGNATURE), status=UNAUTHORIZED)
    if not is_digits(timestamp):
        raise WebhookRejected(UNAUTHORIZED, f"{REQUEST_TIMESTAMP} is not integer seconds")
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode()):
        raise WebhookRejected(UNAUTHORIZED, "signature mismatch")
    if abs(now - int(timestamp)) > tolerance:
        raise WebhookRejected(UNAUTHORIZED, "request timestamp outside 5 minutes")


def parse(headers: Mapping[str, str], body: bytes) -> Inbound:
    """Answer ``url_verification``; turn an ``event_callback`` carrying a user message into an Event.

    Other envelope types (``app_rate_limited``) and other inner events are acknowledged and
    ignored. ``app_mention`` is ignored on purpose: the same message also arrives as ``message``.
    """
    payload = load_json_object(body)
    kind = payload.get("type")
    if kind == "url_verification":
        challenge = as_str(payload.get("challenge"), "challenge")
        return Inbound(events=[], reply=(200, challenge, dict(TEXT_HEADERS)))
    if kind != "event_callback":
        return Inbound(events=[], notes={**_retry_notes(headers), "ignored_type": str(kind)[:64]})
    inbound = Inbound(events=[], dedup_key=as_str(payload.get("event_id"), "event_id"), notes=_retry_notes(headers))
    event = as_object(payload.get("event"), "event")
    skip = _skip_reason(event)
    if skip:
        inbound.notes["ignored"] = skip
    elif event.get("subtype") == MESSAGE_CHANGED:
        inbound.events.append(edited_event(event, payload))
    else:
        inbound.events.append(message_event(event, payload))
    return inbound


def _retry_notes(headers: Mapping[str, str]) -> JsonObject:
    retry = get_header(headers, RETRY_NUM)
    if not retry or not is_digits(retry):
        return {}
    return {"slack_retry": int(retry), "slack_retry_reason": (get_header(headers, RETRY_REASON) or "")[:64]}


def _skip_reason(event: JsonObject) -> str | None:
    """Why an inner event is not screened, or None for a person's message."""
    if event.get("type") != "message":
        return f"event type {str(event.get('type'))[:64]}"
    if event.get("subtype") == MESSAGE_CHANGED:
        return _edit_skip_reason(event)  # the event itself is ``hidden``: its message is what counts
    return _message_skip_reason(event, "")


def _message_skip_reason(message: JsonObject, prefix: str) -> str | None:
    subtype = message.get("subtype")
    if not (subtype is None or isinstance(subtype, str)) or subtype not in USER_SUBTYPES:
        return f"{prefix}message subtype {str(subtype)[:64]}"
    if message.get("bot_id") or message.get("hidden") or not message.get("user"):
        return f"{prefix}bot or hidden message"
    return None


def _edit_skip_reason(event: JsonObject) -> str | None:
    """An edit is screened when it is a person's message and its text changed (unfurls keep it)."""
    message = as_object(event.get("message"), "event.message")
    skip = _message_skip_reason(message, "edited ")
    if skip:
        return skip
    text = as_edited_text(message.get("text"), "event.message.text")
    previous = object_or_empty(event.get("previous_message"))
    if "text" in previous and previous["text"] == text:
        return "message_changed without a text change"
    return None


def message_event(event: JsonObject, envelope: JsonObject) -> JsonObject:
    """Normalise a ``message`` event. ``ts`` is unique only within a channel, hence ``channel:ts``."""
    return _message_event(event, event, envelope, "event")


def edited_event(event: JsonObject, envelope: JsonObject) -> JsonObject:
    """Normalise a ``message_changed`` event into the edited message's new Event.

    The edit time is ``message.edited.ts``; a text change without ``edited`` (not seen from people,
    but not worth missing) falls back to the ``message_changed`` event's own ``ts``.
    """
    message = as_object(event.get("message"), "event.message")
    edited = object_or_empty(message.get("edited"))
    source, where = (edited, "event.message.edited.ts") if "ts" in edited else (event, "event.ts")
    edited_at = _ts_to_iso(as_str(source.get("ts"), where), where)
    return as_edit(_message_event(event, message, envelope, "event.message"), edited_at)


def _message_event(event: JsonObject, message: JsonObject, envelope: JsonObject, where: str) -> JsonObject:
    """The Event for ``message``; ``event`` holds the channel (the same object, except for an edit)."""
    channel = as_str(event.get("channel"), "event.channel")
    ts = as_str(message.get("ts"), f"{where}.ts")
    author_id = as_str(message.get("user"), f"{where}.user")
    content = as_text(message.get("text"), f"{where}.text")
    mentions = unique(USER_MENTION.findall(content))
    thread_ts = as_opt_str(message.get("thread_ts"), f"{where}.thread_ts")
    is_reply = thread_ts is not None and thread_ts != ts
    parent_user = as_opt_str(message.get("parent_user_id"), f"{where}.parent_user_id") if is_reply else None
    metadata: JsonObject = {
        "timestamp": _ts_to_iso(ts, f"{where}.ts"),
        "message_id": ts,
        "team_id": message.get("team") or envelope.get("team_id"),
        "mentions": mentions,
        "channel_type": event.get("channel_type"),
        "slack_event_id": envelope.get("event_id"),
        "source": "events_api",
    }
    if thread_ts:
        metadata["thread_id"] = thread_ts
    if is_reply:
        metadata["reply_to_message_id"] = f"{channel}:{thread_ts}"
    if message.get("subtype"):
        metadata["subtype"] = message["subtype"]
    return make_event(
        platform="slack",
        event_id=f"{channel}:{ts}",
        author_id=author_id,
        content=content,
        channel_id=channel,
        user_id=pick_target(author_id, [parent_user, *mentions]),
        metadata=metadata,
    )


def _ts_to_iso(ts: str, where: str) -> str:
    """``"1717243199.000100"`` to ISO 8601, exactly (a float would round the microseconds)."""
    match = SLACK_TS.fullmatch(ts)
    if not match:
        raise WebhookRejected(400, f"{where} is not a Slack timestamp")
    seconds, fraction = match.groups()
    return iso_from_epoch(int(seconds), int(fraction.ljust(6, "0")))
