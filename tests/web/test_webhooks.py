"""Platform webhooks through Flask on real Redis: signed recorded payloads in, events queued out."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from nacl.signing import SigningKey

from app import streams
from app.platforms import slack, standard_webhooks, twitch
from tests.platforms import payload

TWITCH_SECRET = "twitch-secret-for-tests"
SLACK_SECRET = "slack-signing-secret"
BRIDGE_SECRET = "whsec_" + base64.b64encode(b"bridge-secret-32-bytes-long!!!!!").decode()
WEB_SECRET = "whsec_" + base64.b64encode(b"web-chat-secret-32-bytes-long!!!").decode()
DISCORD_KEY = SigningKey(bytes(range(32)))


@pytest.fixture
def hooks(settings_map):  # type: ignore[no-untyped-def]
    from web import create_app

    config = settings_map | {"TWITCH_EVENTSUB_SECRET": TWITCH_SECRET, "SLACK_SIGNING_SECRET": SLACK_SECRET,
                             "DISCORD_BRIDGE_SECRET": BRIDGE_SECRET, "WEB_WEBHOOK_SECRET": WEB_SECRET,
                             "DISCORD_PUBLIC_KEY": DISCORD_KEY.verify_key.encode().hex()}
    return create_app(config).test_client()


def twitch_post(client, body: bytes, msg_type: str = "notification", *, secret: str = TWITCH_SECRET,
                timestamp: str | None = None):  # type: ignore[no-untyped-def]
    message_id = str(uuid.uuid4())
    ts = timestamp or datetime.now(UTC).isoformat().replace("+00:00", "Z")
    headers = {"Twitch-Eventsub-Message-Id": message_id, "Twitch-Eventsub-Message-Timestamp": ts,
               "Twitch-Eventsub-Message-Type": msg_type,
               "Twitch-Eventsub-Message-Signature": twitch.sign(secret, message_id, ts, body)}
    return client.post("/v1/webhooks/twitch", data=body, headers=headers, content_type="application/json")


def standard_post(client, path: str, body: bytes, secret: str):  # type: ignore[no-untyped-def]
    wid, ts = "msg_" + uuid.uuid4().hex, str(int(time.time()))
    headers = {"webhook-id": wid, "webhook-timestamp": ts,
               "webhook-signature": standard_webhooks.sign(secret, wid, ts, body)}
    return client.post(path, data=body, headers=headers, content_type="application/json")


def raw_events(rds):  # type: ignore[no-untyped-def]
    return [json.loads(f["data"]) for _, f in rds.xrange(streams.RAW)]


def test_twitch_chat_message_is_queued_and_answered_204(hooks, rds):
    resp = twitch_post(hooks, payload("twitch", "channel_chat_message"))
    assert resp.status_code == 204
    [event] = raw_events(rds)
    assert event["platform"] == "twitch" and event["session_id"].startswith("twitch:")
    assert rds.llen("screening") == 1


def test_twitch_retry_of_the_same_message_is_not_queued_twice(hooks, rds):
    body = payload("twitch", "channel_chat_message")
    assert twitch_post(hooks, body).status_code == 204
    assert twitch_post(hooks, body).status_code == 204  # Twitch redelivers with a new timestamp
    assert rds.xlen(streams.RAW) == 1 and rds.llen("screening") == 1


def test_twitch_challenge_is_echoed_as_text(hooks):
    body = payload("twitch", "webhook_callback_verification")
    resp = twitch_post(hooks, body, "webhook_callback_verification")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert resp.get_data(as_text=True) == json.loads(body)["challenge"]


def test_twitch_bad_signature_and_stale_message_are_403_and_write_nothing(hooks, rds):
    body = payload("twitch", "channel_chat_message")
    assert twitch_post(hooks, body, secret="wrong").status_code == 403
    assert twitch_post(hooks, body, timestamp="2020-01-01T00:00:00Z").status_code == 403
    assert rds.xlen(streams.RAW) == 0


def test_slack_message_and_url_verification(hooks, rds):
    body = payload("slack", "message_channels")
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack.sign(SLACK_SECRET, ts, body)}
    assert hooks.post("/v1/webhooks/slack", data=body, headers=headers, content_type="application/json"
                      ).status_code == 200
    assert raw_events(rds)[0]["platform"] == "slack"
    challenge = payload("slack", "url_verification")
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack.sign(SLACK_SECRET, ts, challenge)}
    resp = hooks.post("/v1/webhooks/slack", data=challenge, headers=headers, content_type="application/json")
    assert resp.status_code == 200 and resp.get_data(as_text=True) == json.loads(challenge)["challenge"]


def test_slack_wrong_signature_is_401(hooks, rds):
    body = payload("slack", "message_channels")
    headers = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
    assert hooks.post("/v1/webhooks/slack", data=body, headers=headers).status_code == 401
    assert rds.xlen(streams.RAW) == 0


def test_discord_bridge_batch_is_one_queue_message(hooks, rds):
    resp = standard_post(hooks, "/v1/webhooks/discord", payload("discord", "bridge_batch"), BRIDGE_SECRET)
    assert resp.status_code == 202
    assert len(resp.get_json()["accepted"]) == len(raw_events(rds)) >= 2
    assert rds.llen("screening") == 1


def test_discord_interaction_ping_gets_pong_and_bad_signature_401(hooks):
    body = payload("discord", "interaction_ping")
    ts = str(int(time.time()))
    signature = DISCORD_KEY.sign(ts.encode() + body).signature.hex()
    resp = hooks.post("/v1/webhooks/discord/interactions", data=body, content_type="application/json",
                      headers={"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts})
    assert resp.status_code == 200 and resp.get_json() == {"type": 1}
    resp = hooks.post("/v1/webhooks/discord/interactions", data=body, content_type="application/json",
                      headers={"X-Signature-Ed25519": "00" * 64, "X-Signature-Timestamp": ts})
    assert resp.status_code == 401


def test_discord_report_becomes_an_event_and_an_ephemeral_answer(hooks, rds):
    body = payload("discord", "interaction_report_message")
    ts = str(int(time.time()))
    signature = DISCORD_KEY.sign(ts.encode() + body).signature.hex()
    resp = hooks.post("/v1/webhooks/discord/interactions", data=body, content_type="application/json",
                      headers={"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts})
    assert resp.status_code == 200 and resp.get_json()["data"]["flags"] == 64
    [event] = raw_events(rds)
    assert event["metadata"]["source"] == "report"


def test_web_chat_batch_and_wrong_secret(hooks, rds):
    body = payload("web", "events_batch")
    assert standard_post(hooks, "/v1/webhooks/web", body, WEB_SECRET).status_code == 202
    assert len(raw_events(rds)) == len(json.loads(body)["events"])
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert standard_post(hooks, "/v1/webhooks/web", body, other).status_code == 401


def slack_post(client, body: bytes):  # type: ignore[no-untyped-def]
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack.sign(SLACK_SECRET, ts, body)}
    return client.post("/v1/webhooks/slack", data=body, headers=headers, content_type="application/json")


def test_web_chat_edit_is_queued_beside_the_original_and_a_redelivery_is_not(hooks, rds):
    created, edited = payload("web", "chat_message_created"), payload("web", "chat_message_edited")
    assert standard_post(hooks, "/v1/webhooks/web", created, WEB_SECRET).status_code == 202
    resp = standard_post(hooks, "/v1/webhooks/web", edited, WEB_SECRET)
    assert resp.status_code == 202 and resp.get_json()["accepted"] == ["m_9001:edit:2024-06-01T12:01:00+00:00"]
    resp = standard_post(hooks, "/v1/webhooks/web", edited, WEB_SECRET)  # the sender retries: a new webhook-id
    assert resp.status_code == 202 and resp.get_json()["duplicates"] == ["m_9001:edit:2024-06-01T12:01:00+00:00"]
    original, edit = raw_events(rds)
    assert edit["metadata"]["original_event_id"] == original["event_id"] == "m_9001"
    assert edit["metadata"]["message_id"] == original["metadata"]["message_id"] == "m_9001"
    assert edit["session_id"] == original["session_id"] and edit["metadata"]["edited"] is True
    assert rds.llen("screening") == 1  # one wake: no reader started between the two deliveries


def test_web_chat_deletion_is_acknowledged_and_queues_nothing(hooks, rds):
    resp = standard_post(hooks, "/v1/webhooks/web", payload("web", "chat_message_deleted"), WEB_SECRET)
    assert resp.status_code == 202 and rds.xlen(streams.RAW) == 0


def test_slack_edit_is_queued_and_an_unfurl_is_not(hooks, rds):
    assert slack_post(hooks, payload("slack", "message_thread_reply")).status_code == 200
    assert slack_post(hooks, payload("slack", "message_changed")).status_code == 200
    assert slack_post(hooks, payload("slack", "message_changed")).status_code == 200  # Slack's retry
    assert slack_post(hooks, payload("slack", "message_changed_unfurl")).status_code == 200
    original, edit = raw_events(rds)
    assert edit["metadata"]["original_event_id"] == original["event_id"] != edit["event_id"]
    assert edit["session_id"] == original["session_id"] == "slack:C0GENERAL01:1717243100.000300"


def test_malformed_edit_is_400_and_queues_nothing(hooks, rds):
    envelope = json.loads(payload("web", "chat_message_edited"))
    del envelope["data"]["message"]["text"]
    resp = standard_post(hooks, "/v1/webhooks/web", json.dumps(envelope).encode(), WEB_SECRET)
    assert resp.status_code == 400 and rds.xlen(streams.RAW) == 0
    assert resp.get_json()["error"] == "data.message.text is missing or not a string"


def test_unconfigured_secret_is_503_not_an_open_door(settings_map):
    from web import create_app

    client = create_app(settings_map).test_client()  # no WEB_WEBHOOK_SECRET
    resp = standard_post(client, "/v1/webhooks/web", payload("web", "event_single"), WEB_SECRET)
    assert resp.status_code == 503
