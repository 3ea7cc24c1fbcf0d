"""``/v1/actions``: read an action with its audit trail, and reverse it through the platform's API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.config import Settings
from tests.fakes.platform_servers import FakePlatforms
from tests.fakes.rows import EVENTS, action_row, insert_action, insert_event
from tests.tasks.test_screen_worker import Worker, wait_for

GUILD, USER = EVENTS["discord"]["metadata"]["guild_id"], EVENTS["discord"]["author_id"]


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


@pytest.fixture
def actions_worker(settings_map, fakes, tmp_path: Path) -> Iterator[Worker]:  # type: ignore[no-untyped-def]
    env = {**os.environ, **settings_map, **fakes.settings(), "CELERY_VISIBILITY_TIMEOUT": "5",
           "CELERY_BROKER_URL": Settings.from_mapping(settings_map).broker_url}
    worker = Worker(env, "actions", tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def applied_ban() -> str:
    insert_event("discord")
    return insert_action("discord", "ban", status="applied", applied_at=datetime.now(UTC))


def test_reversal_needs_an_api_key(client):
    assert client.post("/v1/actions/x/reverse", json={"moderator": "ana"}).status_code == 401


def test_reversal_validates_the_body_and_the_action(client, auth):
    pending = insert_action("web", "ban")
    insert_event("web")
    missing_moderator = client.post(f"/v1/actions/{pending}/reverse", json={}, headers=auth)
    unknown = client.post("/v1/actions/nope/reverse", json={"moderator": "ana"}, headers=auth)
    not_applied = client.post(f"/v1/actions/{pending}/reverse", json={"moderator": "ana"}, headers=auth)

    assert missing_moderator.status_code == 400 and "moderator" in missing_moderator.get_json()["errors"]
    assert unknown.status_code == 404
    assert not_applied.status_code == 409 and "only an applied sanction" in not_applied.get_json()["error"]


def test_a_moderator_reverses_a_ban_through_the_api(client, auth, fakes, actions_worker):
    action_id = applied_ban()
    fakes.discord.bans.add((GUILD, USER))

    resp = client.post(f"/v1/actions/{action_id}/reverse", json={"moderator": "ana", "reason": "appeal upheld"},
                       headers=auth)
    assert resp.status_code == 202 and resp.get_json()["status"] == "reversing"
    wait_for(lambda: action_row(action_id).status == "reversed", what="reversal applied")

    [unban] = fakes.discord.requests
    assert (unban.method, unban.path) == ("DELETE", f"/guilds/{GUILD}/bans/{USER}")
    assert fakes.discord.bans == set()
    record = client.get(f"/v1/actions/{action_id}", headers=auth).get_json()
    assert record["action"]["status"] == "reversed"
    [reversal] = record["audit"]
    assert (reversal["kind"], reversal["actor"]) == ("action.reversed", "moderator:ana")
    assert reversal["detail"]["platform_status"] == 204 and reversal["detail"]["reversal_reason"] == "appeal upheld"
    again = client.post(f"/v1/actions/{action_id}/reverse", json={"moderator": "ana"}, headers=auth)
    assert again.status_code == 200 and again.get_json()["status"] == "reversed"


def test_get_action_is_404_for_an_unknown_id(client, auth):
    assert client.get("/v1/actions/nope", headers=auth).status_code == 404
