"""The action executor on a real Celery worker for the ``actions`` queue, calling local fake platform APIs.

The reasoning stage's contract is simulated: an ``actions`` row committed as pending, then the
``act.apply`` message with the action id on the ``actions`` queue.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import streams
from app.config import Settings
from app.db import session_scope
from app.models import AuditLog
from tests.fakes.platform_servers import FakePlatforms, Reply, discord_error
from tests.fakes.rows import EVENTS, action_row, insert_action, insert_event
from tests.tasks.test_screen_worker import Worker, wait_for

# The call each platform should receive for its sample action.
EXPECTED = {
    "discord": ("timeout", "PATCH", f"/guilds/{EVENTS['discord']['metadata']['guild_id']}/members/"
                                    f"{EVENTS['discord']['author_id']}"),
    "twitch": ("ban", "POST", "/moderation/bans"),
    "slack": ("delete_message", "POST", "/chat.delete"),
    "web": ("warning", "POST", ""),
}


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


@pytest.fixture
def start_worker(settings_map, settings, fakes, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start an ``actions`` worker whose settings point at the fakes (plus overrides); stopped after the test."""
    from tasks.celery_app import app as celery

    celery.conf.broker_url = settings.broker_url
    workers: list[Worker] = []

    def start(**overrides: str) -> Worker:
        env = {**os.environ, **settings_map, **fakes.settings(), "CELERY_VISIBILITY_TIMEOUT": "5", **overrides,
               "CELERY_BROKER_URL": Settings.from_mapping(settings_map).broker_url}
        workers.append(Worker(env, "actions", tmp_path / f"worker{len(workers)}.log").start())
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def send(action_id: str) -> None:
    from tasks.celery_app import app as celery

    celery.send_task("act.apply", args=[action_id], queue="actions")


def settled(action_id: str) -> Callable[[], Any]:
    return lambda: action_row(action_id).status != "pending" and action_row(action_id)


def audit_kinds(action_id: str) -> list[tuple[str, str]]:
    with session_scope() as db:
        return [(r.kind, r.actor) for r in db.scalars(select(AuditLog).where(AuditLog.action_id == action_id)
                                                      .order_by(AuditLog.id))]


@pytest.mark.parametrize("platform", list(EXPECTED))
def test_a_pending_action_reaches_the_platform_once(platform, fakes, start_worker, rds):
    action_type, method, path = EXPECTED[platform]
    insert_event(platform)
    action_id = insert_action(platform, action_type, duration_hours=1 if action_type == "timeout" else None)
    start_worker()
    send(action_id)

    row = wait_for(settled(action_id), what=f"{platform} action settled")

    server = getattr(fakes, platform)
    assert row.status == "applied" and row.action_type == action_type
    assert [(r.method, r.path) for r in server.requests] == [(method, path)]
    assert audit_kinds(action_id) == [("action.applied", "system")]
    [(_, fields)] = rds.xrange(streams.ACTIONS_APPLIED)
    assert (fields["action_id"], fields["status"], fields["platform"]) == (action_id, "applied", platform)


def test_dry_run_on_the_worker_records_everything_and_calls_nothing(fakes, start_worker, rds):
    ids = []
    for platform, (action_type, _, _) in EXPECTED.items():
        insert_event(platform)
        ids.append(insert_action(platform, action_type))
    start_worker(ACTIONS_DRY_RUN="true")
    for action_id in ids:
        send(action_id)

    rows = [wait_for(settled(action_id), what="dry-run action settled") for action_id in ids]

    assert {row.status for row in rows} == {"dry_run"}
    assert fakes.all_requests() == []
    assert all(audit_kinds(action_id) == [("action.dry_run", "system")] for action_id in ids)
    assert rds.xlen(streams.ACTIONS_APPLIED) == 4


def test_transient_failures_are_retried_by_celery_with_backoff(fakes, start_worker):
    """With no in-process waiting allowed, each 503 goes back to Celery as a retry."""
    insert_event("web")
    action_id = insert_action("web", "ban")
    fakes.web.script("POST", "", Reply(503, {"error": {"code": "unavailable", "message": "down"}}),
                     Reply(503, {"error": {"code": "unavailable", "message": "down"}}))
    start_worker(ACTION_MAX_INLINE_WAIT_S="0")
    send(action_id)

    row = wait_for(settled(action_id), what="action applied after retries")

    assert row.status == "applied" and len(fakes.web.requests) == 3
    assert len(fakes.web.deliveries) == 1
    with session_scope() as db:
        audit = db.scalars(select(AuditLog).where(AuditLog.action_id == action_id)).one()
    assert audit.detail["delivery"] == 2 and audit.detail["attempts"] == [200]


def test_a_permanent_failure_on_the_worker_is_dead_lettered(fakes, start_worker, rds):
    insert_event("discord")
    action_id = insert_action("discord", "ban")
    guild, user = EVENTS["discord"]["metadata"]["guild_id"], EVENTS["discord"]["author_id"]
    fakes.discord.script("PUT", f"/guilds/{guild}/bans/{user}", discord_error(403, 50013, "Missing Permissions"))
    start_worker()
    send(action_id)
    send("no-such-action")  # a message whose decision never committed

    assert wait_for(settled(action_id), what="action failed").status == "failed"
    failed, missing = wait_for(lambda: len(rds.xrange(streams.DLQ_ERRORS)) == 2 and rds.xrange(streams.DLQ_ERRORS),
                               what="two dead letters")
    assert streams.decode(failed[1])["data"]["stage"] == "act" and "50013" in failed[1]["data"]
    assert streams.decode(missing[1])["data"]["item"]["action_id"] == "no-such-action"
    assert len(fakes.discord.requests) == 1


def test_an_action_whose_message_was_lost_is_swept_to_the_platform_once(fakes, start_worker, rds):
    # Decided and committed, but its act.apply message never reached the broker.
    from app import maintenance
    from app.models import Action
    from tasks.celery_app import enqueue_actions

    insert_event("twitch")
    lost = insert_action("twitch", "ban")
    fresh = insert_action("twitch", "warning")  # decided a moment ago: its message may still be on its way
    with session_scope() as db:
        db.get(Action, lost).created_at = datetime.now(UTC) - timedelta(hours=1)
    start_worker()

    def sweep() -> int:
        with session_scope() as db:
            return maintenance.sweep_actions(rds, db, enqueue_actions, older_than_s=900)

    assert sweep() == 1
    row = wait_for(settled(lost), what="swept action settled")
    assert row.status == "applied" and [r.path for r in fakes.twitch.requests] == ["/moderation/bans"]
    assert action_row(fresh).status == "pending"
    rds.delete(maintenance.ACTION_MARK.format(action_id=lost))
    assert sweep() == 0  # applied now: nothing to send, and the platform was called once
    assert [r.path for r in fakes.twitch.requests] == ["/moderation/bans"]
