"""The actions sweeper: decided actions whose act.apply message was lost are sent again, once per period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app import maintenance
from app.db import session_scope
from app.models import Action
from tests.fakes.rows import insert_action, insert_event


def sweep(rds, **kw):  # type: ignore[no-untyped-def]
    sent: list[list[str]] = []
    with session_scope() as db:
        count = maintenance.sweep_actions(rds, db, sent.append, older_than_s=900, **kw)
    return count, [action_id for batch in sent for action_id in batch]


def age(action_id: str, seconds: float) -> None:
    with session_scope() as db:
        db.get(Action, action_id).created_at = datetime.now(UTC) - timedelta(seconds=seconds)


def test_only_old_pending_actions_are_sent_again_once_per_period(settings, rds):
    insert_event("discord")
    stuck = insert_action("discord", "timeout", duration_hours=1)
    fresh = insert_action("discord", "warning")
    done = insert_action("discord", "delete_message", status="applied")
    failed = insert_action("discord", "ban", status="failed")
    for action_id in (stuck, done, failed):
        age(action_id, 3600)
    age(fresh, 60)
    assert sweep(rds) == (1, [stuck])
    assert sweep(rds) == (0, [])  # marked: not sent again while its message may still be waiting
    rds.delete(maintenance.ACTION_MARK.format(action_id=stuck))
    assert sweep(rds) == (1, [stuck])


def test_a_busy_actions_queue_is_left_alone(settings, rds):
    insert_event("discord")
    age(insert_action("discord", "timeout", duration_hours=1), 3600)
    rds.rpush("actions", *["m"] * (maintenance.BUSY_QUEUE_LENGTH + 1))
    assert sweep(rds) == (0, [])
