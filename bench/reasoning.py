"""Context + reasoning latency (fallback, and an LLM server answering in 1-3 s) and retrieval quality.

    python -m bench.reasoning                       # embedded PostgreSQL + Redis unless DATABASE_URL/REDIS_URL
    python -m bench.reasoning --events 60 --llm-events 30 --per-category 100

Latency: each event is screened-risky in PostgreSQL, then timed from the start of context gathering
(embedding, Qdrant search + upsert, author history, session) through the decision to the committed
action row and its ``events:actions_pending`` entry: the work of ``context.gather`` + ``reason.decide``
in one process, without the two Celery hops (~2.5 ms each on this machine). The incident store
(local mode) holds the labelled history below, so searches cost what they would with history.

Retrieval: labelled messages from ml/data (the screening categories, split by conversation/author
group so no query shares a thread with the history) are embedded with the shipped screening model (minilm-v5) and
stored; for each held-out query, precision@k is the share of its k nearest stored incidents with
the same category. "chance" is what neighbours drawn at random would score.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ("hate", "targeted_harassment", "sexual_harassment", "profanity")
MESSAGES = ["you are a worthless idiot, nobody wants you here", "shut up and leave, loser",
            "go back to where you came from", "I will find you and make you regret it",
            "nobody asked for your opinion, clown", "you people ruin every game"]


def labelled(per_category: int, seed: int = 7) -> tuple[list[Any], list[Any]]:
    """(history, queries): per category, 3/4 of the sample from train groups, 1/4 from held-out groups."""
    from ml.training.datasets import load_all, split_of

    rng = random.Random(seed)
    rows = [r for r in load_all() if r.label in CATEGORIES and 12 <= len(r.text) <= 300]
    rng.shuffle(rows)
    history, queries = [], []
    for category in CATEGORIES:
        mine = [r for r in rows if r.label == category]
        history += [r for r in mine if split_of(r.group) == "train"][: per_category * 3 // 4]
        queries += [r for r in mine if split_of(r.group) == "heldout"][: per_category // 4]
    return history, queries


def retrieval(store: Any, encoder: Any, history: list[Any], queries: list[Any], ks: tuple[int, ...]
              ) -> dict[str, Any]:
    from app.vectorstore import Incident

    vectors = encoder.embed([r.text for r in history])
    for n, (row, vector) in enumerate(zip(history, vectors, strict=True)):
        store.upsert(Incident("bench", f"h{n}", row.group[:100], "2026-01-01T00:00:00+00:00", 0.9, row.label, vector))
    hits: dict[int, list[float]] = defaultdict(list)
    per_category: dict[str, list[float]] = defaultdict(list)
    for row, vector in zip(queries, encoder.embed([r.text for r in queries]), strict=True):
        neighbours = store.similar(vector, max(ks))
        for k in ks:
            share = sum(n["risk_category"] == row.label for n in neighbours[:k]) / k
            hits[k].append(share)
            if k == max(ks):
                per_category[row.label].append(share)
    counts = Counter(r.label for r in history)
    chance = sum((c / len(history)) ** 2 for c in counts.values())
    return {"history": len(history), "queries": len(queries), "history_by_category": dict(counts),
            "precision": {f"p@{k}": round(statistics.mean(v), 3) for k, v in hits.items()},
            f"precision@{max(ks)}_by_category": {c: round(statistics.mean(v), 3) for c, v in per_category.items()},
            "chance": round(chance, 3)}


def latency(n_events: int, provider: Any, settings: Any, store: Any, tag: str) -> dict[str, Any]:
    from app.db import session_scope
    from app.llm.embeddings import embedder_for
    from app.pipeline import context, reason
    from app.redis_client import get_redis
    from tests.fakes.reasoning_inputs import insert_event

    client, embedder = get_redis(), embedder_for(settings)
    durations, providers = [], Counter()
    for n in range(n_events):
        ref = insert_event(f"{tag}-{n}", f"{random.choice(MESSAGES)} #{n}", risk=random.uniform(0.7, 0.99),
                           category=random.choice(CATEGORIES), author=f"author{n % 7}", target=f"target{n % 3}",
                           channel=f"room{n % 4}")
        started_ms = time.time() * 1000
        with session_scope() as db:
            gathered = context.gather(ref, db=db, client=client, store=store, embedder=embedder,
                                      top_k=settings.REASONING_TOP_K, embedding_ttl_s=settings.EMBEDDING_TTL_S)
        with session_scope() as db:
            event = reason.load_for_decision(db, ref)
        decision = reason.decide(event, gathered, provider=provider, policy=settings.ACTION_POLICY,
                                 llm_timeout_s=settings.LLM_TIMEOUT_S,
                                 deadline=reason.deadline_for(started_ms, settings.REASONING_BUDGET_S))
        with session_scope() as db:
            action = reason.record(db, ref, decision, policy=settings.ACTION_POLICY,
                                   duration_ms=time.time() * 1000 - started_ms)
        reason.publish(client, action, settings.STREAM_MAXLEN)
        durations.append(time.time() * 1000 - started_ms)
        providers[decision.provider] += 1
    durations.sort()
    return {"events": n_events, "p50_ms": round(statistics.median(durations), 1),
            "p95_ms": round(durations[math.ceil(len(durations) * 0.95) - 1], 1),
            "max_ms": round(durations[-1], 1), "providers": dict(providers)}


def services(workdir: Path) -> tuple[dict[str, str], list[Any]]:
    from app.embedded import EmbeddedPostgres, EmbeddedRedis

    env, started = dict(os.environ), []
    if not env.get("DATABASE_URL"):
        started.append(EmbeddedPostgres(workdir / "pg").start())
        env["DATABASE_URL"] = started[-1].url
    if not env.get("REDIS_URL"):
        started.append(EmbeddedRedis(workdir / "redis").start())
        env["REDIS_URL"] = started[-1].url
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    return env, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60, help="events timed with the fallback")
    parser.add_argument("--llm-events", type=int, default=30, help="events timed with the 1-3 s LLM server")
    parser.add_argument("--per-category", type=int, default=100, help="labelled messages per category")
    args = parser.parse_args()

    from app.config import Settings, set_settings
    from app.llm.openai_compat import OpenAICompatible
    from app.vectorstore import IncidentStore
    from ml.screening import get_embedder
    from tests.fakes.openai_server import FakeOpenAI

    random.seed(11)
    with tempfile.TemporaryDirectory(prefix="bench-reasoning-") as tmp:
        env, started = services(Path(tmp))
        try:
            settings = Settings.from_mapping({"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": env["REDIS_URL"],
                                              "QDRANT_PATH": str(Path(tmp) / "qdrant")})
            set_settings(settings)
            store = IncidentStore.open(settings, get_embedder().embedding_dim)
            history, queries = labelled(args.per_category)
            results: dict[str, Any] = {"retrieval": retrieval(store, get_embedder(), history, queries, (1, 5))}
            results["fallback"] = latency(args.events, None, settings, store, "fb")
            with FakeOpenAI(delay=lambda: random.uniform(1.0, 3.0)) as server:
                provider = OpenAICompatible("local", server.model, server.base_url, server.api_key)
                results["local_llm_1_3s"] = latency(args.llm_events, provider, settings, store, "llm")
            results["settings"] = {"LLM_TIMEOUT_S": settings.LLM_TIMEOUT_S,
                                   "REASONING_BUDGET_S": settings.REASONING_BUDGET_S,
                                   "REASONING_TOP_K": settings.REASONING_TOP_K,
                                   "encoder": get_embedder().embedding_model}
            store.close()
        finally:
            for service in reversed(started):
                service.stop()
    out = ROOT / "bench" / "results" / "reasoning.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
