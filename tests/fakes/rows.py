"""Rows the earlier stages write: a screened event and the reasoning stage's pending action.

The action executor's tests create them directly, so they do not depend on the reasoning stage.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from app.db import session_scope
from app.models import Action, Event

EVIDENCE = [{"kind": "model_score", "ref": "ngram-v1", "detail": "risk 0.93 targeted_harassment"},
            {"kind": "rule_hit", "ref": "insult_second_person", "detail": "repeated_name_calling"}]

# One realistic event per platform, with the metadata its inbound connector writes.
EVENTS: dict[str, dict[str, Any]] = {
    "discord": {"event_id": "1180000000000000001", "channel_id": "290926798999357250",
                "author_id": "53908099506183680",
                "metadata": {"guild_id": "613425648685547541", "message_id": "1180000000000000001",
                             "author_roles": []}},
    "twitch": {"event_id": "cc106a89-1814-919d-454c-f4f2f970aae7", "channel_id": "1234", "author_id": "9876",
               "metadata": {"broadcaster_id": "1234", "message_id": "cc106a89-1814-919d-454c-f4f2f970aae7",
                            "author_badges": ["subscriber"]}},
    "slack": {"event_id": "C123ABC456:1355517523.000005", "channel_id": "C123ABC456", "author_id": "U0HARASS",
              "metadata": {"message_id": "1355517523.000005", "team_id": "T123ABC456"}},
    "web": {"event_id": "m_9001", "channel_id": "room_42", "author_id": "u_1234",
            "metadata": {"message_id": "m_9001", "tenant_id": "acme"}},
}


def action_id_for(platform: str, event_id: str, action_type: str) -> str:
    return hashlib.sha256(f"{platform}:{event_id}:{action_type}".encode()).hexdigest()[:32]


def insert_event(platform: str, *, event_id: str | None = None, status: str = "needs_review",
                 metadata: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    base = EVENTS[platform]
    row = {"event_id": event_id or base["event_id"], "channel_id": base["channel_id"], "author_id": base["author_id"],
           "metadata": {**base["metadata"], **(metadata or {})}, **fields}
    now = datetime.now(UTC)
    with session_scope() as db:
        db.add(Event(event_id=row["event_id"], platform=platform, session_id=f"{platform}:{row['channel_id']}",
                     channel_id=row["channel_id"], author_id=row["author_id"], user_id="target-1",
                     content="you are worthless, leave", event_metadata=row["metadata"], occurred_at=now,
                     received_at=now, status=status, risk_score=0.93, risk_category="targeted_harassment",
                     confidence=0.9, flags=["repeated_name_calling"]))
    return row


def insert_action(platform: str, action_type: str, *, event_id: str | None = None, user_id: str | None = None,
                  confidence: float = 0.9, duration_hours: float | None = None, status: str = "pending",
                  applied_at: datetime | None = None, expires_at: datetime | None = None,
                  policy: str = "graduated_escalation") -> str:
    event_id = event_id or EVENTS[platform]["event_id"]
    action_id = action_id_for(platform, event_id, action_type)
    with session_scope() as db:
        db.add(Action(action_id=action_id, event_id=event_id, platform=platform,
                      user_id=user_id or EVENTS[platform]["author_id"], action_type=action_type,
                      duration_hours=duration_hours, reason_code="targeted_harassment",
                      reasoning="Repeated insults aimed at one user.", confidence=confidence,
                      evidence_chain=EVIDENCE, policy=policy, provider="fallback", status=status,
                      applied_at=applied_at, expires_at=expires_at))
    return action_id


def action_row(action_id: str) -> Action:
    with session_scope() as db:
        action = db.get(Action, action_id)
        assert action is not None
        db.expunge(action)
        return action


def request_for(platform: str, action_type: str, **overrides: Any) -> Any:
    """The ActionRequest the executor builds for the platform's sample event."""
    from app.platforms.outbound import ActionRequest

    base = EVENTS[platform]
    scope = {k: base["metadata"][k] for k in ("guild_id", "broadcaster_id", "tenant_id", "team_id")
             if k in base["metadata"]}
    fields: dict[str, Any] = {
        "action_id": action_id_for(platform, base["event_id"], action_type), "event_id": base["event_id"],
        "platform": platform, "action_type": action_type, "user_id": base["author_id"],
        "channel_id": base["channel_id"], "message_id": base["metadata"]["message_id"], "duration_s": None,
        "reason_code": "targeted_harassment", "reason": "targeted_harassment (safety action A1)", "scope": scope}
    return ActionRequest(**(fields | overrides))
