"""The deterministic reasoner decides from the evidence: category, score, precedents, author and session."""

from __future__ import annotations

import pytest

from app.fallback import SEVERITY, decide
from tests.fakes import reasoning_inputs as inputs
from tests.fakes.reasoning_inputs import precedent


def verdict(content_kw=None, **context_kw):  # type: ignore[no-untyped-def]
    return decide(inputs.event(**(content_kw or {})), inputs.context(**context_kw))


def test_a_new_deployment_with_no_history_still_decides():
    v = decide(inputs.event(risk=0.8), {"precedents": [], "author": {}, "session": {}})
    assert v.action_type == "warning"
    assert "No similar past incident" in v.reasoning and "no record" in v.reasoning
    assert 0 < v.confidence < 1


def test_the_category_and_the_score_set_the_starting_point():
    mild = verdict({"category": "targeted_harassment", "risk": 0.74})
    clear = verdict({"category": "targeted_harassment", "risk": 0.93})
    hate = verdict({"category": "hate", "risk": 0.93})
    threat = verdict({"category": "threat", "risk": 0.97})
    swearing = verdict({"category": "profanity", "risk": 0.75})
    assert (mild.action_type, clear.action_type, swearing.action_type) == ("warning", "timeout", "none")
    assert hate.action_type == "mute" and threat.action_type == "ban"
    assert mild.severity < clear.severity < hate.severity < threat.severity


def test_rules_that_fired_add_weight():
    plain = verdict({"risk": 0.8})
    evasive = verdict({"risk": 0.8, "flags": ["evasion_obfuscated", "repeated_name_calling"]})
    assert evasive.severity - plain.severity == pytest.approx(0.4)
    assert "evasion_obfuscated" in evasive.reasoning


def test_a_victim_answering_back_or_an_unsure_model_adds_no_weight():
    plain = verdict({"risk": 0.8})
    answering = verdict({"risk": 0.8, "flags": ["answering_harasser", "model_uncertain"]})
    assert answering.severity == pytest.approx(plain.severity)
    assert "Rules fired" not in answering.reasoning


def test_close_precedents_that_were_applied_pull_the_decision_towards_their_action():
    alone = verdict({"risk": 0.76})
    precedents = [precedent(1, 0.93, "timeout"), precedent(2, 0.9, "timeout"), precedent(3, 0.88, "mute")]
    guided = verdict({"risk": 0.76}, precedents=precedents)
    assert alone.action_type == "warning" and guided.action_type == "timeout"
    assert "3 similar incident(s)" in guided.reasoning


def test_distant_precedents_do_not_count():
    far = [precedent(1, 0.4, "ban"), precedent(2, 0.5, "ban")]
    assert verdict({"risk": 0.76}, precedents=far).severity == verdict({"risk": 0.76}).severity


def test_an_overturned_precedent_counts_against_its_action():
    content = {"category": "targeted_harassment", "risk": 0.9}
    upheld = verdict(content, precedents=[precedent(1, 0.92, "timeout"), precedent(2, 0.9, "timeout")])
    overturned = verdict(content, precedents=[precedent(1, 0.92, "timeout", "overturned"),
                                              precedent(2, 0.9, "timeout", "reversed")])
    assert upheld.action_type == "timeout"
    assert overturned.action_type == "warning"
    assert overturned.severity < verdict(content).severity < upheld.severity + 0.5
    assert "counts against" in overturned.reasoning


def test_pending_precedents_weigh_half_as_much_as_applied_ones():
    applied = verdict({"risk": 0.76}, precedents=[precedent(1, 0.9, "mute")])
    pending = verdict({"risk": 0.76}, precedents=[precedent(1, 0.9, "mute", "pending")])
    assert verdict({"risk": 0.76}).severity < pending.severity < applied.severity


def test_precedents_far_from_the_content_send_it_to_a_person():
    v = verdict({"category": "threat", "risk": 0.95},
                precedents=[precedent(1, 0.95, "none", category="none"), precedent(2, 0.94, "none", category="none"),
                            precedent(3, 0.93, "warning", "overturned", category="none")])
    assert (v.action_type, v.reason_code) == ("human_review", "conflicting_precedents")
    assert v.confidence <= 0.5


def test_the_authors_record_raises_and_past_reversals_lower():
    first = verdict({"risk": 0.78})
    repeat = verdict({"risk": 0.78}, violations=3, reputation=0.2)
    wrongly_accused_before = verdict({"risk": 0.78}, reversed_count=2, reputation=0.8)
    assert wrongly_accused_before.severity < first.severity < repeat.severity
    assert (first.action_type, repeat.action_type, wrongly_accused_before.action_type) == ("warning", "timeout", "none")
    assert wrongly_accused_before.confidence < first.confidence


def test_a_heating_conversation_and_a_pile_on_raise_the_decision():
    calm = verdict({"risk": 0.78})
    heated = verdict({"risk": 0.78}, escalation=0.9, pile_on=True)
    assert calm.action_type == "warning" and SEVERITY[heated.action_type] >= SEVERITY["timeout"]
    assert "pile-on" in heated.reasoning


def test_self_harm_goes_to_a_person_and_spam_is_removed():
    assert verdict({"category": "self_harm", "risk": 0.95}).action_type == "human_review"
    assert verdict({"category": "self_harm", "risk": 0.95}, violations=3).action_type == "human_review"
    assert verdict({"category": "spam", "risk": 0.9}).action_type == "delete_message"


def test_durations_grow_with_severity():
    short = verdict({"category": "targeted_harassment", "risk": 0.85})
    longer = verdict({"category": "targeted_harassment", "risk": 0.95})
    assert (short.action_type, short.duration_hours) == ("timeout", 1.0)
    assert (longer.action_type, longer.duration_hours) == ("timeout", 24.0)


def test_a_message_the_model_could_not_read_is_decided_by_a_person():
    confident = verdict({"category": "sexual_harassment", "risk": 0.92, "confidence": 0.83})
    unread = verdict({"category": "sexual_harassment", "risk": 0.92, "confidence": 0.2,
                      "flags": ["unfamiliar_wording", "models_disagree", "model_uncertain"]})
    assert confident.action_type == "mute"
    assert (unread.action_type, unread.reason_code) == ("human_review", "model_uncertain")
    assert unread.confidence <= 0.5 and "unfamiliar_wording, models_disagree" in unread.reasoning
    assert unread.severity == pytest.approx(confident.severity)  # the trust flags add no severity
