"""Past incidents in Qdrant (collection ``harassment_events``), the precedents of every decision.

One point per risky event, id = a UUID derived from (platform, event_id) so an upsert is
idempotent, with the design's payload ``event_id, user_id, timestamp, risk_score, action_taken,
action_outcome`` plus ``platform`` and ``risk_category`` (filtering and the precision benchmark).
``action_taken`` / ``action_outcome`` start empty and are updated as the action is decided,
applied, reversed or overturned (``record_outcome``), so precedents carry what really happened.

The same code talks to a Qdrant server (``QDRANT_HOST``, docker compose) or to qdrant-client's
local mode under ``QDRANT_PATH`` (``:memory:`` for a throwaway store). Local mode holds an
exclusive file lock on its folder: exactly one process may open it. The embedded default therefore
runs the reasoning worker as a single process, and every write to the store (including outcome
updates coming from the actions worker or the admin UI) travels through the ``reasoning`` queue as
``context.record_outcome``. Local mode also ignores payload indexes (and warns), so they are only
created on a server.

Every request to a server is bounded by ``QDRANT_TIMEOUT_S`` (connect and read; 1 s by default),
well inside the reasoning budget: a Qdrant that accepts connections and never answers (hung,
overloaded, a network black hole) fails the call after that long, as a refused connection fails at
once, and the reasoning worker then leaves the store alone for a while (tasks/context.py). Writes
get the same bound as searches: on the single reasoning process any wait holds up the decisions
queued behind it, and a write that times out is tried again later (``context.remember``,
``context.record_outcome``), harmlessly if it was applied after all (upserts and payload updates
are idempotent).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models

from app.config import Settings

COLLECTION = "harassment_events"
POINT_NAMESPACE = uuid.UUID("6f1c2a4e-2b7e-4c1e-9a55-0d3f6c1b8e21")
INDEXED = {
    "event_id": models.PayloadSchemaType.KEYWORD,
    "platform": models.PayloadSchemaType.KEYWORD,
    "user_id": models.PayloadSchemaType.KEYWORD,
    "action_taken": models.PayloadSchemaType.KEYWORD,
    "action_outcome": models.PayloadSchemaType.KEYWORD,
    "timestamp": models.PayloadSchemaType.DATETIME,
    "embedding_model": models.PayloadSchemaType.KEYWORD,
}


class StoreUnavailable(RuntimeError):
    """The local store's folder is held by another process (a second reasoning worker process)."""


def point_id(platform: str, event_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{platform}:{event_id}"))


def server_client(settings: Settings) -> QdrantClient:
    """A client of the Qdrant server at ``QDRANT_HOST``. qdrant-client gives its REST client (httpx)
    ``timeout`` as the connect, read, write and pool timeout of every request, rounded up to whole
    seconds."""
    return QdrantClient(host=settings.QDRANT_HOST, port=settings.QDRANT_PORT, timeout=settings.QDRANT_TIMEOUT_S)


@dataclass(frozen=True)
class Incident:
    """What gets stored for one risky event."""

    platform: str
    event_id: str
    user_id: str
    timestamp: str  # ISO 8601, the event's own time
    risk_score: float
    risk_category: str | None
    vector: Sequence[float]
    embedding_model: str | None = None  # the vector space; searches only compare vectors of one model


class IncidentStore:
    def __init__(self, client: QdrantClient, dim: int, *, server: bool) -> None:
        self.client, self.dim, self.server = client, dim, server

    @classmethod
    def open(cls, settings: Settings, dim: int) -> IncidentStore:
        if settings.QDRANT_HOST:
            client = server_client(settings)
        elif settings.QDRANT_PATH == ":memory:":
            client = QdrantClient(location=":memory:")
        else:
            Path(settings.QDRANT_PATH).mkdir(parents=True, exist_ok=True)
            try:
                client = QdrantClient(path=settings.QDRANT_PATH)
            except RuntimeError as exc:
                raise StoreUnavailable(
                    f"{exc} Local mode allows one process: run the reasoning worker with --concurrency 1, "
                    "or set QDRANT_HOST to use a Qdrant server.") from exc
        store = cls(client, dim, server=bool(settings.QDRANT_HOST))
        try:
            store.ensure_collection()
        except BaseException:  # unreachable, failing or the wrong size: the caller gets no client to close
            client.close()
            raise
        return store

    def ensure_collection(self) -> None:
        indexed: set[str] = set()
        if self.client.collection_exists(COLLECTION):
            info = self.client.get_collection(COLLECTION)
            size = info.config.params.vectors.size  # type: ignore[union-attr]
            if size != self.dim:
                raise ValueError(f"collection {COLLECTION} holds {size}-dim vectors but the embedder makes "
                                 f"{self.dim}: a changed EMBEDDING_PROVIDER needs a new collection")
            indexed = set(info.payload_schema or {})
        else:
            self.client.create_collection(
                COLLECTION, vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.COSINE))
        if self.server:
            # Also on an existing collection: an open that timed out after creating it (QDRANT_TIMEOUT_S)
            # must not leave it without its indexes for good.
            for name, schema in INDEXED.items():
                if name not in indexed:
                    self.client.create_payload_index(COLLECTION, name, field_schema=schema)

    def upsert(self, incident: Incident) -> None:
        """Store or refresh the event; an outcome already recorded for it is kept."""
        pid = point_id(incident.platform, incident.event_id)
        existing = self.client.retrieve(COLLECTION, [pid], with_payload=True, with_vectors=False)
        previous = (existing[0].payload or {}) if existing else {}
        payload = {
            "event_id": incident.event_id, "platform": incident.platform, "user_id": incident.user_id,
            "timestamp": incident.timestamp, "risk_score": round(float(incident.risk_score), 4),
            "risk_category": incident.risk_category, "embedding_model": incident.embedding_model,
            "action_taken": previous.get("action_taken"), "action_outcome": previous.get("action_outcome"),
        }
        self.client.upsert(COLLECTION, [models.PointStruct(id=pid, vector=list(map(float, incident.vector)),
                                                           payload=payload)])

    def similar(self, vector: Sequence[float], k: int, *, exclude: tuple[str, str] | None = None,
                platform: str | None = None, embedding_model: str | None = None) -> list[dict[str, Any]]:
        """The k nearest past incidents, best first: their payload plus ``similarity`` (cosine).
        ``embedding_model`` keeps to vectors of that model (a changed screening model embeds in
        another space of the same size; its old points are not comparable)."""
        must_not: list[Any] = [models.HasIdCondition(has_id=[point_id(*exclude)])] if exclude else []
        must: list[Any] = [models.FieldCondition(key=key, match=models.MatchValue(value=value))
                           for key, value in (("platform", platform), ("embedding_model", embedding_model)) if value]
        hits = self.client.query_points(COLLECTION, query=list(map(float, vector)), limit=k, with_payload=True,
                                        query_filter=models.Filter(must=must, must_not=must_not)).points
        return [dict(hit.payload or {}) | {"similarity": round(float(hit.score), 4)} for hit in hits]

    def record_outcome(self, platform: str, event_id: str, *, action_taken: str | None,
                       action_outcome: str) -> bool:
        """Set what happened to the event's action; False when the event is not in the store."""
        pid = point_id(platform, event_id)
        if not self.client.retrieve(COLLECTION, [pid], with_payload=False, with_vectors=False):
            return False
        self.client.set_payload(COLLECTION, {"action_taken": action_taken, "action_outcome": action_outcome},
                                points=[pid])
        return True

    def count(self) -> int:
        return self.client.count(COLLECTION, exact=True).count

    def close(self) -> None:
        self.client.close()
