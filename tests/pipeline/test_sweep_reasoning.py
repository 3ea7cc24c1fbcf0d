"""The reasoning sweeper: risky events left without a decision are queued for context.gather again."""

from __future__ import annotations

from app import maintenance
from app.db import session_scope
from app.models import Action
from tests.fakes.reasoning_inputs import insert_event


def sweep(rds, **kw):  # type: ignore[no-untyped-def]
    queued: list[list[dict[str, str]]] = []
    with session_scope() as db:
        count = maintenance.sweep_reasoning(rds, db, queued.append, older_than_s=300, **kw)
    return count, [ref for batch in queued for ref in batch]


def test_only_old_undecided_risky_events_are_requeued_once_per_period(settings, rds):
    insert_event("stuck", "x", screened_ago_s=600)
    insert_event("fresh", "x", screened_ago_s=10)
    insert_event("decided", "x", status="decided", screened_ago_s=600)
    insert_event("benign", "x", status="screened", screened_ago_s=600)
    insert_event("reviewed", "x", screened_ago_s=600)  # human_review hands it back as needs_review, with an action
    with session_scope() as db:
        db.add(Action(action_id="r", event_id="reviewed", platform="web", user_id="troll", action_type="human_review",
                      reason_code="r", reasoning="", confidence=0.5, evidence_chain=[], policy="p",
                      provider="fallback", status="applied"))
    assert sweep(rds) == (1, [{"platform": "web", "event_id": "stuck"}])
    assert sweep(rds) == (0, [])  # marked: not queued again while its message may still be waiting
    rds.delete("sweep:reasoning:web:stuck")
    assert sweep(rds)[0] == 1


def test_a_busy_reasoning_queue_is_left_alone(settings, rds):
    insert_event("stuck", "x", screened_ago_s=600)
    rds.rpush("reasoning", *["m"] * (maintenance.BUSY_QUEUE_LENGTH + 1))
    assert sweep(rds) == (0, [])
