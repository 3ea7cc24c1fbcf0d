"""The context stage on real PostgreSQL, Redis and a local Qdrant store with real encoder vectors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.db import session_scope
from app.llm.embeddings import LocalEmbedder, OpenAIEmbedder, cache_key, embedder_for
from app.models import Action, User
from app.models import Session as SessionRow
from app.pipeline import context
from app.sessions import SessionParams, SessionStore, SessionUpdate
from app.vectorstore import IncidentStore
from tests.fakes import openai_server as fake
from tests.fakes.reasoning_inputs import insert_event

INSULT = "you are a worthless idiot and everyone here hates you"
SIMILAR_INSULT = "you're such a useless moron, nobody in this chat likes you"
THREAT = "I know where you live and I will come find you tonight"
SPAM = "FREE SKINS!!! click my link to claim your free gift card now"


@pytest.fixture
def embedder() -> LocalEmbedder:
    return embedder_for(Settings())  # type: ignore[return-value]


@pytest.fixture
def store(tmp_path: Path, embedder: LocalEmbedder) -> Iterator[IncidentStore]:
    opened = IncidentStore.open(Settings(QDRANT_PATH=str(tmp_path / "qdrant")), embedder.dim)
    yield opened
    opened.close()


@pytest.fixture
def gather(settings, rds, store, embedder):  # type: ignore[no-untyped-def]
    def run(ref: dict[str, str], using: Any = None) -> dict[str, Any] | None:
        with session_scope() as db:
            return context.gather(ref, db=db, client=rds, store=store, embedder=using or embedder, top_k=3,
                                  embedding_ttl_s=settings.EMBEDDING_TTL_S)
    return run


def test_a_first_event_on_a_new_deployment_gathers_an_empty_context(gather, rds, store):
    ctx = gather(insert_event("e1", INSULT, author="newbie"))
    assert ctx["precedents"] == []
    assert ctx["author"] | {"prior_actions": None} == {
        "user_id": "newbie", "known": False, "reputation": 0.5, "violation_count": 0, "reversed_count": 0,
        "flagged_count": 0, "message_count": 0, "prior_actions": None}
    assert ctx["session"]["source"] is None and ctx["session"]["escalation_score"] == 0.0
    assert ctx["embedding"] == {"provider": "local", "model": "minilm-v5-embedding", "dim": 384, "reused": False}
    cached = json.loads(rds.get(cache_key("e1")))
    assert len(cached["vector"]) == 384 and cached["model"] == "minilm-v5-embedding"
    assert 7 * 86_400 - 10 < rds.ttl(cache_key("e1")) <= 7 * 86_400
    assert store.count() == 1
    json.dumps(ctx)  # travels as a Celery message


def test_each_event_finds_the_earlier_similar_incidents_with_their_outcomes(gather, store):
    for n, text in enumerate([INSULT, THREAT, SPAM]):
        gather(insert_event(f"e{n}", text, author=f"a{n}"))
    store.record_outcome("web", "e0", action_taken="timeout", action_outcome="applied")
    ctx = gather(insert_event("e9", SIMILAR_INSULT, author="a9"))
    best = ctx["precedents"][0]
    assert (best["event_id"], best["action_taken"], best["action_outcome"]) == ("e0", "timeout", "applied")
    assert best["similarity"] > 0.5 > ctx["precedents"][-1]["similarity"]
    assert "e9" not in [p["event_id"] for p in ctx["precedents"]]
    assert store.count() == 4


def test_an_embedding_computed_by_screening_is_reused(gather, rds, embedder, store):
    gather(insert_event("e0", INSULT))
    gather(insert_event("e1", SPAM))
    # Screening cached a vector for e2: it is used as is (here the spam vector, so spam is nearest).
    rds.set(cache_key("e2"), json.dumps({"model": embedder.model, "vector": embedder.embed([SPAM])[0]}))
    ctx = gather(insert_event("e2", INSULT))
    assert ctx["embedding"]["reused"] is True
    assert ctx["precedents"][0]["event_id"] == "e1"


def test_a_cached_vector_of_another_model_is_not_reused(gather, rds):
    rds.set(cache_key("e1"), json.dumps({"model": "some-other-encoder", "vector": [0.1] * 384}))
    assert gather(insert_event("e1", INSULT))["embedding"]["reused"] is False


def test_the_authors_history_comes_from_postgres(gather):
    with session_scope() as db:
        db.add(User(platform="web", user_id="troll", message_count=40, flagged_count=6, violation_count=1,
                    reputation=0.25))
        history = [("warning", "applied"), ("timeout", "reversed"), ("human_review", "applied"), ("timeout", "dry_run")]
        for n, (kind, status) in enumerate(history):
            db.add(Action(action_id=f"a{n}", event_id=f"old{n}", platform="web", user_id="troll", action_type=kind,
                          reason_code="targeted_harassment", reasoning="", confidence=0.8, evidence_chain=[],
                          policy="graduated_escalation", provider="fallback", status=status))
    author = gather(insert_event("e1", INSULT, author="troll"))["author"]
    assert (author["known"], author["reputation"], author["flagged_count"]) == (True, 0.25, 6)
    assert author["violation_count"] == 2  # the applied warning and the dry-run timeout; not the reversed one
    assert author["reversed_count"] == 1
    assert sorted(a["action_id"] for a in author["prior_actions"]) == ["a0", "a1", "a2", "a3"]


def test_the_live_session_shows_escalation_and_a_pile_on(gather, rds, settings):
    sessions = SessionStore(rds, SessionParams())
    updates = [SessionUpdate(f"s{n}", "web:lobby", 1_700_000_000_000 + n * 5_000, 0.9, True, f"author{n % 3}", "bob")
               for n in range(6)]
    sessions.update(updates, {"web:lobby": ("web", "lobby")})
    summary = gather(insert_event("e1", INSULT, author="author0", target="bob"))["session"]
    assert summary["source"] == "redis"
    assert summary["message_count"] == 6 and summary["participant_count"] == 3
    assert summary["escalation_score"] > 0.5
    assert summary["pile_on"] is True


def test_the_session_snapshot_is_used_once_the_live_copy_expired(gather):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    with session_scope() as db:
        db.add(SessionRow(session_id="web:lobby", platform="web", channel_id="lobby", participants=["troll", "bob"],
                          message_count=9, started_at=now - timedelta(minutes=4), last_event_at=now,
                          escalation_score=0.66, harassment_flags_count=3, temporal_features={}))
    summary = gather(insert_event("e1", INSULT))["session"]
    assert (summary["source"], summary["escalation_score"], summary["participant_count"]) == ("postgres", 0.66, 2)
    assert summary["time_span_minutes"] == pytest.approx(4.0)


@pytest.mark.parametrize("status", ["screened", "decided", "actioned", "received"])
def test_an_event_that_needs_no_decision_is_skipped(gather, store, status):
    assert gather(insert_event("e1", INSULT, status=status)) is None
    assert gather({"platform": "web", "event_id": "missing"}) is None
    assert store.count() == 0


def test_an_event_with_an_action_already_is_skipped(gather):
    ref = insert_event("e1", INSULT)
    with session_scope() as db:
        db.add(Action(action_id="x", event_id="e1", platform="web", user_id="troll", action_type="human_review",
                      reason_code="r", reasoning="", confidence=0.5, evidence_chain=[], policy="p",
                      provider="fallback", status="applied"))
    assert gather(ref) is None


def test_openai_embeddings_have_1536_dimensions(gather, rds, tmp_path):
    with fake.FakeOpenAI(model="text-embedding-3-small") as server:
        settings = Settings(EMBEDDING_PROVIDER="openai", OPENAI_API_KEY=server.api_key, OPENAI_BASE_URL=server.base_url)
        openai_embedder = embedder_for(settings)
        assert isinstance(openai_embedder, OpenAIEmbedder) and openai_embedder.dim == 1536
        big = IncidentStore.open(Settings(QDRANT_PATH=str(tmp_path / "q1536")), openai_embedder.dim)
        try:
            with session_scope() as db:
                ctx = context.gather(insert_event("e1", INSULT), db=db, client=rds, store=big,
                                     embedder=openai_embedder, top_k=3, embedding_ttl_s=60)
            assert ctx["embedding"]["dim"] == 1536 and big.count() == 1
        finally:
            big.close()
        [request] = server.seen
        assert request.path == "/v1/embeddings" and request.headers["authorization"] == f"Bearer {server.api_key}"
        assert request.body["model"] == "text-embedding-3-small" and request.body["dimensions"] == 1536
    assert len(json.loads(rds.get(cache_key("e1")))["vector"]) == 1536
