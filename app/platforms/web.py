"""Generic web chat: Standard Webhooks signed with ``WEB_WEBHOOK_SECRET``.

The body is one of
* a single Event in the system's contract (``event_id``, ``author_id``, ``content``,
  ``channel_id``, optional ``user_id`` and ``metadata``),
* ``{"events": [Event, ...]}``, the batch form the design asks senders to use under load,
* a Standard Webhooks envelope ``{"type": "chat.message.created", "timestamp", "data"}`` as in the
  platform reference (§4), or ``chat.message.edited`` with the same ``data`` and the message's
  ``edited_at``; other envelope types (deletions, reports) are acknowledged and ignored.

A web chat backend is a trusted, authenticated sender, so its Events are validated for shape
(marshmallow, at this edge) rather than rebuilt; ``platform`` is forced to ``web`` so one sender
cannot write into another platform's id space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from app.platforms import standard_webhooks
from app.platforms.base import (
    MAX_BATCH_EVENTS,
    Inbound,
    JsonObject,
    WebhookRejected,
    as_edit,
    as_edited_text,
    as_iso_time,
    as_list,
    as_object,
    as_opt_str,
    as_str,
    as_text,
    get_header,
    is_digits,
    iso_from_epoch,
    iso_timestamp,
    load_json_object,
    make_event,
    pick_target,
    unique,
)

SETTING = "WEB_WEBHOOK_SECRET"
MESSAGE_CREATED = "chat.message.created"
MESSAGE_EDITED = "chat.message.edited"
ID_LENGTH = validate.Length(min=1, max=256)


class EventSchema(Schema):
    """An Event as a web chat sends it; ``session_id`` and unknown keys are dropped (we derive them)."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=ID_LENGTH)
    platform = fields.String(load_default="web", validate=validate.Equal("web"))
    user_id = fields.String(load_default=None, allow_none=True, validate=ID_LENGTH)
    author_id = fields.String(required=True, validate=ID_LENGTH)
    content = fields.String(required=True)
    channel_id = fields.String(required=True, validate=ID_LENGTH)
    metadata = fields.Dict(keys=fields.String(), load_default=dict)


EVENT_SCHEMA = EventSchema()


def verify(headers: Mapping[str, str], body: bytes, *, secret: str | Sequence[str], now: float) -> None:
    """Standard Webhooks check (401 on failure); a list of secrets lets us rotate ours."""
    standard_webhooks.verify(headers, body, secret=secret, now=now, setting=SETTING)


def parse(headers: Mapping[str, str], body: bytes) -> Inbound:
    """Normalise any of the three body forms; ``webhook-id`` is the delivery's ``dedup_key``."""
    payload = load_json_object(body)
    delivered_at = _delivery_time(headers)
    inbound = Inbound(events=[], dedup_key=get_header(headers, standard_webhooks.WEBHOOK_ID))
    if "events" in payload:
        items = as_list(payload["events"], "events")
        if len(items) > MAX_BATCH_EVENTS:
            raise WebhookRejected(413, f"batch larger than {MAX_BATCH_EVENTS} events")
        inbound.events = [_contract_event(item, index, delivered_at) for index, item in enumerate(items)]
    elif "event_id" not in payload and "type" in payload and "data" in payload:
        _envelope(payload, inbound)
    else:
        inbound.events = [_contract_event(payload, 0, delivered_at)]
    return inbound


def _delivery_time(headers: Mapping[str, str]) -> str | None:
    header = get_header(headers, standard_webhooks.WEBHOOK_TIMESTAMP)
    return iso_from_epoch(int(header)) if header and is_digits(header) else None


def _contract_event(item: Any, index: int, delivered_at: str | None) -> JsonObject:
    """Validate one contract Event; error reasons name fields, never their values."""
    try:
        event: JsonObject = EVENT_SCHEMA.load(as_object(item, f"events[{index}]"))
    except ValidationError as error:
        fields_ = ", ".join(sorted(map(str, error.messages_dict)))
        raise WebhookRejected(400, f"events[{index}] invalid fields: {fields_}") from None
    event["metadata"] = _with_timestamp(event["metadata"], index, delivered_at)
    event["metadata"].setdefault("source", "webhook")
    event["metadata"].setdefault("message_id", event["event_id"])
    return event


