"""Qdrant unreachable or failing: the context stage decides without precedents instead of holding
the event (or dead-lettering it after its retries), says so in the evidence, and stores the event
as a precedent once the store is back. Real PostgreSQL and Redis; Qdrant a failing (or hung) HTTP server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from qdrant_client.qdrant_remote import QdrantRemote

from app import config
from app.config import Settings
from app.db import session_scope
from app.llm.embeddings import LocalEmbedder, embedder_for
from app.pipeline import context, reason
from app.vectorstore import IncidentStore, StoreUnavailable, point_id, server_client
from tests.fakes.qdrant_down import BlackHole, FailingQdrant, free_port
from tests.fakes.reasoning_inputs import insert_event

INSULT = "you are a worthless idiot and everyone here hates you"


@pytest.fixture
def embedder() -> LocalEmbedder:
    return embedder_for(Settings())  # type: ignore[return-value]


@pytest.fixture
def local_store(tmp_path: Path, embedder: LocalEmbedder) -> Iterator[IncidentStore]:
    opened = IncidentStore.open(Settings(QDRANT_PATH=str(tmp_path / "qdrant")), embedder.dim)
    yield opened
    opened.close()


def server_store(port: int, dim: int) -> IncidentStore:
    """What ``IncidentStore.open`` builds for QDRANT_HOST, without its collection check (that would fail)."""
    return IncidentStore(QdrantClient(host="127.0.0.1", port=port, timeout=2, check_compatibility=False), dim,
                         server=True)


def gather(ref: dict[str, str], store: IncidentStore | None, rds: Any, embedder: LocalEmbedder) -> dict[str, Any]:
    with session_scope() as db:
        gathered = context.gather(ref, db=db, client=rds, store=store, embedder=embedder, top_k=3,
                                  embedding_ttl_s=60)
    assert gathered is not None
    return gathered


def decide_and_record(ref: dict[str, str], gathered: dict[str, Any]) -> dict[str, Any]:
    with session_scope() as db:
        event = reason.load_for_decision(db, ref)
    decision = reason.decide(event, gathered, provider=None, policy="graduated_escalation", llm_timeout_s=1.0,
                             deadline=time.monotonic() + 3)
    with session_scope() as db:
        action = reason.record(db, ref, decision, policy="graduated_escalation", duration_ms=1.0)
    assert action is not None
    return action


@pytest.mark.parametrize("failure", ["503", "refused", "not_opened"])
def test_a_failing_store_gives_a_context_without_precedents_and_a_decision(failure, settings, rds, embedder):
    ref = insert_event("e1", INSULT, risk=0.9, author="troll")
    if failure == "503":
        with FailingQdrant() as qdrant:
            gathered = gather(ref, server_store(qdrant.port, embedder.dim), rds, embedder)
        assert qdrant.requests >= 1
        assert "503" in gathered["precedents_unavailable"]
    elif failure == "refused":
        gathered = gather(ref, server_store(free_port(), embedder.dim), rds, embedder)
        assert gathered["precedents_unavailable"].startswith("ResponseHandlingException")
    else:
        gathered = gather(ref, None, rds, embedder)
        assert gathered["precedents_unavailable"] == context.STORE_UNAVAILABLE
    assert gathered["precedents"] == [] and gathered["author"]["user_id"] == "troll"
    assert gathered["embedding"]["reused"] is False and rds.exists("embedding:e1")

    action = decide_and_record(ref, gathered)
    assert action["provider"] == "fallback" and action["action_type"] != "none"
    [note] = [link for link in action["evidence_chain"] if link["ref"] == "unavailable"]
    assert note["kind"] == "similar_incident" and note["detail"]["precedents"] == 0


def test_a_working_store_says_nothing_about_availability(local_store, rds, embedder):
    gathered = gather(insert_event("e1", INSULT), local_store, rds, embedder)
    assert "precedents_unavailable" not in gathered and local_store.count() == 1


def test_remember_stores_the_event_with_its_decision_once_the_store_is_back(local_store, rds, embedder):
    ref = insert_event("e1", INSULT, risk=0.9, author="troll")
    action = decide_and_record(ref, gather(ref, None, rds, embedder))
    assert local_store.count() == 0

    with session_scope() as db:
        assert context.remember(ref, db=db, client=rds, store=local_store, embedder=embedder, embedding_ttl_s=60)
    [point] = local_store.client.retrieve("harassment_events", [point_id("web", "e1")], with_payload=True)
    assert point.payload["action_taken"] == action["action_type"] and point.payload["action_outcome"] == "pending"
    assert point.payload["embedding_model"] == embedder.model

    later = gather(insert_event("e2", INSULT, risk=0.9, author="other"), local_store, rds, embedder)
    assert [p["event_id"] for p in later["precedents"]] == ["e1"]
    assert later["precedents"][0]["action_taken"] == action["action_type"]


def test_remember_of_a_vanished_event_is_a_no_op(local_store, rds, embedder):
    with session_scope() as db:
        assert not context.remember({"platform": "web", "event_id": "gone"}, db=db, client=rds, store=local_store,
                                    embedder=embedder, embedding_ttl_s=60)


def test_the_task_leaves_a_failing_store_alone_for_a_while(monkeypatch):
    import tasks.context as task

    calls = []

    def broken() -> IncidentStore:
        calls.append(1)
        raise RuntimeError("Storage folder is already accessed by another instance of Qdrant client")

    monkeypatch.setattr(task, "get_store", broken)
    monkeypatch.setattr(task, "_store_paused_until", 0.0)
    assert task.usable_store() is None and task.usable_store() is None
    assert len(calls) == 1  # the second call did not wait on the broken store again
    monkeypatch.setattr(task, "_store_paused_until", 0.0)
    assert task.usable_store() is None and len(calls) == 2


def test_outcome_updates_decision_notes_and_remember_leave_a_failing_store_alone(monkeypatch, settings, embedder):
    """The single reasoning process must not spend its time on a store that failed moments ago: in the
    qdrant-down fault, outcome updates (and their retries) re-opening it, 0.1-0.2 s each, held the
    ``reason.decide`` messages queued behind them past their budget."""
    import tasks.context as task
    import tasks.reason as reason_task

    ref = {"platform": "web", "event_id": "e1"}
    outcome = ref | {"action_taken": "timeout", "action_outcome": "applied"}
    monkeypatch.setattr(task, "_store_paused_until", 0.0)
    with FailingQdrant() as qdrant:
        opened = server_store(qdrant.port, embedder.dim)  # opened while Qdrant was fine; failing since
        monkeypatch.setattr(task, "get_store", lambda: opened)
        try:
            with pytest.raises(UnexpectedResponse):
                task.record_outcome(outcome)  # called directly, a task raises what it would retry on
            assert qdrant.requests == 1 and task._store_paused_until > time.monotonic()

            with pytest.raises(StoreUnavailable):
                task.record_outcome(outcome)
            reason_task._note_precedent(ref, "timeout")  # the decision stands; nothing raised
            with pytest.raises(StoreUnavailable):
                task.remember(ref)
            assert qdrant.requests == 1  # none of them touched the store while it is paused

            monkeypatch.setattr(task, "_store_paused_until", 0.0)  # the pause is over: tried again, paused again
            reason_task._note_precedent(ref, "timeout")
            assert qdrant.requests == 2 and task._store_paused_until > time.monotonic()
            monkeypatch.setattr(task, "_store_paused_until", 0.0)
            with pytest.raises(UnexpectedResponse):
                task.remember(insert_event("e1", INSULT))
            assert qdrant.requests == 3 and task._store_paused_until > time.monotonic()
        finally:
            opened.close()


def test_a_store_that_cannot_be_opened_is_not_opened_again_for_every_outcome_update(monkeypatch):
    import tasks.context as task
    import tasks.reason as reason_task

    opens = []

    def broken() -> IncidentStore:
        opens.append(1)
        raise UnexpectedResponse(503, "Service Unavailable", b"", None)  # type: ignore[arg-type]

    monkeypatch.setattr(task, "get_store", broken)
    monkeypatch.setattr(task, "_store_paused_until", 0.0)
    for _ in range(3):
        with pytest.raises(StoreUnavailable):
            task.record_outcome({"platform": "web", "event_id": "e1", "action_outcome": "applied"})
        reason_task._note_precedent({"platform": "web", "event_id": "e1"}, "warning")
    assert len(opens) == 1


def test_a_store_skipped_while_paused_does_not_prolong_the_pause(monkeypatch, settings, embedder):
    """Only a failure pauses the store: events decided without it meanwhile (a steady flow of them while
    Qdrant is down) must not push the pause on and on, or the worker never tries the store again."""
    import tasks.context as task

    sent: list[str] = []
    monkeypatch.setattr(task.app, "send_task", lambda name, **_: sent.append(name))
    paused_until = time.monotonic() + 5
    monkeypatch.setattr(task, "_store_paused_until", paused_until)
    assert task.gather(insert_event("e1", INSULT)) == "gathered_without_precedents"
    assert task._store_paused_until == paused_until
    assert sent == ["reason.decide", "context.remember"]

    monkeypatch.setattr(task, "_store_paused_until", 0.0)
    with FailingQdrant() as qdrant:
        opened = server_store(qdrant.port, embedder.dim)
        monkeypatch.setattr(task, "get_store", lambda: opened)
        try:
            assert task.gather(insert_event("e2", INSULT)) == "gathered_without_precedents"
        finally:
            opened.close()
    assert qdrant.requests == 1 and task._store_paused_until > paused_until  # it failed: paused (again)


@pytest.fixture
def no_version_check(monkeypatch):
    """qdrant-client checks the server's version in a thread of its own when a client is built; against a
    hung Qdrant that thread gives up after the timeout too and warns, maybe after the test has ended, and
    warnings are errors here."""
    monkeypatch.setattr(QdrantRemote, "_check_compatibility", staticmethod(lambda *_: None))


@pytest.mark.parametrize("fault", ["hang", "black_hole"])
def test_a_hung_qdrant_costs_an_open_the_configured_timeout(fault, no_version_check, embedder):
    """Connect (a black hole: the connection is never accepted) and read (accepted, never answered) are
    both bounded by QDRANT_TIMEOUT_S, and the failed open leaves no connection behind."""
    with (FailingQdrant(hang=True) if fault == "hang" else BlackHole()) as qdrant:
        settings = Settings(QDRANT_HOST="127.0.0.1", QDRANT_PORT=qdrant.port, QDRANT_TIMEOUT_S=1)
        started = time.monotonic()
        with pytest.raises(ResponseHandlingException) as failed:
            IncidentStore.open(settings, embedder.dim)
        took = time.monotonic() - started
        assert type(failed.value.source).__name__ == ("ReadTimeout" if fault == "hang" else "ConnectTimeout")
        if fault == "hang":
            assert qdrant.requests == 1  # the collection check, given up after the timeout
            deadline = time.monotonic() + 2
            while qdrant.hanging and time.monotonic() < deadline:  # the client closed its end
                time.sleep(0.02)
            assert qdrant.hanging == 0
    assert 0.9 <= took < 2.5


@pytest.mark.parametrize("when", ["opened_before", "opening"])
def test_a_hung_store_costs_one_gather_its_timeout_then_is_left_alone(when, monkeypatch, settings, embedder,
                                                                       no_version_check):
    """A Qdrant that accepts connections and never answers costs the gather that finds it
    QDRANT_TIMEOUT_S (1 s; it was 5 s, the whole reasoning budget, on every try), whether the store was
    opened before it hung or is being opened; the gathers after it, within STORE_PAUSE_S, do not wait."""
    import tasks.context as task

    embedder.embed(["warm up"])  # the model is loaded before anything is timed
    sent: list[str] = []
    monkeypatch.setattr(task.app, "send_task", lambda name, **_: sent.append(name))
    monkeypatch.setattr(task, "_store_paused_until", 0.0)
    opened: list[IncidentStore] = []
    with FailingQdrant(hang=True) as qdrant:
        hung = Settings.from_mapping({"DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL,
                                      "QDRANT_HOST": "127.0.0.1", "QDRANT_PORT": str(qdrant.port)})
        assert hung.QDRANT_TIMEOUT_S == 1  # the default
        monkeypatch.setattr(config, "_current", hung)
        if when == "opened_before":  # opened while Qdrant was fine (what open builds, without its checks)
            opened.append(IncidentStore(server_client(hung), embedder.dim, server=True))
            monkeypatch.setattr(task, "get_store", lambda: opened[0])
        else:  # get_store, without its cache (a failed open is not cached)
            monkeypatch.setattr(task, "get_store", lambda: IncidentStore.open(task.get_settings(), embedder.dim))
        try:
            durations = []
            for n in range(3):
                ref = insert_event(f"e{n}", INSULT, risk=0.9)
                started = time.monotonic()
                assert task.gather(ref) == "gathered_without_precedents"
                durations.append(time.monotonic() - started)
                if n == 0:
                    assert qdrant.requests == 1 and task._store_paused_until > time.monotonic()
        finally:
            for store in opened:
                store.close()
    assert qdrant.requests == 1  # the gathers after the first did not try the store again
    assert 0.9 <= durations[0] < 2.5 and max(durations[1:]) < 0.9, durations  # one wait, then none
    assert sent == ["reason.decide", "context.remember"] * 3
