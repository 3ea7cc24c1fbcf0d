"""An author's standing: violations are what was decided (dry-run marked), times are the messages' own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db import session_scope
from app.models import Action, Event, User

INGESTED = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
WRITTEN = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


def _history(statuses: dict[str, str]) -> None:
    with session_scope() as db:
        db.add(User(platform="discord", user_id="troll", message_count=3, flagged_count=3, violation_count=0,
                    reputation=0.5, first_seen=INGESTED, last_seen=INGESTED))
        for i, (action_type, status) in enumerate(statuses.items()):
            at = WRITTEN + timedelta(minutes=i)
            db.add(Event(event_id=f"e{i}", platform="discord", session_id="discord:c", channel_id="c",
                         author_id="troll", user_id="vic", content="...", occurred_at=at, received_at=INGESTED))
            db.add(Action(action_id=f"a{i}", event_id=f"e{i}", platform="discord", user_id="troll",
                          action_type=action_type, reason_code="harassment", confidence=0.9, policy="graduated",
                          status=status))


def test_the_standing_counts_decided_actions_and_uses_event_time(settings, rds):
    from app.records import user_record

    _history({"mute": "dry_run", "ban": "dry_run", "timeout": "applied", "warning": "reversed"})
    body = user_record("discord", "troll")
    assert body["violation_count"] == 3  # the reversed warning is undone; dry-run decisions count
    assert body["violations"] == {"applied": 1, "dry_run": 2, "pending": 0} and body["dry_run_violations"] == 2
    assert body["first_seen"] == WRITTEN.isoformat()
    assert body["last_seen"] == (WRITTEN + timedelta(minutes=3)).isoformat()
    assert body["repeat_offender_score"] == 1.0  # (3 flagged + 2 x 3 violations) / 6, capped


def test_the_cached_prior_counts_dry_run_decisions(settings, rds):

    from app import standing

    _history({"mute": "dry_run"})
    pipe = rds.pipeline(transaction=False)
    read = standing.queue_priors(pipe, [("discord", "troll"), ("discord", "nobody")])
    with session_scope() as db:
        assert read(pipe.execute(), db) == {("discord", "troll"): round((3 + 2) / 6, 4), ("discord", "nobody"): 0.0}
    assert rds.get(standing.reputation_key("discord", "troll")) is None  # the screening batch caches, once committed


def test_a_screened_batch_caches_its_authors_standing_once_committed(settings, rds, client, auth):
    import json

    from app import standing
    from app.pipeline import screen
    from ml.screening import Screener
    from tests.conftest import make_event

    _history({"mute": "dry_run", "warning": "reversed"})
    reply = client.post("/v1/events/ingest", json=make_event(1, platform="discord", author_id="troll"), headers=auth)
    assert reply.status_code == 202, reply.get_json()
    [(_, fields)] = rds.xrange("events:raw")
    item = {"event": json.loads(fields["data"]), "received_at": int(fields["received_at"])}
    with session_scope() as db:
        result = screen.screen_batch([item], screener=Screener.load("ngram-v1"), db=db, client=rds,
                                     settings=settings)
        key = standing.reputation_key("discord", "troll")
        assert rds.get(key) is None  # nothing cached before the transaction commits
    screen.publish(rds, result, settings.STREAM_MAXLEN, settings.EMBEDDING_TTL_S)
    cached = json.loads(rds.get(key))
    assert cached["messages"] == 4 and cached["violations"] == 1  # the dry-run mute; the reversed warning is undone
    assert 0 < rds.ttl(key) <= standing.TTL_S


def test_the_standing_counts_the_same_sanctions_as_the_context_stage():
    from app import standing
    from app.pipeline import context

    assert set(standing.SANCTIONS) == set(context.SANCTIONS) and set(standing.DECIDED) == set(context.COUNTED_STATUSES)
