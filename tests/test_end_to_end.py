"""The whole chain on real workers: a signed platform message in, the platform's moderation API call out.

Twitch EventSub → webhook → screening worker → reasoning worker (fallback, local Qdrant) → actions
worker → the (fake) Helix API, with the audit row and every stream written; and the same message in
dry-run, where the decision is recorded and nothing is called.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app import streams
from app.config import Settings
from app.db import session_scope
from app.models import AuditLog
from tests.fakes.platform_servers import FakePlatforms
from tests.platforms import payload
from tests.tasks.test_screen_worker import Worker, wait_for
from tests.web.test_webhooks import TWITCH_SECRET, twitch_post

HARASSMENT = "you are a worthless idiot, nobody wants you here, just leave"


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


def harassing_delivery() -> tuple[bytes, str]:
    body = json.loads(payload("twitch", "channel_chat_message"))
    body["event"]["message"] = {"text": HARASSMENT, "fragments": [{"type": "text", "text": HARASSMENT,
                                                                  "cheermote": None, "emote": None,
                                                                  "mention": None}]}
    return json.dumps(body).encode(), body["event"]["message_id"]


def run_chain(settings_map, tmp_path: Path, extra: dict[str, str]):  # type: ignore[no-untyped-def]
    from web import create_app

    config = settings_map | {"TWITCH_EVENTSUB_SECRET": TWITCH_SECRET, "QDRANT_PATH": str(tmp_path / "qdrant"),
                             **extra}
    env = {**os.environ, **config, "CELERY_VISIBILITY_TIMEOUT": "10",
           "CELERY_BROKER_URL": Settings.from_mapping(config).broker_url}
    workers = [Worker(env, queue, tmp_path / f"{queue}.log").start() for queue in ("screening", "reasoning",
                                                                                 "actions")]
    return create_app(config).test_client(), workers


@pytest.mark.timeout(180)
def test_a_signed_twitch_message_becomes_a_helix_call_with_its_audit_trail(settings_map, settings, fakes, rds,
                                                                          auth, tmp_path):
    client, workers = run_chain(settings_map, tmp_path, fakes.settings())
    try:
        body, message_id = harassing_delivery()
        assert twitch_post(client, body).status_code == 204
        calls = wait_for(lambda: fakes.twitch.requests, timeout_s=120, what="a Helix moderation call")
    finally:
        for worker in workers:
            worker.stop()
    call = calls[0]
    assert call.path.startswith("/moderation/")
    headers = {k.lower(): v for k, v in call.headers.items()}
    assert headers["client-id"] and headers["authorization"].startswith("Bearer ")
    record = client.get(f"/v1/events/{message_id}?platform=twitch", headers=auth).get_json()
    assert record["risk_prediction"]["risk_score"] >= 0.7
    assert record["action"]["provider"] == "fallback" and record["action"]["status"] == "applied"
    assert {e["kind"] for e in record["action"]["evidence_chain"]} >= {"model_score"}
    for stream in (streams.RAW, streams.SCREENED, streams.REASONING_QUEUE, streams.ACTIONS_PENDING,
                   streams.ACTIONS_APPLIED):
        assert rds.xlen(stream) >= 1, stream
    with session_scope() as db:
        kinds = {row.kind for row in db.scalars(select(AuditLog).where(AuditLog.event_id == message_id))}
    assert "decision" in kinds and len(kinds) >= 2


@pytest.mark.timeout(180)
def test_in_dry_run_the_decision_is_recorded_and_nothing_is_called(settings_map, settings, fakes, rds, auth,
                                                                   tmp_path):
    client, workers = run_chain(settings_map, tmp_path, fakes.settings() | {"ACTIONS_DRY_RUN": "true"})
    try:
        body, message_id = harassing_delivery()
        assert twitch_post(client, body).status_code == 204
        wait_for(lambda: rds.xlen(streams.ACTIONS_APPLIED) >= 1, timeout_s=120, what="the dry-run settlement")
    finally:
        for worker in workers:
            worker.stop()
    assert fakes.twitch.requests == []
    record = client.get(f"/v1/events/{message_id}?platform=twitch", headers=auth).get_json()
    assert record["action"]["status"] == "dry_run"
