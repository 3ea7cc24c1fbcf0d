"""The decision schema: an LLM answer outside it is rejected, never applied."""

from __future__ import annotations

import json

import pytest

from app.fallback import decide as fallback_decide
from app.llm.base import LLMInvalidAnswer
from app.llm.schema import JSON_SCHEMA, parse_decision
from tests.fakes import reasoning_inputs as inputs

VALID = {"action_type": "timeout", "duration_hours": 24, "reason_code": "targeted_harassment", "confidence": 0.8,
         "reasoning": "Repeated insults at one participant."}


def test_a_valid_answer_is_parsed():
    decision = parse_decision(json.dumps(VALID))
    assert (decision.action_type, decision.duration_hours, decision.confidence) == ("timeout", 24.0, 0.8)


@pytest.mark.parametrize("answer", [
    "Sure! I think a ban is appropriate.",                      # not JSON
    "```json\n" + json.dumps(VALID) + "\n```",                   # wrapped in prose or fences
    json.dumps([VALID]),                                        # not an object
    json.dumps(VALID | {"action_type": "kick"}),                # outside the allowed actions
    json.dumps(VALID | {"action_type": "BAN"}),
    json.dumps(VALID | {"duration_hours": 0}),                  # a timeout of nothing
    json.dumps(VALID | {"duration_hours": 169}),                # longer than a timeout may last
    json.dumps(VALID | {"action_type": "mute", "duration_hours": -5}),
    json.dumps(VALID | {"action_type": "ban", "duration_hours": 10_000}),
    json.dumps(VALID | {"action_type": "warning", "duration_hours": 12}),  # a warning has no duration
    json.dumps(VALID | {"duration_hours": "24"}),               # numbers must be numbers
    json.dumps(VALID | {"confidence": 1.5}),
    json.dumps(VALID | {"confidence": True}),
    json.dumps(VALID | {"reason_code": "Because I said so"}),
    json.dumps(VALID | {"reasoning": ""}),
    json.dumps(VALID | {"user_id": "mod"}),                     # no field may name a target
    json.dumps({k: v for k, v in VALID.items() if k != "confidence"}),
    '{"action_type": "timeout", "duration_hours": NaN, "reason_code": "x_y", "confidence": 0.5, "reasoning": "r"}',
])
def test_answers_outside_the_schema_are_rejected(answer):
    with pytest.raises(LLMInvalidAnswer):
        parse_decision(answer)


def test_no_duration_for_actions_that_take_none():
    assert parse_decision(json.dumps(VALID | {"action_type": "warning", "duration_hours": None})).duration_hours is None
    assert parse_decision(json.dumps(VALID | {"action_type": "ban", "duration_hours": None})).duration_hours is None


def test_the_json_schema_sent_to_the_model_is_strict():
    assert JSON_SCHEMA["additionalProperties"] is False
    assert set(JSON_SCHEMA["required"]) == set(JSON_SCHEMA["properties"])


@pytest.mark.parametrize("category,risk", [("threat", 0.97), ("targeted_harassment", 0.75), ("spam", 0.8),
                                           ("self_harm", 0.9), ("profanity", 0.72), ("hate", 0.88)])
def test_the_fallback_speaks_the_same_contract(category, risk):
    verdict = fallback_decide(inputs.event(category=category, risk=risk), inputs.context())
    answer = {"action_type": verdict.action_type, "duration_hours": verdict.duration_hours,
              "reason_code": verdict.reason_code, "confidence": verdict.confidence, "reasoning": verdict.reasoning}
    assert parse_decision(json.dumps(answer)).action_type == verdict.action_type
