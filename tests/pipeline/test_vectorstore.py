"""The incident store in Qdrant's local mode, with real vectors from the shipped screening model."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from app.config import Settings
from app.vectorstore import COLLECTION, Incident, IncidentStore, StoreUnavailable
from ml.screening import get_embedder

INSULTS = ["you are a worthless idiot and everyone here hates you",
           "you're such a useless moron, nobody in this chat likes you"]
THREATS = ["I know where you live and I will come find you tonight",
           "watch your back, I'm going to hurt you when I find your house"]
SPAM = ["FREE SKINS!!! click my link to claim your free gift card now",
        "get cheap followers now, visit my site for free gift codes"]


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = IncidentStore.open(Settings(QDRANT_PATH=str(tmp_path / "qdrant")), get_embedder().embedding_dim)
    yield opened
    opened.close()


def fill(store: IncidentStore, texts: list[str], categories: list[str]) -> np.ndarray:
    vectors = get_embedder().embed(texts)
    for n, (vector, category) in enumerate(zip(vectors, categories, strict=True)):
        store.upsert(Incident("web", f"e{n}", f"user{n}", "2026-01-01T00:00:00+00:00", 0.9, category, vector))
    return vectors


def test_the_collection_has_the_configured_size_and_cosine_distance(store):
    params = store.client.get_collection(COLLECTION).config.params.vectors
    assert (params.size, params.distance.value) == (384, "Cosine")


def test_similar_messages_retrieve_each_other_and_never_themselves(store):
    texts = INSULTS + THREATS + SPAM
    categories = ["targeted_harassment"] * 2 + ["threat"] * 2 + ["spam"] * 2
    vectors = fill(store, texts, categories)
    for n, vector in enumerate(vectors):
        hits = store.similar(vector, 3, exclude=("web", f"e{n}"))
        assert f"e{n}" not in [h["event_id"] for h in hits]
        assert hits[0]["risk_category"] == categories[n], (texts[n], hits)
        assert hits[0]["similarity"] > hits[1]["similarity"]
        assert set(hits[0]) >= {"event_id", "user_id", "timestamp", "risk_score", "action_taken", "action_outcome"}


def test_outcomes_are_recorded_and_survive_a_refresh_of_the_event(store):
    vectors = fill(store, INSULTS, ["targeted_harassment"] * 2)
    assert store.record_outcome("web", "e0", action_taken="timeout", action_outcome="applied")
    assert not store.record_outcome("web", "never-stored", action_taken="ban", action_outcome="applied")
    store.upsert(Incident("web", "e0", "user0", "2026-01-01T00:00:00+00:00", 0.95, "targeted_harassment", vectors[0]))
    [hit] = store.similar(vectors[1], 1, exclude=("web", "e1"))
    assert (hit["action_taken"], hit["action_outcome"], hit["risk_score"]) == ("timeout", "applied", 0.95)
    store.record_outcome("web", "e0", action_taken="timeout", action_outcome="overturned")
    assert store.similar(vectors[1], 1, exclude=("web", "e1"))[0]["action_outcome"] == "overturned"
    assert store.count() == 2


def test_searches_keep_to_the_vectors_of_one_embedding_model(store):
    vector = [1.0] + [0.0] * 383
    store.upsert(Incident("web", "old", "u1", "2026-01-01T00:00:00+00:00", 0.9, "hate", vector, "encoder-a"))
    store.upsert(Incident("web", "new", "u2", "2026-01-02T00:00:00+00:00", 0.9, "hate", vector, "encoder-b"))
    assert [h["event_id"] for h in store.similar(vector, 5, embedding_model="encoder-b")] == ["new"]
    assert {h["event_id"] for h in store.similar(vector, 5)} == {"old", "new"}
    assert store.similar(vector, 5, embedding_model="encoder-b")[0]["embedding_model"] == "encoder-b"


# qdrant-client leaves the refused open's lock file handle to the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning")
def test_local_mode_persists_and_admits_one_process_at_a_time(tmp_path):
    settings = Settings(QDRANT_PATH=str(tmp_path / "q"))
    first = IncidentStore.open(settings, 384)
    first.upsert(Incident("web", "kept", "u", "2026-01-01T00:00:00+00:00", 0.9, "hate", [1.0] + [0.0] * 383))
    with pytest.raises(StoreUnavailable, match="--concurrency 1"):
        IncidentStore.open(settings, 384)
    gc.collect()
    first.close()
    reopened = IncidentStore.open(settings, 384)
    assert reopened.count() == 1
    reopened.close()


def test_a_collection_of_another_size_is_refused(tmp_path):
    settings = Settings(QDRANT_PATH=str(tmp_path / "q"))
    IncidentStore.open(settings, 384).close()
    with pytest.raises(ValueError, match="1536"):
        IncidentStore.open(settings, 1536)


class _IndexRecorder:
    """A local-mode client that records the payload indexes asked of it (local mode ignores them)."""

    def __init__(self) -> None:
        from qdrant_client import QdrantClient

        self.inner, self.indexed = QdrantClient(location=":memory:"), []

    def create_payload_index(self, collection: str, name: str, field_schema: object) -> None:
        self.indexed.append(name)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_server_collection_left_without_its_indexes_gets_them_on_the_next_open():
    """A first open that timed out (QDRANT_TIMEOUT_S) after Qdrant created the collection must not leave
    it unindexed for good: every open on a server adds the indexes the collection lacks."""
    from qdrant_client import models

    from app.vectorstore import INDEXED

    recorder = _IndexRecorder()
    try:
        # created, but the open that made it gave up before indexing it
        recorder.inner.create_collection(COLLECTION, vectors_config=models.VectorParams(size=384, distance="Cosine"))
        IncidentStore(recorder, 384, server=True).ensure_collection()  # type: ignore[arg-type]
        assert sorted(recorder.indexed) == sorted(INDEXED)
        recorder.indexed.clear()
        IncidentStore(recorder, 384, server=False).ensure_collection()  # type: ignore[arg-type]
        assert recorder.indexed == []  # local mode has no payload indexes
    finally:
        recorder.inner.close()
