"""Web chat: Standard Webhooks (401), single Event, batch, ``chat.message.created`` and ``.edited`` bodies."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from app.platforms import ENDPOINTS, WebhookRejected, standard_webhooks, web
from tests.platforms import assert_hides, only_event, payload, vectors

SECRET = "whsec_hhFwD9Wo9Sn/0uqF0VuXrgBS4RFgjxteYBz18sbMX3g="
NOW = 1717243200


def headers(body: bytes, webhook_id: str = "msg_01HZX3T7QK9V5R2M8N4P6W1Y0B", timestamp: int = NOW) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks.sign(SECRET, webhook_id, timestamp, body),
    }


def test_reference_vector_verifies_and_normalises() -> None:
    vector = vectors()["webchat_standard_webhooks"]
    vector_headers = {k: vector[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    body = vector["body"].encode()
    web.verify(vector_headers, body, secret=vector["secret"], now=NOW)
    inbound = web.parse(vector_headers, body)
    assert inbound.dedup_key == "msg_01HZX3T7QK9V5R2M8N4P6W1Y0A"
    assert only_event(inbound) == {
        "event_id": "m_9001",
        "platform": "web",
        "user_id": "u_77",
        "author_id": "u_1234",
        "content": "you are trash, uninstall",
        "channel_id": "room_42",
        "metadata": {
            "timestamp": "2024-06-01T11:59:59.870000+00:00",
            "message_id": "m_9001",
            "mentions": ["u_77"],
            "author_name": "viewer32",
            "source": "webhook",
            "tenant_id": "acme",
        },
    }


def test_recorded_envelope_matches_the_vector() -> None:
    body = payload("web", "chat_message_created")
    web.verify(headers(body), body, secret=SECRET, now=NOW)
    vector_event = web.parse({}, vectors()["webchat_standard_webhooks"]["body"].encode()).events
    assert web.parse(headers(body), body).events == vector_event


def test_wrong_signature_stale_and_missing_headers_are_401() -> None:
    body = payload("web", "event_single")
    good = headers(body)
    attempts: list[tuple[dict[str, str], float]] = [
        (good | {"webhook-signature": headers(body + b" ")["webhook-signature"]}, NOW),
        (good, NOW + 301),
        ({k: v for k, v in good.items() if k != "webhook-signature"}, NOW),
        ({k: v for k, v in good.items() if k != "webhook-id"}, NOW),
        ({k: v for k, v in good.items() if k != "webhook-timestamp"}, NOW),
    ]
    for attempt, now in attempts:
        with pytest.raises(WebhookRejected) as caught:
            web.verify(attempt, body, secret=SECRET, now=now)
        assert caught.value.status == 401


def test_single_contract_event() -> None:
    body = payload("web", "event_single")
    inbound = web.parse(headers(body), body)
    assert inbound.dedup_key == "msg_01HZX3T7QK9V5R2M8N4P6W1Y0B"
    assert only_event(inbound) == {
        "event_id": "evt_5f1c0a",
        "platform": "web",
        "user_id": "u_77",
        "author_id": "u_1234",
        "content": "nobody wants you in this room",
        "channel_id": "room_42",
        "metadata": {
            "timestamp": "2024-06-01T12:00:03.250000+00:00",
            "author_name": "viewer32",
            "thread_id": "th_8",
            "source": "webhook",
            "message_id": "evt_5f1c0a",
        },
    }


def test_batch_of_contract_events() -> None:
    body = payload("web", "events_batch")
    inbound = web.parse(headers(body), body)
    assert inbound.events == [
        {
            "event_id": "evt_5f1c0b",
            "platform": "web",
            "user_id": None,
            "author_id": "u_1234",
            "content": "you again?",
            "channel_id": "room_42",
            "metadata": {"timestamp": "2024-06-01T12:00:04+00:00", "source": "webhook", "message_id": "evt_5f1c0b"},
        },
        {
            "event_id": "evt_5f1c0c",
            "platform": "web",
            "user_id": None,
            "author_id": "u_5678",
            "content": "",
            "channel_id": "room_42",
            "metadata": {  # no timestamp sent: the delivery's webhook-timestamp stands in
                "attachments": 1,
                "timestamp": "2024-06-01T12:00:00+00:00",
                "source": "webhook",
                "message_id": "evt_5f1c0c",
            },
        },
    ]


def test_edit_is_a_new_event_for_the_same_message() -> None:
    body = payload("web", "chat_message_edited")
    web.verify(headers(body), body, secret=SECRET, now=NOW)
    original = only_event(web.parse({}, payload("web", "chat_message_created")))
    edit = only_event(web.parse(headers(body), body))
    assert edit == {
        "event_id": "m_9001:edit:2024-06-01T12:01:00+00:00",
        "platform": "web",
        "user_id": "u_77",
        "author_id": "u_1234",
        "content": "you are trash, uninstall and never come back",
        "channel_id": "room_42",
        "metadata": {
            "timestamp": "2024-06-01T12:01:00+00:00",
            "message_id": "m_9001",  # what a deletion acts on: the platform's message, as before the edit
            "mentions": ["u_77"],
            "author_name": "viewer32",
            "source": "webhook",
            "tenant_id": "acme",
            "edited": True,
            "original_event_id": "m_9001",
        },
    }
    assert edit["metadata"]["original_event_id"] == original["event_id"] != edit["event_id"]


def test_each_edit_has_its_own_id_and_a_redelivery_keeps_it() -> None:
    envelope = json.loads(payload("web", "chat_message_edited"))
    first = json.dumps(envelope).encode()
    envelope["data"]["message"] |= {"text": "second edit", "edited_at": "2024-06-01T12:03:00.000Z"}
    second = json.dumps(envelope).encode()
    redelivered = only_event(web.parse(headers(first, "msg_retry", NOW + 60), first))
    assert redelivered["event_id"] == only_event(web.parse(headers(first), first))["event_id"]
    assert only_event(web.parse(headers(second), second))["event_id"] == "m_9001:edit:2024-06-01T12:03:00+00:00"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"message": None}, "data.message"),
        ({"message": {"id": "m_9001", "edited_at": "2024-06-01T12:01:00Z"}}, "data.message.text"),
        ({"message": {"id": "m_9001", "text": 5, "edited_at": "2024-06-01T12:01:00Z"}}, "data.message.text"),
        ({"message": {"id": "m_9001", "text": "hi"}}, "data.message.edited_at"),
        ({"message": {"id": "m_9001", "text": "hi", "edited_at": "12:01"}}, "data.message.edited_at"),
        ({"message": {"text": "hi", "edited_at": "2024-06-01T12:01:00Z"}}, "data.message.id"),
        ({"author": None}, "data.author"),
    ],
)
def test_malformed_edit_is_400_naming_the_field(change: dict[str, Any], field: str) -> None:
    envelope = json.loads(payload("web", "chat_message_edited"))
    envelope["data"] |= change
    body = json.dumps(envelope).encode()
    with pytest.raises(WebhookRejected) as caught:
        web.parse(headers(body), body)
    assert caught.value.status == 400 and caught.value.reason.startswith(field)


def test_other_envelope_types_are_acknowledged_without_events() -> None:
    body = payload("web", "chat_message_deleted")
    inbound = web.parse(headers(body), body)
    assert inbound.events == [] and inbound.notes == {"ignored_type": "chat.message.deleted"}


@pytest.mark.parametrize("name", ["chat_message_created", "chat_message_edited"])
def test_bot_authors_are_ignored(name: str) -> None:
    envelope = json.loads(payload("web", name))
    envelope["data"]["author"]["is_bot"] = True
    body = json.dumps(envelope).encode()
    inbound = web.parse(headers(body), body)
    assert inbound.events == [] and inbound.notes == {"ignored": "bot message"}


@pytest.mark.parametrize(
    ("reply_to", "expected_target", "expected_reply_id"),
    [("m_8999", "u_77", "m_8999"), ({"id": "m_8998", "author_id": "u_55"}, "u_55", "m_8998")],
)
def test_reply_to_may_be_an_id_or_an_object(reply_to: Any, expected_target: str, expected_reply_id: str) -> None:
    envelope = json.loads(payload("web", "chat_message_created"))
    envelope["data"]["message"]["reply_to"] = reply_to
    body = json.dumps(envelope).encode()
    event = only_event(web.parse(headers(body), body))
    assert event["user_id"] == expected_target
    assert event["metadata"]["reply_to_message_id"] == expected_reply_id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_id": None}, "event_id"),
        ({"author_id": 1234}, "author_id"),
        ({"content": None}, "content"),
        ({"platform": "discord"}, "platform"),
        ({"channel_id": ""}, "channel_id"),
        ({"metadata": {"timestamp": "2024-06-01T12:00:03"}}, "timestamp"),
        ({"metadata": {"timestamp": "soon"}}, "timestamp"),
        ({"metadata": "not an object"}, "metadata"),
    ],
)
def test_invalid_contract_events_are_400_naming_the_field(change: dict[str, Any], field: str) -> None:
    event = json.loads(payload("web", "event_single")) | change
    body = json.dumps(event).encode()
    with pytest.raises(WebhookRejected) as caught:
        web.parse(headers(body), body)
    assert caught.value.status == 400 and field in caught.value.reason


@pytest.mark.parametrize("body", [b"", b"{", b"null", b'{"events": {}}', b'{"events": [1]}'])
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as caught:
        web.parse(headers(body), body)
    assert caught.value.status == 400


def test_oversized_batch_is_413() -> None:
    event = json.loads(payload("web", "event_single"))
    body = json.dumps({"events": [event] * 501}).encode()
    with pytest.raises(WebhookRejected) as caught:
        web.parse(headers(body), body)
    assert caught.value.status == 413


def test_rejections_never_carry_message_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    text = "nobody wants you in this room"
    event = json.loads(payload("web", "event_single"))
    bodies = [
        json.dumps({**event, "event_id": 5}).encode(),
        json.dumps({"events": [event, {**event, "content": [text]}]}).encode(),
        json.dumps({**event, "metadata": {"timestamp": text}}).encode(),
        json.dumps({**event, "platform": text}).encode(),
        json.dumps(event).encode()[:-1],
    ]
    for body in bodies:
        with pytest.raises(WebhookRejected) as caught:
            web.parse(headers(body), body)
        assert caught.value.status == 400
        assert_hides(text, caught.value, caplog.text)


def test_endpoint_table_routes_to_the_connectors() -> None:
    vector = vectors()["webchat_standard_webhooks"]
    vector_headers = {k: vector[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    endpoint = ENDPOINTS["web"]
    endpoint.verify(vector_headers, vector["body"].encode(), vector["secret"], NOW)
    assert endpoint.parse(vector_headers, vector["body"].encode()).events[0]["platform"] == endpoint.platform
    assert {name: e.key_setting for name, e in ENDPOINTS.items()} == {
        "twitch": "TWITCH_EVENTSUB_SECRET",
        "slack": "SLACK_SIGNING_SECRET",
        "discord_interactions": "DISCORD_PUBLIC_KEY",
        "discord": "DISCORD_BRIDGE_SECRET",
        "web": "WEB_WEBHOOK_SECRET",
    }
    with pytest.raises(WebhookRejected) as caught:
        ENDPOINTS["discord_interactions"].verify(vector_headers, b"{}", "ab" * 32, NOW)
    assert caught.value.status == 401
