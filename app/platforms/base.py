"""What every inbound connector shares: the result type, the rejection error and small helpers.

Connectors are pure functions over ``(headers, raw body bytes)``: no Flask, no Redis, no clock of
their own (``now`` is passed in), so the web layer, replay tools and tests call them the same way.
A rejection's ``reason`` goes to logs, so it is built only from constant text, header *names* and
field *names*, never from message content or header values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

JsonObject = dict[str, Any]
Reply = tuple[int, JsonObject | str, dict[str, str]]

JSON_HEADERS = {"Content-Type": "application/json"}
TEXT_HEADERS = {"Content-Type": "text/plain"}

# A bridge or web-chat batch bigger than this is refused with 413 rather than half processed;
# senders split it. 500 events is ~100 kB of chat, far above the batches the design expects.
MAX_BATCH_EVENTS = 500


class WebhookRejected(Exception):
    """A delivery the connector refuses.

    ``status`` is the HTTP status the platform expects for this failure (it decides whether the
    platform retries, and Discord removes an Interactions URL that accepts bad signatures);
    ``reason`` is short text for logs and never contains message content.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass
class Inbound:
    """A verified delivery, normalised.

    ``reply`` replaces the web layer's default ``202`` for handshakes and interactions
    (``(status, body, headers)``; a ``str`` body is sent verbatim). ``dedup_key`` identifies the
    whole delivery (it is ``None`` for handshakes, which must be answered every time).
    """

    events: list[JsonObject]
    reply: Reply | None = None
    dedup_key: str | None = None
    notes: JsonObject = field(default_factory=dict)


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Header lookup that ignores case, for plain dicts as well as Werkzeug's ``Headers``."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def require_headers(headers: Mapping[str, str], names: Iterable[str], *, status: int) -> list[str]:
    """Return the named headers' values; a missing or empty one is a verification failure."""
    values = []
    for name in names:
        value = get_header(headers, name)
        if not value:
            raise WebhookRejected(status, f"missing header {name}")
        values.append(value)
    return values


def require_key(key: str, setting: str) -> None:
    """An unset secret must not turn into an HMAC with an empty key that anyone can forge.

    503 because it is our configuration, not the sender, that is wrong; platforms retry later.
    """
    if not key:
        raise WebhookRejected(503, f"{setting} is not configured")


def load_json_object(body: bytes) -> JsonObject:
    """Parse the raw body (already verified) as a JSON object, or refuse it with 400."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        # ``from None``: JSONDecodeError carries the whole document, which must not reach a log.
        raise WebhookRejected(400, "malformed JSON body") from None
    return as_object(payload, "body")


def as_object(value: Any, where: str) -> JsonObject:
    if not isinstance(value, dict):
        raise WebhookRejected(400, f"{where} is not an object")
    return value


def object_or_empty(value: Any) -> JsonObject:
    """An optional nested object (``member``, ``action``): absent or malformed reads as empty."""
    return value if isinstance(value, dict) else {}


def strings(value: Any) -> list[str]:
    """An optional list of ids (roles, mentions): anything that is not a string is left out."""
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise WebhookRejected(400, f"{where} is not a list")
    return value


def as_str(value: Any, where: str) -> str:
    """A required string field; ids are JSON strings on every platform (Discord's exceed 2**53)."""
    if not isinstance(value, str) or not value:
        raise WebhookRejected(400, f"{where} is missing or not a string")
    return value


def as_text(value: Any, where: str) -> str:
    """Message text: absent or null means empty (attachments only, no content intent)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebhookRejected(400, f"{where} is not a string")
    return value


def as_edited_text(value: Any, where: str) -> str:
    """An edit's new text: it must be there (it may be empty), since the new words are the point."""
    if not isinstance(value, str):
        raise WebhookRejected(400, f"{where} is missing or not a string")
    return value


def is_digits(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes "²" and other digits ``int()`` refuses (a 500)."""
    return value.isascii() and value.isdigit()


def as_opt_str(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    return as_str(value, where)


def iso_timestamp(value: str) -> str:
    """Normalise an RFC 3339 timestamp to ``datetime.isoformat()`` with an explicit offset.

    Python 3.11's ``fromisoformat`` takes ``Z`` and Twitch's 7-9 fractional digits (truncated to
    microseconds). A timestamp without an offset is ambiguous, so it is refused.
    """
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without timezone")
    return parsed.isoformat()


def as_iso_time(value: Any, where: str) -> str:
    """A required RFC 3339 field as ``iso_timestamp`` writes it; 400 naming ``where`` otherwise."""
    try:
        return iso_timestamp(as_str(value, where))
    except ValueError:
        raise WebhookRejected(400, f"{where} is not ISO 8601 with a timezone") from None


def iso_from_epoch(seconds: int, microseconds: int = 0) -> str:
    """400 for a time no datetime holds (a Slack ``ts`` or a snowflake of 40 digits was a 500)."""
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=microseconds)
    except (OverflowError, OSError, ValueError):
        raise WebhookRejected(400, "time out of range") from None
    return moment.isoformat()


def unique(items: Iterable[str]) -> list[str]:
    """Order-preserving de-duplication (a user mentioned twice is one mention)."""
    return list(dict.fromkeys(items))


def pick_target(author_id: str, candidates: Iterable[str | None]) -> str | None:
    """The recipient: the first candidate (replied-to user, then mentions) who is not the author."""
    return next((c for c in candidates if c and c != author_id), None)


def make_event(
    *,
    platform: str,
    event_id: str,
    author_id: str,
    content: str,
    channel_id: str,
    user_id: str | None,
    metadata: JsonObject,
) -> JsonObject:
    """The system's Event contract (DESIGN.md §3); ``session_id`` is derived later by ingest."""
    return {
        "event_id": event_id,
        "platform": platform,
        "user_id": user_id,
        "author_id": author_id,
        "content": content,
        "channel_id": channel_id,
        "metadata": metadata,
    }


def as_edit(event: JsonObject, edited_at: str) -> JsonObject:
    """Turn the Event a message would be into the Event for an edit of it made at ``edited_at``.

    Posting something harmless and then editing it into abuse is a known way past screening, so an
    edit is screened as a new message. It needs an id of its own, the original's plus the edit time:
    dedup then never drops it as the original's duplicate, two edits never collide, and a redelivered
    copy of the same edit is still a duplicate. ``metadata.message_id`` keeps the platform's message
    id, which a deletion acts on, and ``timestamp`` becomes the edit time, so the session orders the
    new words by when they were written.
    """
    original_id = event["event_id"]
    event["event_id"] = f"{original_id}:edit:{edited_at}"
    event["metadata"].update(timestamp=edited_at, edited=True, original_event_id=original_id)
    return event
