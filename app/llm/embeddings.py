"""Sentence embedders for similar-incident retrieval, and the Redis cache of each event's embedding.

``EMBEDDING_PROVIDER=local`` (default): the embeddings of the screening model (minilm-v5, 384 dims;
with ngram-v1, which makes none, minilm-v5 is loaded for them), so the vectors screening cached are
reused as they are.
``EMBEDDING_PROVIDER=openai``: OpenAI embeddings (``EMBEDDING_MODEL``, 1536 dims) via the openai client.

Cache format of ``embedding:{event_id}`` (7 days): a JSON object
``{"model": "<embedder model>", "dim": 384, "vector": [0.0123, ...]}`` (floats rounded to 6 places).
JSON rather than float32 bytes because the project's Redis clients decode responses as text. A
reader also accepts a bare JSON list. A cached vector is reused only if its dimension matches and,
when it names a model, that model is the configured one (vectors of two models are not comparable).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import redis

from app.config import Settings

OPENAI_DIM = 1536
EMBED_TIMEOUT_S = 2.0


class Embedder(Protocol):
    name: str
    model: str
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class LocalEmbedder:
    name = "local"

    def __init__(self) -> None:
        from ml.screening import get_embedder  # onnxruntime session: loaded once per process, on first use

        self.screener = get_embedder()
        self.model, self.dim = str(self.screener.embedding_model), int(self.screener.embedding_dim or 0)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [list(map(float, row)) for row in self.screener.embed(texts)]


class OpenAIEmbedder:
    name = "openai"

    def __init__(self, model: str, api_key: str, base_url: str | None) -> None:
        from openai import OpenAI

        self.model, self.dim = model, OPENAI_DIM
        self.client = OpenAI(api_key=api_key, base_url=base_url, max_retries=1, timeout=EMBED_TIMEOUT_S)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": OPENAI_DIM} if self.model.startswith("text-embedding-3") else {}
        response = self.client.embeddings.create(model=self.model, input=list(texts), encoding_format="float",
                                                 **extra)
        vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        if len(vectors) != len(texts) or any(len(v) != self.dim for v in vectors):
            raise ValueError(f"{self.model} returned {len(vectors)} vectors, expected {len(texts)} of {self.dim}")
        return vectors


def embedder_for(settings: Settings) -> Embedder:
    if settings.EMBEDDING_PROVIDER == "openai":
        return _openai(settings.EMBEDDING_MODEL, settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL or None)
    if settings.EMBEDDING_PROVIDER != "local":
        raise ValueError(f"EMBEDDING_PROVIDER {settings.EMBEDDING_PROVIDER!r}: expected local or openai")
    return _local()


@lru_cache(maxsize=1)
def _local() -> LocalEmbedder:
    return LocalEmbedder()


@lru_cache(maxsize=4)
def _openai(model: str, api_key: str, base_url: str | None) -> OpenAIEmbedder:
    return OpenAIEmbedder(model, api_key, base_url)


def cache_key(event_id: str) -> str:
    return f"embedding:{event_id}"


def cached(client: redis.Redis, event_id: str, embedder: Embedder) -> list[float] | None:
    raw = client.get(cache_key(event_id))
    if not raw:
        return None
    value = json.loads(raw)
    if isinstance(value, dict):
        if value.get("model") not in (None, embedder.model):
            return None
        value = value.get("vector")
    if not isinstance(value, list) or len(value) != embedder.dim:
        return None
    return [float(x) for x in value]


def store(client: redis.Redis, event_id: str, embedder: Embedder, vector: Sequence[float], ttl_s: int) -> None:
    payload = {"model": embedder.model, "dim": embedder.dim, "vector": [round(float(x), 6) for x in vector]}
    client.set(cache_key(event_id), json.dumps(payload, separators=(",", ":")), ex=ttl_s)
