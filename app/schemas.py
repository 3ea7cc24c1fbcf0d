"""Marshmallow schemas at the edge: everything that comes in is validated and normalised here.

An Event that passes ``EventSchema`` is in canonical form: NFC text without control characters,
a timezone-aware ISO-8601 timestamp in metadata, and the derived ``session_id``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from marshmallow import (
    EXCLUDE,
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from app.config import PLATFORMS

# PostgreSQL stores neither NUL in text nor a lone UTF-16 surrogate (what JSON's "\ud800" decodes to):
# an event carrying either was accepted here and then failed at screening, lost to the dead letters.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_METADATA_DEPTH = 16


def storable_text(value: str) -> None:
    if _UNSTORABLE.search(value):
        raise ValidationError("Contains a NUL character or invalid Unicode (a lone surrogate).")


ID = [validate.Length(min=1, max=128), storable_text]
# Slack's limit, the longest of the platforms: a long message is kept whole and screened in windows
# (app/pipeline/windows.py), never refused.
MAX_CONTENT_CHARS = 40_000
# Control characters other than tab/newline carry no meaning in chat and are a classic evasion.
_CONTROL = {c for c in range(0x20) if c not in (0x09, 0x0A)} | {0x7F}


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", _UNSTORABLE.sub(_replace_unstorable, text))
    return text.translate({c: None for c in _CONTROL})


def _replace_unstorable(match: re.Match[str]) -> str:
    return "" if match.group() == "\x00" else "\ufffd"


def check_storable(value: Any, where: str, depth: int = 0) -> None:
    """Free-form metadata as PostgreSQL's JSONB and strict JSON hold it: finite numbers, storable
    strings and keys, nested at most MAX_METADATA_DEPTH deep."""
    if depth > MAX_METADATA_DEPTH:
        raise ValidationError(f"Nested deeper than {MAX_METADATA_DEPTH} levels.", where)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("NaN and Infinity are not JSON numbers.", where)
    if isinstance(value, str) and _UNSTORABLE.search(value):
        raise ValidationError("Contains a NUL character or invalid Unicode (a lone surrogate).", where)
    if isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, where, depth + 1)
            check_storable(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_storable(item, where, depth + 1)


def session_id_for(platform: str, channel_id: str, thread_id: str | None) -> str:
    """One conversation: the channel, narrowed to the thread where the platform has threads."""
    base = f"{platform}:{channel_id}"
    return f"{base}:{thread_id}" if thread_id else base


class Timestamp(fields.Field):
    """ISO-8601 (timezone required, or Z) or epoch seconds/milliseconds; always stored in UTC."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "Not a valid timestamp: give ISO-8601 with a timezone or epoch seconds."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value
            try:
                return datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError) as exc:
                raise self.make_error("invalid") from exc
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise self.make_error("invalid") from exc
        if parsed.tzinfo is None:
            raise ValidationError("Timestamp needs a timezone (e.g. 2026-11-25T16:00:00Z).")
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:  # year 1 east of UTC, year 9999 west of it
            raise self.make_error("invalid") from exc


class MetadataSchema(Schema):
    """Known keys are typed; anything else a platform sends is kept as it is."""

    class Meta:
        unknown = INCLUDE

    timestamp = Timestamp(load_default=None)
    user_reputation = fields.Float(validate=validate.Range(0, 1))
    author_reputation = fields.Float(validate=validate.Range(0, 1))
    thread_id = fields.String(validate=ID, allow_none=True)
    mentions = fields.List(fields.String(validate=ID), validate=validate.Length(max=100))


class EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # session_id and friends are derived, never trusted from the caller

    event_id = fields.String(required=True, validate=ID)
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    user_id = fields.String(load_default=None, allow_none=True, validate=ID)
    author_id = fields.String(required=True, validate=ID)
    content = fields.String(required=True, validate=validate.Length(max=MAX_CONTENT_CHARS))
    channel_id = fields.String(required=True, validate=ID)
    metadata = fields.Nested(MetadataSchema, load_default=dict)

    def __init__(self, *args: Any, max_chars: int = MAX_CONTENT_CHARS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_chars = max_chars

    @pre_load
    def _strip_ids(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            for key in ("event_id", "author_id", "user_id", "channel_id", "platform"):
                if isinstance(data.get(key), str):
                    data = {**data, key: data[key].strip()}
                elif isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
                    data = {**data, key: str(data[key])}  # numeric snowflakes are common
        return data

    @validates_schema
    def _content_length(self, data: dict[str, Any], **kwargs: Any) -> None:
        if len(data.get("content", "")) > self.max_chars:
            raise ValidationError(f"Longer than {self.max_chars} characters.", "content")
        check_storable(data.get("metadata") or {}, "metadata")

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        metadata = dict(data.get("metadata") or {})
        timestamp = metadata.get("timestamp") or datetime.now(UTC)
        metadata["timestamp"] = timestamp.isoformat()
        data["metadata"] = metadata
        data["content"] = clean_text(data["content"])
        data["session_id"] = session_id_for(data["platform"], data["channel_id"], metadata.get("thread_id"))
        return data


class ScreenRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    text = fields.String(required=True, validate=validate.Length(max=MAX_CONTENT_CHARS))
    context = fields.List(fields.String(validate=validate.Length(max=MAX_CONTENT_CHARS)),
                          load_default=list, validate=validate.Length(max=20))

    def __init__(self, *args: Any, max_chars: int = MAX_CONTENT_CHARS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_chars = max_chars

    @validates_schema
    def _text_length(self, data: dict[str, Any], **kwargs: Any) -> None:
        """As long as an ingested message may be (MAX_MESSAGE_CHARS, Slack's 40,000): screened whole."""
        if len(data.get("text", "")) > self.max_chars:
            raise ValidationError(f"Longer than {self.max_chars} characters.", "text")

    @post_load
    def _clean(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # The text as the screening worker would read it (a lone surrogate used to reach the model: a 500).
        return {"text": clean_text(data["text"]), "context": [clean_text(c) for c in data["context"]]}


@lru_cache(maxsize=8)
def screen_request_schema(max_chars: int) -> ScreenRequestSchema:
    """POST /v1/screen's schema, built once per limit like ``event_schema``."""
    return ScreenRequestSchema(max_chars=max_chars)


@lru_cache(maxsize=8)
def event_schema(many: bool, max_chars: int) -> EventSchema:
    """Schemas are costly to build and safe to reuse: one per shape, not one per request."""
    return EventSchema(many=many, max_chars=max_chars)


def load_events(payload: Any, *, max_events: int, max_chars: int) -> list[dict[str, Any]]:
    """One Event or ``{"events": [...]}`` → canonical events; raises ValidationError with per-item messages."""
    if isinstance(payload, dict) and "events" in payload:
        items = payload["events"]
        if not isinstance(items, list):
            raise ValidationError({"events": ["Must be a list of events."]})
        if not items:
            raise ValidationError({"events": ["Send at least one event."]})
        if len(items) > max_events:
            raise ValidationError({"events": [f"At most {max_events} events per request (got {len(items)})."]})
        return list(event_schema(True, max_chars).load(items))
    if isinstance(payload, dict):
        return [event_schema(False, max_chars).load(payload)]
    raise ValidationError({"_schema": ["Send one Event object or {\"events\": [...]}."]})