def _with_timestamp(metadata: JsonObject, index: int, delivered_at: str | None) -> JsonObject:
    """The sender's timestamp, normalised; absent, the delivery's ``webhook-timestamp``."""
    stamp = metadata.get("timestamp")
    if stamp is None and delivered_at is not None:
        return {**metadata, "timestamp": delivered_at}
    try:
        if not isinstance(stamp, str):
            raise ValueError("timestamp is not a string")
        return {**metadata, "timestamp": iso_timestamp(stamp)}
    except ValueError:
        raise WebhookRejected(400, f"events[{index}] metadata.timestamp is not ISO 8601 with a timezone") from None


def _envelope(payload: JsonObject, inbound: Inbound) -> None:
    kind = payload.get("type")
    if kind not in (MESSAGE_CREATED, MESSAGE_EDITED):
        inbound.notes["ignored_type"] = str(kind)[:64]
        return
    data = as_object(payload["data"], "data")
    author = as_object(data.get("author"), "data.author")
    if author.get("is_bot"):
        inbound.notes["ignored"] = "bot message"
        return
    normalise = message_created_event if kind == MESSAGE_CREATED else message_edited_event
    inbound.events = [normalise(data, author)]


def message_created_event(data: JsonObject, author: JsonObject) -> JsonObject:
    """Normalise ``chat.message.created``."""
    message = as_object(data.get("message"), "data.message")
    return _message_event(data, author, message, _message_time(message, "created_at"))


def message_edited_event(data: JsonObject, author: JsonObject) -> JsonObject:
    """Normalise ``chat.message.edited``: the new text as its own Event (``as_edit``)."""
    message = as_object(data.get("message"), "data.message")
    as_edited_text(message.get("text"), "data.message.text")
    edited_at = _message_time(message, "edited_at")
    return as_edit(_message_event(data, author, message, edited_at), edited_at)


def _message_time(message: JsonObject, name: str) -> str:
    return as_iso_time(message.get(name), f"data.message.{name}")


def _message_event(data: JsonObject, author: JsonObject, message: JsonObject, timestamp: str) -> JsonObject:
    """The Event for a chat message; ``reply_to`` may be a message id or an object."""
    author_id = as_str(author.get("id"), "data.author.id")
    message_id = as_str(message.get("id"), "data.message.id")
    mentions = unique(m for m in as_list(message.get("mentions") or [], "data.message.mentions") if isinstance(m, str))
    reply_to, replied_user = _reply(message.get("reply_to"))
    metadata: JsonObject = {
        "timestamp": timestamp,
        "message_id": message_id,
        "mentions": mentions,
        "author_name": author.get("display_name"),
        "source": "webhook",
    }
    if data.get("tenant_id"):
        metadata["tenant_id"] = data["tenant_id"]
    if reply_to:
        metadata["reply_to_message_id"] = reply_to
    return make_event(
        platform="web",
        event_id=message_id,
        author_id=author_id,
        content=as_text(message.get("text"), "data.message.text"),
        channel_id=as_str(data.get("room_id"), "data.room_id"),
        user_id=pick_target(author_id, [replied_user, *mentions]),
        metadata=metadata,
    )


def _reply(reply_to: Any) -> tuple[str | None, str | None]:
    """(replied-to message id, its author id) from ``null``, ``"m_1"`` or ``{"id", "author_id"}``."""
    if isinstance(reply_to, dict):
        author = reply_to.get("author_id") or reply_to.get("user_id")
        return as_opt_str(reply_to.get("id"), "reply_to.id"), as_opt_str(author, "reply_to.author_id")
    return as_opt_str(reply_to, "data.message.reply_to"), None
