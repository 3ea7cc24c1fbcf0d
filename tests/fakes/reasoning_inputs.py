"""What the context stage hands the reasoning stage, built by hand for tests of the reasoner alone."""

from __future__ import annotations

from typing import Any


def event(content: str = "you are a pathetic loser, nobody here wants you", *, risk: float = 0.82,
          category: str = "targeted_harassment", confidence: float = 0.8, flags: list[str] | None = None,
          author: str = "troll") -> dict[str, Any]:
    return {"platform": "web", "event_id": "evt-r1", "author_id": author, "user_id": "bob",
            "session_id": "web:lobby", "risk_score": risk, "risk_category": category, "confidence": confidence,
            "flags": flags or [], "model_version": "ngram-v1", "author_reputation": None, "content": content}


def precedent(n: int, similarity: float, action: str | None, outcome: str | None = "applied",
              category: str = "targeted_harassment") -> dict[str, Any]:
    return {"event_id": f"past-{n}", "platform": "web", "similarity": similarity, "risk_score": 0.85,
            "risk_category": category, "action_taken": action, "action_outcome": outcome,
            "timestamp": "2026-01-01T00:00:00+00:00"}


def context(*, precedents: list[dict[str, Any]] | None = None, violations: int = 0, reversed_count: int = 0,
            reputation: float = 0.5, escalation: float = 0.0, pile_on: bool = False) -> dict[str, Any]:
    return {
        "precedents": precedents or [],
        "author": {"user_id": "troll", "known": True, "reputation": reputation, "violation_count": violations,
                   "reversed_count": reversed_count, "flagged_count": violations, "message_count": 20,
                   "prior_actions": []},
        "session": {"session_id": "web:lobby", "source": "redis", "escalation_score": escalation,
                    "message_count": 12, "harassment_flags_count": 2, "participant_count": 4,
                    "time_span_minutes": 3.0, "author_flagged_count": 1, "pile_on": pile_on},
        "embedding": {"provider": "local", "model": "test", "dim": 384, "reused": False},
    }


def insert_event(event_id: str, content: str, *, risk: float = 0.85, category: str = "targeted_harassment",
                 author: str = "troll", target: str | None = "bob", status: str = "needs_review",
                 channel: str = "lobby", platform: str = "web", flags: list[str] | None = None,
                 screened_ago_s: float = 0.0, metadata: dict[str, Any] | None = None) -> dict[str, str]:
    """A screened event row as the screening stage leaves it; returns its ref."""
    from datetime import UTC, datetime, timedelta

    from app.db import session_scope
    from app.models import Event

    now = datetime.now(UTC)
    with session_scope() as db:
        db.add(Event(event_id=event_id, platform=platform, session_id=f"{platform}:{channel}", channel_id=channel,
                     author_id=author, user_id=target, content=content, event_metadata=metadata or {},
                     occurred_at=now, received_at=now, status=status, risk_score=risk, risk_category=category,
                     confidence=0.8, flags=flags or [], model_version="ngram-v1", screening_time_ms=1.0,
                     screened_at=now - timedelta(seconds=screened_ago_s)))
    return {"platform": platform, "event_id": event_id}
