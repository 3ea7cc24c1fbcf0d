"""The reasoning stage on real PostgreSQL and Redis: one decision per event, audited, published, shown."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import streams
from app.config import Settings
from app.db import session_scope
from app.llm.embeddings import embedder_for
from app.models import Action, AuditLog, Event
from app.pipeline import context, reason
from app.vectorstore import IncidentStore
from tests.fakes.reasoning_inputs import insert_event

INSULT = "you are a worthless idiot and everyone here hates you"
SIMILAR_INSULT = "you're such a useless moron, nobody in this chat likes you"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IncidentStore]:
    opened = IncidentStore.open(Settings(QDRANT_PATH=str(tmp_path / "qdrant")), 384)
    yield opened
    opened.close()


@pytest.fixture
def chain(settings, rds, store):  # type: ignore[no-untyped-def]
    """context.gather + reason.decide + record + publish in-process, as the two tasks do them."""
    def run(ref: dict[str, str]) -> dict[str, Any] | None:
        started = time.time() * 1000
        with session_scope() as db:
            gathered = context.gather(ref, db=db, client=rds, store=store, embedder=embedder_for(settings), top_k=5,
                                      embedding_ttl_s=60)
        if gathered is None:
            return None
        with session_scope() as db:
            event = reason.load_for_decision(db, ref)
        decision = reason.decide(event, gathered, provider=None, policy=settings.ACTION_POLICY,
                                 llm_timeout_s=1.0, deadline=reason.deadline_for(started, 5.0))
        with session_scope() as db:
            action = reason.record(db, ref, decision, policy=settings.ACTION_POLICY, duration_ms=12.5)
        if action:
            reason.publish(rds, action, 1000)
            store.record_outcome(ref["platform"], ref["event_id"], action_taken=action["action_type"],
                                 action_outcome="pending")
        return action
    return run


def test_a_decision_is_recorded_once_audited_and_published(chain, rds):
    ref = insert_event("e1", INSULT, risk=0.9, author="troll", target="bob", flags=["repeated_name_calling"])
    action = chain(ref)
    expected_id = hashlib.sha256(f"web:e1:{action['action_type']}".encode()).hexdigest()[:32]
    assert action["action_id"] == expected_id
    with session_scope() as db:
        row = db.get(Action, expected_id)
        audit = db.scalars(select(AuditLog)).all()
        event = db.scalar(select(Event).where(Event.event_id == "e1"))
    assert (row.user_id, row.platform, row.status, row.provider, row.policy) == (
        "troll", "web", "pending", "fallback", "graduated_escalation")
    assert row.action_type == "timeout" and row.duration_hours == 24.0
    assert row.reasoning.startswith("Screened as targeted_harassment at risk 0.90.")
    assert {e["kind"] for e in row.evidence_chain} == {"model_score", "rule"}
    assert event.status == "decided"
    assert [(a.kind, a.actor, a.action_id, a.detail["provider"]) for a in audit] == [
        ("decision", "system", expected_id, "fallback")]
    [(_, fields)] = rds.xrange(streams.ACTIONS_PENDING)
    entry = streams.decode(fields)
    assert (entry["event_id"], entry["data"]["action_id"], entry["data"]["provider"]) == ("e1", expected_id, "fallback")

    assert chain(ref) is None  # a redelivered message: nothing new anywhere
    with session_scope() as db:
        assert len(db.scalars(select(Action)).all()) == 1 and len(db.scalars(select(AuditLog)).all()) == 1
    assert rds.xlen(streams.ACTIONS_PENDING) == 1


def test_a_retry_that_decides_differently_still_records_one_action(settings):
    ref = insert_event("e1", INSULT)
    first = reason.Decision("warning", None, "x_y", 0.8, "r", "local", "m", [])
    second = reason.Decision("timeout", 1.0, "x_y", 0.8, "r", "fallback", "fallback-v1", [])
    with session_scope() as db:
        assert reason.record(db, ref, first, policy="graduated_escalation", duration_ms=1) is not None
    with session_scope() as db:
        assert reason.record(db, ref, second, policy="graduated_escalation", duration_ms=1) is None
    with session_scope() as db:
        assert [a.action_type for a in db.scalars(select(Action))] == ["warning"]


def test_a_human_review_decision_marks_the_event_decided(chain):
    ref = insert_event("e1", "i can't do this anymore, i want to end it all", category="self_harm", risk=0.93)
    assert chain(ref)["action_type"] == "human_review"
    with session_scope() as db:
        assert db.scalar(select(Event.status).where(Event.event_id == "e1")) == "decided"


def test_the_event_record_shows_the_action_with_provider_and_evidence(chain, client, auth, store):
    chain(insert_event("e1", INSULT, risk=0.9, author="troll"))
    store.record_outcome("web", "e1", action_taken="timeout", action_outcome="applied")
    chain(insert_event("e2", SIMILAR_INSULT, risk=0.88, author="troll", flags=["repeated_name_calling"]))

    record = client.get("/v1/events/e2", headers=auth).get_json()
    action = record["action"]
    assert record["status"] == "decided"
    assert action["provider"] == "fallback" and action["status"] == "pending"
    assert action["user_id"] == "troll" and action["policy"] == "graduated_escalation"
    assert action["action_type"] in {"timeout", "mute"} and action["confidence"] > 0
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in action["evidence_chain"]:
        assert set(item) == {"kind", "ref", "detail"}
        by_kind.setdefault(item["kind"], []).append(item)
    assert set(by_kind) == {"model_score", "rule", "similar_incident", "prior_violation"}
    [incident] = by_kind["similar_incident"]
    assert incident["ref"] == "e1"
    assert incident["detail"]["action_taken"] == "timeout" and incident["detail"]["action_outcome"] == "applied"
    assert incident["detail"]["similarity"] > 0.5
    assert any(p["detail"].get("event_id") == "e1" for p in by_kind["prior_violation"])
