"""Twitch EventSub: signature vectors, rejections (403), handshake, revocation, chat normalisation."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from app.platforms import WebhookRejected, twitch
from tests.platforms import assert_hides, only_event, payload, vectors

SECRET = "s3cRe7-moderation-0001"
MESSAGE_ID = "befa7b53-d79d-478f-86b9-120f112b044e"
SENT = "2024-06-01T12:00:01.5Z"
SENT_EPOCH = datetime.fromisoformat(SENT).timestamp()


def headers(
    body: bytes, kind: str = "notification", *, message_id: str = MESSAGE_ID, sent: str = SENT
) -> dict[str, str]:
    return {
        "Twitch-Eventsub-Message-Id": message_id,
        "Twitch-Eventsub-Message-Retry": "0",
        "Twitch-Eventsub-Message-Type": kind,
        "Twitch-Eventsub-Message-Signature": twitch.sign(SECRET, message_id, sent, body),
        "Twitch-Eventsub-Message-Timestamp": sent,
        "Twitch-Eventsub-Subscription-Type": "channel.chat.message",
        "Twitch-Eventsub-Subscription-Version": "1",
    }


def vector_headers(vector: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in vector.items() if k.startswith("Twitch-")}


@pytest.mark.parametrize("name", ["twitch_chat_message", "twitch_follow_third_party"])
def test_reference_vectors_verify(name: str) -> None:
    vector = vectors()[name]
    sent = datetime.fromisoformat(vector["Twitch-Eventsub-Message-Timestamp"]).timestamp()
    body = vector["body"].encode()
    assert (
        twitch.sign(
            vector["secret"], vector["Twitch-Eventsub-Message-Id"], vector["Twitch-Eventsub-Message-Timestamp"], body
        )
        == vector["Twitch-Eventsub-Message-Signature"]
    )
    twitch.verify(vector_headers(vector), body, secret=vector["secret"], now=sent + 1)


def test_reference_chat_vector_normalises() -> None:
    vector = vectors()["twitch_chat_message"]
    event = only_event(twitch.parse(vector_headers(vector), vector["body"].encode()))
    assert event == {
        "event_id": "cc106a89-1814-919d-454c-f4f2f970aae7",
        "platform": "twitch",
        "user_id": None,
        "author_id": "4145994",
        "content": "you are trash, uninstall",
        "channel_id": "1971641",
        "metadata": {
            "timestamp": "2024-06-01T12:00:00.123456+00:00",
            "mentions": [],
            "author_name": "viewer32",
            "author_login": "viewer32",
            "author_badges": [],
            "message_type": "text",
            "source": "eventsub",
            "message_id": "cc106a89-1814-919d-454c-f4f2f970aae7",
            "broadcaster_id": "1971641",
            "subscription_id": "0b7f3361-672b-4d39-b307-dd5b576c9b27",
        },
    }


def test_headers_are_case_insensitive() -> None:
    body = payload("twitch", "channel_chat_message")
    lowered = {k.lower(): v for k, v in headers(body).items()}
    twitch.verify(lowered, body, secret=SECRET, now=SENT_EPOCH)
    assert twitch.parse(lowered, body).events[0]["author_id"] == "4145994"


def test_wrong_signature_is_403() -> None:
    body = payload("twitch", "channel_chat_message")
    forged = headers(body)
    forged["Twitch-Eventsub-Message-Signature"] = twitch.sign("another-secret-0001", MESSAGE_ID, SENT, body)
    with pytest.raises(WebhookRejected) as caught:
        twitch.verify(forged, body, secret=SECRET, now=SENT_EPOCH)
    assert caught.value.status == 403


def test_tampered_body_is_403() -> None:
    body = payload("twitch", "channel_chat_message")
    signed = headers(body)
    with pytest.raises(WebhookRejected) as caught:
        twitch.verify(signed, body.replace(b"trash", b"great"), secret=SECRET, now=SENT_EPOCH)
    assert caught.value.status == 403


def test_message_older_than_ten_minutes_is_refused() -> None:
    body = payload("twitch", "channel_chat_message")
    twitch.verify(headers(body), body, secret=SECRET, now=SENT_EPOCH + 599)
    with pytest.raises(WebhookRejected) as caught:
        twitch.verify(headers(body), body, secret=SECRET, now=SENT_EPOCH + 601)
    assert caught.value.status == 403
    assert "10 minutes" in caught.value.reason


def test_unreadable_timestamp_is_403_even_when_signed() -> None:
    body = payload("twitch", "channel_chat_message")
    with pytest.raises(WebhookRejected) as caught:
        twitch.verify(headers(body, sent="yesterday"), body, secret=SECRET, now=SENT_EPOCH)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "missing",
    ["Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp", "Twitch-Eventsub-Message-Signature"],
)
def test_missing_header_is_403(missing: str) -> None:
    body = payload("twitch", "channel_chat_message")
    incomplete = headers(body)
    del incomplete[missing]
    with pytest.raises(WebhookRejected) as caught:
        twitch.verify(incomplete, body, secret=SECRET, now=SENT_EPOCH)
    assert caught.value.status == 403
    assert missing in caught.value.reason


def test_unconfigured_secret_refuses_instead_of_accepting_forgeries() -> None:
    body = payload("twitch", "channel_chat_message")
    forged = headers(body)
    forged["Twitch-Eventsub-Message-Signature"] = twitch.sign("", MESSAGE_ID, SENT, body)
    with pytest.raises(WebhookRejected) as caught:
        twitch.verify(forged, body, secret="", now=SENT_EPOCH)
    assert caught.value.status == 503


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b"[" * 100_000])
def test_malformed_body_is_400_after_a_valid_signature(body: bytes) -> None:
    twitch.verify(headers(body), body, secret=SECRET, now=SENT_EPOCH)
    with pytest.raises(WebhookRejected) as caught:
        twitch.parse(headers(body), body)
    assert caught.value.status == 400


def test_missing_message_type_is_400() -> None:
    body = payload("twitch", "channel_chat_message")
    untyped = headers(body)
    del untyped["Twitch-Eventsub-Message-Type"]
    with pytest.raises(WebhookRejected) as caught:
        twitch.parse(untyped, body)
    assert caught.value.status == 400


def test_callback_verification_answers_the_raw_challenge_as_text() -> None:
    body = payload("twitch", "webhook_callback_verification")
    signed = headers(body, "webhook_callback_verification")
    twitch.verify(signed, body, secret=SECRET, now=SENT_EPOCH)
    inbound = twitch.parse(signed, body)
    assert inbound.reply == (200, "pogchamp-kappa-360noscope-vohiyo", {"Content-Type": "text/plain"})
    assert inbound.events == []
    assert inbound.dedup_key is None  # a repeated challenge must be answered again, not deduplicated


def test_revocation_is_acknowledged_and_noted() -> None:
    body = payload("twitch", "revocation")
    inbound = twitch.parse(headers(body, "revocation"), body)
    assert inbound.events == [] and inbound.reply is None
    assert inbound.dedup_key == MESSAGE_ID
    assert inbound.notes["revocation"] == {
        "id": "0b7f3361-672b-4d39-b307-dd5b576c9b27",
        "type": "channel.chat.message",
        "version": "1",
        "status": "authorization_revoked",
        "condition": {"broadcaster_user_id": "1971641", "user_id": "2914196"},
    }


def test_other_subscription_types_are_acknowledged_without_events() -> None:
    body = payload("twitch", "channel_follow")
    inbound = twitch.parse(headers(body), body)
    assert inbound.events == [] and inbound.reply is None
    assert inbound.notes["ignored_subscription_type"] == "channel.follow"


def test_unknown_message_type_is_acknowledged() -> None:
    body = payload("twitch", "channel_chat_message")
    inbound = twitch.parse(headers(body, "some_future_type"), body)
    assert inbound.events == []
    assert inbound.notes == {"ignored_message_type": "some_future_type"}


def test_reply_targets_the_parent_author_and_lists_mentions() -> None:
    body = payload("twitch", "channel_chat_message_reply")
    signed = headers(body)
    signed["Twitch-Eventsub-Message-Retry"] = "2"
    inbound = twitch.parse(signed, body)
    assert inbound.dedup_key == MESSAGE_ID
    assert inbound.notes == {"twitch_retry": 2}
    assert only_event(inbound) == {
        "event_id": "5b2e6a0c-8f3e-4a59-9c1d-2f7b1e0a9d44",
        "platform": "twitch",
        "user_id": "8822113",
        "author_id": "4145994",
        "content": "@Victim_01 nobody asked you, log off. @mod_anna",
        "channel_id": "1971641",
        "metadata": {
            "timestamp": "2024-06-01T12:00:01.500000+00:00",
            "mentions": ["8822113", "5550001"],
            "author_name": "viewer32",
            "author_login": "viewer32",
            "author_badges": ["subscriber", "premium"],
            "message_type": "text",
            "source": "eventsub",
            "reply_to_message_id": "d2a1c3f4-0b6e-4c8d-9e7f-1a2b3c4d5e6f",
            "reply_to_user_login": "victim_01",
            "reply_thread_message_id": "d2a1c3f4-0b6e-4c8d-9e7f-1a2b3c4d5e6f",
            "message_id": "5b2e6a0c-8f3e-4a59-9c1d-2f7b1e0a9d44",
            "broadcaster_id": "1971641",
            "subscription_id": "0b7f3361-672b-4d39-b307-dd5b576c9b27",
        },
    }


def test_shared_chat_message_is_attributed_to_its_source_channel() -> None:
    body = payload("twitch", "channel_chat_message_shared_chat")
    event = only_event(twitch.parse(headers(body), body))
    assert event == {
        "event_id": "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910",
        "platform": "twitch",
        "user_id": None,
        "author_id": "4145994",
        "content": "ratio + you fell off",
        "channel_id": "3141592",
        "metadata": {
            "timestamp": "2024-06-01T12:00:01.500000+00:00",
            "mentions": [],
            "author_name": "viewer32",
            "author_login": "viewer32",
            "author_badges": [],
            "message_type": "text",
            "source": "eventsub",
            "cheer_bits": 100,
            "message_id": "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910",
            "broadcaster_id": "3141592",
            "subscription_id": "0b7f3361-672b-4d39-b307-dd5b576c9b27",
            "shared_chat": True,
            "received_broadcaster_id": "1971641",
            "received_message_id": "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b",
        },
    }


def test_messages_from_our_own_bot_are_not_screened() -> None:
    notification = json.loads(payload("twitch", "channel_chat_message"))
    notification["event"]["chatter_user_id"] = notification["subscription"]["condition"]["user_id"]
    body = json.dumps(notification).encode()
    inbound = twitch.parse(headers(body), body)
    assert inbound.events == [] and inbound.notes["ignored"] == "own bot message"


def test_empty_text_still_yields_an_event() -> None:
    notification = json.loads(payload("twitch", "channel_chat_message"))
    notification["event"]["message"] = {"text": "", "fragments": []}
    body = json.dumps(notification).encode()
    assert only_event(twitch.parse(headers(body), body))["content"] == ""


def test_rejections_never_carry_message_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    text = "you are trash, uninstall"
    broken = {
        "subscription": {"type": "channel.chat.message"},
        "event": {"broadcaster_user_id": "1", "message_id": "m", "message": {"text": text}},
    }
    cases = [json.dumps(broken).encode(), json.dumps(broken).encode()[:-3], text.encode()]
    for body in cases:
        with pytest.raises(WebhookRejected) as caught:
            twitch.parse(headers(body), body)
        assert caught.value.status == 400
        assert_hides(text, caught.value, caplog.text)
    body = payload("twitch", "channel_chat_message")
    with pytest.raises(WebhookRejected) as caught:
        twitch.verify(headers(body), body + b" ", secret=SECRET, now=SENT_EPOCH)
    assert_hides(text, caught.value, caplog.text)
