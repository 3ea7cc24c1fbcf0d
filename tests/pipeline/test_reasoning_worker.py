"""context.gather → reason.decide on a real Celery worker for the ``reasoning`` queue, with a local
OpenAI-compatible server as the LLM and Qdrant in local mode (one worker process holds the store)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import streams
from app.config import Settings
from app.db import session_scope
from app.models import Action, AuditLog
from app.vectorstore import COLLECTION, IncidentStore
from tests.fakes import openai_server as fake
from tests.fakes.qdrant_down import FailingQdrant
from tests.fakes.reasoning_inputs import insert_event
from tests.tasks.test_screen_worker import Worker, wait_for, worker_env  # noqa: F401 - worker_env is a fixture

INSULT = "you are a worthless idiot and everyone here hates you"
SIMILAR_INSULT = "you're such a useless moron, nobody in this chat likes you"
THREAT = "I know where you live and I will come find you tonight"
LLM_TIMEOUT_S, BUDGET_S = 1.0, 3.5
TIMEOUT_ANSWER = {"action_type": "timeout", "duration_hours": 1, "reason_code": "targeted_harassment",
                  "confidence": 0.81, "reasoning": "Direct insults at a participant; similar cases got a timeout."}


@pytest.fixture
def llm() -> Iterator[fake.FakeOpenAI]:
    with fake.FakeOpenAI(model="llama3.1:8b", api_key="ollama",
                         responder=lambda body: json.dumps(TIMEOUT_ANSWER)) as server:
        yield server


def reasoning_env(base: dict[str, str], llm: fake.FakeOpenAI, tmp_path: Path, settings: Settings,
                  **extra: str) -> dict[str, str]:
    from tasks.celery_app import app as celery

    celery.conf.broker_url = settings.broker_url
    return base | {"QDRANT_PATH": str(tmp_path / "qdrant"), "LLM_PROVIDER": "local",
                   "LOCAL_LLM_ENDPOINT": llm.base_url, "LLM_MODEL": llm.model, "OPENAI_API_KEY": llm.api_key,
                   "LLM_TIMEOUT_S": str(LLM_TIMEOUT_S), "REASONING_BUDGET_S": str(BUDGET_S)} | extra


@pytest.fixture
def reasoning_worker(worker_env, llm, tmp_path: Path, settings) -> Iterator[Worker]:  # noqa: F811
    worker = Worker(reasoning_env(worker_env, llm, tmp_path, settings), "reasoning", tmp_path / "reasoning.log").start()
    yield worker
    worker.stop()


def action_of(event_id: str) -> Action | None:
    with session_scope() as db:
        return db.scalar(select(Action).where(Action.event_id == event_id))


def act_messages(rds) -> list[tuple[str, list[Any]]]:  # type: ignore[no-untyped-def]
    """The ``act.apply`` messages waiting on the ``actions`` queue (no act worker runs here)."""
    out = []
    for raw in rds.lrange("actions", 0, -1):
        message = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


def test_risky_events_get_decisions_with_precedents_evidence_and_provider(reasoning_worker, llm, rds, client, auth,
                                                                          tmp_path):
    from tasks.celery_app import enqueue_context, record_outcome

    enqueue_context([insert_event("e0", INSULT, risk=0.9, author="troll")])
    first = wait_for(lambda: action_of("e0"), timeout_s=60, what="the first decision")
    enqueue_context([insert_event("e1", SIMILAR_INSULT, risk=0.88, author="troll")])
    second = wait_for(lambda: action_of("e1"), timeout_s=30, what="the second decision")

    assert (first.provider, first.action_type, first.user_id, first.status) == ("local", "timeout", "troll", "pending")
    record = client.get("/v1/events/e1", headers=auth).get_json()
    assert record["status"] == "decided"
    action = record["action"]
    assert action["provider"] == "local" and action["action_id"] == second.action_id
    kinds = {item["kind"]: item for item in action["evidence_chain"]}
    assert kinds["similar_incident"]["ref"] == "e0"
    assert kinds["similar_incident"]["detail"]["action_taken"] == "timeout"  # the first decision, noted on its point
    assert any(item["ref"] == first.action_id and item["detail"]["event_id"] == "e0"
               for item in action["evidence_chain"] if item["kind"] == "prior_violation")
    assert kinds["llm"]["ref"] == "local:llama3.1:8b" and kinds["llm"]["detail"]["outcome"] == "answered"

    # The prompt for e1 carried its precedent with the decision taken on it.
    request = llm.chat_requests()[-1]
    evidence = request.body["messages"][1]["content"]
    assert '"action_taken": "timeout"' in evidence

    # Handed on to the actions queue and mirrored, after the commit.
    assert sorted(act_messages(rds)) == sorted([("act.apply", [first.action_id]), ("act.apply", [second.action_id])])
    assert [f["event_id"] for _, f in rds.xrange(streams.ACTIONS_PENDING)] == ["e0", "e1"]

    # A slow LLM: retried once, then the fallback decides inside the budget.
    llm.script(fake.slow(5.0), fake.slow(5.0))
    enqueue_context([insert_event("e2", THREAT, risk=0.95, category="threat", author="menace")])
    slow = wait_for(lambda: action_of("e2"), timeout_s=30, what="the fallback decision")
    assert slow.provider == "fallback"
    assert next(e for e in slow.evidence_chain if e["kind"] == "llm")["detail"]["outcome"] == "fell_back"
    with session_scope() as db:
        audit = db.scalar(select(AuditLog).where(AuditLog.event_id == "e2"))
    assert audit.kind == "decision" and audit.detail["duration_ms"] < BUDGET_S * 1000

    # A redelivered context message changes nothing; an appeal's outcome reaches the precedent.
    enqueue_context([{"platform": "web", "event_id": "e0"}])
    record_outcome("web", "e0", "timeout", "overturned")
    wait_for(lambda: rds.llen("reasoning") == 0 and not rds.hlen("unacked"), what="the queue drained")
    reasoning_worker.stop()
    with session_scope() as db:
        assert len(db.scalars(select(Action)).all()) == 3

    store = IncidentStore.open(Settings(QDRANT_PATH=str(tmp_path / "qdrant")), 384)
    try:
        assert store.count() == 3
        payloads = {p.payload["event_id"]: p.payload for p in store.client.scroll(COLLECTION, limit=10)[0]}
        assert (payloads["e0"]["action_taken"], payloads["e0"]["action_outcome"]) == ("timeout", "overturned")
        assert (payloads["e2"]["action_taken"], payloads["e2"]["action_outcome"]) == (slow.action_type, "pending")
    finally:
        store.close()


def test_a_failing_qdrant_leaves_the_llm_its_budget(worker_env, llm, tmp_path, settings):  # noqa: F811
    """bench.faults qdrant-down: outcome updates queued ahead of the decisions (what the actions worker sends
    while Qdrant answers 503) must not each re-open the store (0.1-0.2 s a try, and again on every retry)
    while the ``reason.decide`` messages behind them run out of budget: the store is left alone for
    ``STORE_PAUSE_S`` after a failure, and the LLM decides, without precedents."""
    from tasks.celery_app import enqueue_context, record_outcome
    from tasks.context import STORE_PAUSE_S

    with FailingQdrant() as qdrant:
        env = reasoning_env(worker_env, llm, tmp_path, settings, QDRANT_HOST="127.0.0.1", QDRANT_PORT=str(qdrant.port))
        started = time.monotonic()
        worker = Worker(env, "reasoning", tmp_path / "reasoning.log").start()
        try:
            for n in range(20):
                record_outcome("web", f"earlier{n}", "timeout", "applied")
            enqueue_context([insert_event(f"e{n}", INSULT, risk=0.9, author=f"troll{n}") for n in range(3)])
            actions = [wait_for(lambda n=n: action_of(f"e{n}"), timeout_s=60, what=f"decision e{n}") for n in range(3)]
            elapsed, requests = time.monotonic() - started, qdrant.requests
        finally:
            worker.stop()

    assert [a.provider for a in actions] == ["local"] * 3
    assert all(any(item["ref"] == "unavailable" for item in a.evidence_chain) for a in actions)
    # Each try to open the store is two requests (the version check and the collection check): at most one
    # try per pause, where every outcome update, retry and decision used to try again.
    assert 0 < requests <= 2 * (1 + elapsed // STORE_PAUSE_S)


def test_a_hung_qdrant_leaves_the_llm_its_budget(worker_env, llm, tmp_path, settings):  # noqa: F811
    """bench.faults qdrant-hang: a Qdrant that accepts connections and never answers used to cost the gather
    that tried it the client's 5 s timeout, the whole reasoning budget (3.5 s here), so that decision fell back
    (and the one process was blocked meanwhile). With QDRANT_TIMEOUT_S it costs 1 s and the LLM still decides."""
    from tasks.celery_app import enqueue_context
    from tasks.context import STORE_PAUSE_S

    with FailingQdrant(hang=True) as qdrant:
        env = reasoning_env(worker_env, llm, tmp_path, settings, QDRANT_HOST="127.0.0.1", QDRANT_PORT=str(qdrant.port),
                            QDRANT_TIMEOUT_S="1")
        worker = Worker(env, "reasoning", tmp_path / "reasoning.log").start()
        try:
            # The worker's first try to open the store (as it starts) hangs, fails after 1 s and pauses the
            # store; once the pause is over, the next gather tries again, and waits out the timeout itself.
            wait_for(lambda: qdrant.requests >= 2 and not qdrant.hanging, timeout_s=60,
                     what="the worker's first try to open the store, given up")
            time.sleep(STORE_PAUSE_S + 0.5)
            tried = qdrant.requests
            enqueue_context([insert_event(f"e{n}", INSULT, risk=0.9, author=f"troll{n}") for n in range(3)])
            actions = [wait_for(lambda n=n: action_of(f"e{n}"), timeout_s=30, what=f"decision e{n}") for n in range(3)]
            requests = qdrant.requests
        finally:
            worker.stop()

    assert [a.provider for a in actions] == ["local"] * 3
    assert all(any(item["ref"] == "unavailable" for item in a.evidence_chain) for a in actions)
    assert requests - tried == 2  # one more try (the version check and the collection check), by e0's gather
    with session_scope() as db:
        took = {row.event_id: row.detail["duration_ms"] / 1000
                for row in db.scalars(select(AuditLog).where(AuditLog.kind == "decision"))}
    assert 0.9 <= took["e0"] < BUDGET_S and took["e1"] < BUDGET_S and took["e2"] < BUDGET_S, took
