"""The decision an LLM must answer with, as a JSON schema (sent as ``response_format``) and as the
marshmallow schema that validates the answer before anything is applied.

Validation is strict: exactly the five fields, no others (a model told by a message to add
``"user_id": "mod"`` is rejected, not half-obeyed), numbers must be JSON numbers, the action must be
one of the design's types and the duration must fit the action. Anything else raises
``LLMInvalidAnswer`` and the fallback decides.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.llm.base import LLMInvalidAnswer

ACTION_TYPES = ("none", "warning", "timeout", "mute", "ban", "delete_message", "human_review")
# Hours an action may last; None in the answer means the policy's default (a ban: permanent).
DURATION_RANGES = {"timeout": (0.0, 168.0), "mute": (0.0, 720.0), "ban": (0.0, 8760.0)}
REASON_CODE = r"^[a-z][a-z0-9_]{1,63}$"
MAX_REASONING_CHARS = 2000

JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action_type": {"type": "string", "enum": list(ACTION_TYPES)},
        "duration_hours": {"type": ["number", "null"],
                           "description": "timeout: up to 168, mute: up to 720, ban: up to 8760 or null for "
                                          "permanent; null for every other action"},
        "reason_code": {"type": "string", "description": "snake_case, e.g. targeted_harassment"},
        "confidence": {"type": "number", "description": "0 to 1"},
        "reasoning": {"type": "string", "description": "two or three sentences citing the evidence"},
    },
    "required": ["action_type", "duration_hours", "reason_code", "confidence", "reasoning"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema",
                   "json_schema": {"name": "moderation_decision", "strict": True, "schema": JSON_SCHEMA}}


class JsonNumber(fields.Float):
    """A float that was a JSON number: no strings, no booleans, nothing infinite."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValidationError("must be a finite JSON number")
        return float(value)


class DecisionSchema(Schema):
    class Meta:
        unknown = RAISE

    action_type = fields.String(required=True, validate=validate.OneOf(ACTION_TYPES))
    duration_hours = JsonNumber(required=True, allow_none=True)
    reason_code = fields.String(required=True, validate=validate.Regexp(REASON_CODE))
    confidence = JsonNumber(required=True, validate=validate.Range(0.0, 1.0))
    reasoning = fields.String(required=True, validate=validate.Length(1, MAX_REASONING_CHARS))

    @validates_schema
    def _duration_fits_action(self, data: dict[str, Any], **_: Any) -> None:
        hours, action = data.get("duration_hours"), data.get("action_type")
        if hours is None or action is None:
            return
        if action not in DURATION_RANGES:
            if hours != 0:
                raise ValidationError(f"{action} takes no duration", "duration_hours")
            return
        low, high = DURATION_RANGES[action]
        if not low < hours <= high:
            raise ValidationError(f"{action} lasts more than {low:g} and at most {high:g} hours", "duration_hours")


@dataclass(frozen=True)
class LLMDecision:
    action_type: str
    duration_hours: float | None
    reason_code: str
    confidence: float
    reasoning: str


def parse_decision(text: str) -> LLMDecision:
    """The validated decision, or ``LLMInvalidAnswer`` saying why not."""
    try:
        raw = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise LLMInvalidAnswer(f"not JSON: {text[:200]!r}") from exc
    if not isinstance(raw, dict):
        raise LLMInvalidAnswer(f"not a JSON object: {text[:200]!r}")
    try:
        data = DecisionSchema().load(raw)
    except ValidationError as exc:
        raise LLMInvalidAnswer(f"outside the decision schema: {exc.messages}") from exc
    hours = data["duration_hours"]
    if data["action_type"] not in DURATION_RANGES:
        hours = None
    return LLMDecision(data["action_type"], hours, data["reason_code"], round(data["confidence"], 4),
                       data["reasoning"].strip())
