"""Slack Events API: v0 signature vectors, rejections (401), url_verification, message normalisation."""

from __future__ import annotations

import json
import logging

import pytest

from app.platforms import WebhookRejected, slack
from tests.platforms import assert_hides, only_event, payload, vectors

SECRET = "slack-signing-secret-test-0001"
NOW = 1717243200


def headers(body: bytes, *, timestamp: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": slack.sign(secret, str(timestamp), body),
    }


@pytest.mark.parametrize("name", ["slack_doc_vector", "slack_message_event"])
def test_reference_vectors_verify(name: str) -> None:
    vector = vectors()[name]
    body = vector["body"].encode()
    timestamp = vector["X-Slack-Request-Timestamp"]
    assert slack.sign(vector["signing_secret"], timestamp, body) == vector["X-Slack-Signature"]
    vector_headers = {k: v for k, v in vector.items() if k.startswith("X-Slack-")}
    slack.verify(vector_headers, body, secret=vector["signing_secret"], now=int(timestamp) + 10)


def test_reference_message_vector_normalises() -> None:
    vector = vectors()["slack_message_event"]
    inbound = slack.parse({}, vector["body"].encode())
    assert inbound.dedup_key == "Ev123ABC456"
    assert only_event(inbound) == {
        "event_id": "C123ABC456:1717243199.000100",
        "platform": "slack",
        "user_id": None,
        "author_id": "U123ABC456",
        "content": "you are trash, uninstall",
        "channel_id": "C123ABC456",
        "metadata": {
            "timestamp": "2024-06-01T11:59:59.000100+00:00",
            "message_id": "1717243199.000100",
            "team_id": "T123ABC456",
            "mentions": [],
            "channel_type": "channel",
            "slack_event_id": "Ev123ABC456",
            "source": "events_api",
        },
    }


def test_wrong_signature_is_401() -> None:
    body = payload("slack", "message_channels")
    with pytest.raises(WebhookRejected) as caught:
        slack.verify(headers(body, secret="not-the-secret"), body, secret=SECRET, now=NOW)
    assert caught.value.status == 401


def test_signature_binds_the_timestamp() -> None:
    body = payload("slack", "message_channels")
    replayed = headers(body)
    replayed["X-Slack-Request-Timestamp"] = str(NOW + 60)
    with pytest.raises(WebhookRejected) as caught:
        slack.verify(replayed, body, secret=SECRET, now=NOW + 60)
    assert caught.value.status == 401


@pytest.mark.parametrize("skew", [301, -301])
def test_timestamp_outside_five_minutes_is_401(skew: int) -> None:
    body = payload("slack", "message_channels")
    slack.verify(headers(body), body, secret=SECRET, now=NOW + (300 if skew > 0 else -300))
    with pytest.raises(WebhookRejected) as caught:
        slack.verify(headers(body), body, secret=SECRET, now=NOW + skew)
    assert caught.value.status == 401


@pytest.mark.parametrize("missing", ["X-Slack-Request-Timestamp", "X-Slack-Signature"])
def test_missing_header_is_401(missing: str) -> None:
    body = payload("slack", "message_channels")
    incomplete = headers(body)
    del incomplete[missing]
    with pytest.raises(WebhookRejected) as caught:
        slack.verify(incomplete, body, secret=SECRET, now=NOW)
    assert caught.value.status == 401


def test_non_numeric_timestamp_is_401() -> None:
    body = payload("slack", "message_channels")
    with pytest.raises(WebhookRejected) as caught:
        slack.verify(headers(body) | {"X-Slack-Request-Timestamp": "1e9"}, body, secret=SECRET, now=NOW)
    assert caught.value.status == 401


def test_unconfigured_secret_is_503() -> None:
    body = payload("slack", "message_channels")
    with pytest.raises(WebhookRejected) as caught:
        slack.verify(headers(body, secret=""), body, secret="", now=NOW)
    assert caught.value.status == 503


@pytest.mark.parametrize("body", [b"{oops", b"", b'"a string"', b"token=abc&team_id=T1"])
def test_malformed_body_is_400(body: bytes) -> None:
    slack.verify(headers(body), body, secret=SECRET, now=NOW)
    with pytest.raises(WebhookRejected) as caught:
        slack.parse(headers(body), body)
    assert caught.value.status == 400


def test_url_verification_answers_the_challenge() -> None:
    body = payload("slack", "url_verification")
    slack.verify(headers(body), body, secret=SECRET, now=NOW)
    inbound = slack.parse(headers(body), body)
    assert inbound.reply == (
        200,
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        {"Content-Type": "text/plain"},
    )
    assert inbound.events == [] and inbound.dedup_key is None


def test_retry_is_noted_and_dedup_stays_on_event_id() -> None:
    body = payload("slack", "message_channels")
    retried = headers(body) | {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}
    inbound = slack.parse(retried, body)
    assert inbound.dedup_key == "Ev123ABC456"
    assert inbound.notes == {"slack_retry": 2, "slack_retry_reason": "http_timeout"}
    assert len(inbound.events) == 1


def test_thread_reply_targets_the_parent_author() -> None:
    body = payload("slack", "message_thread_reply")
    assert only_event(slack.parse(headers(body), body)) == {
        "event_id": "C0GENERAL01:1717243260.001200",
        "platform": "slack",
        "user_id": "U0VICTIM01",
        "author_id": "U0HARASS01",
        "content": "<@U0VICTIM01> nobody wants you in this channel, <@U0VICTIM01|victim> just leave",
        "channel_id": "C0GENERAL01",
        "metadata": {
            "timestamp": "2024-06-01T12:01:00.001200+00:00",
            "message_id": "1717243260.001200",
            "team_id": "T123ABC456",
            "mentions": ["U0VICTIM01"],
            "channel_type": "channel",
            "slack_event_id": "Ev0THREAD0001",
            "source": "events_api",
            "thread_id": "1717243100.000300",
            "reply_to_message_id": "C0GENERAL01:1717243100.000300",
        },
    }


def test_file_share_without_text_yields_an_empty_event() -> None:
    body = payload("slack", "message_file_share")
    event = only_event(slack.parse(headers(body), body))
    assert event["content"] == ""
    assert event["event_id"] == "C0GENERAL01:1717243320.000400"
    assert event["metadata"]["subtype"] == "file_share"
    assert event["user_id"] is None


def test_edit_is_a_new_event_in_the_same_thread() -> None:
    body = payload("slack", "message_changed")
    slack.verify(headers(body), body, secret=SECRET, now=NOW)
    inbound = slack.parse(headers(body), body)
    original = only_event(slack.parse({}, payload("slack", "message_thread_reply")))
    assert inbound.dedup_key == "Ev0EDIT00001"
    assert only_event(inbound) == {
        "event_id": "C0GENERAL01:1717243260.001200:edit:2024-06-01T12:03:20+00:00",
        "platform": "slack",
        "user_id": "U0VICTIM01",
        "author_id": "U0HARASS01",
        "content": "<@U0VICTIM01> you are pathetic, everyone here laughs at you",
        "channel_id": "C0GENERAL01",
        "metadata": {
            "timestamp": "2024-06-01T12:03:20+00:00",
            "message_id": "1717243260.001200",  # chat.delete still finds the message by its ts
            "team_id": "T123ABC456",
            "mentions": ["U0VICTIM01"],
            "channel_type": "channel",
            "slack_event_id": "Ev0EDIT00001",
            "source": "events_api",
            "thread_id": "1717243100.000300",
            "reply_to_message_id": "C0GENERAL01:1717243100.000300",
            "edited": True,
            "original_event_id": "C0GENERAL01:1717243260.001200",
        },
    }
    assert original["event_id"] == "C0GENERAL01:1717243260.001200"


def test_each_edit_has_its_own_id_and_a_retry_keeps_it() -> None:
    envelope = json.loads(payload("slack", "message_changed"))
    first = json.dumps(envelope).encode()
    retried = headers(first) | {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert only_event(slack.parse(retried, first))["event_id"] == only_event(slack.parse({}, first))["event_id"]
    envelope["event_id"] = "Ev0EDIT00002"
    envelope["event"]["previous_message"] = envelope["event"]["message"]
    envelope["event"]["message"] = {
        **envelope["event"]["message"],
        "text": "third version",
        "edited": {"user": "U0HARASS01", "ts": "1717243460.000000"},
    }
    second = json.dumps(envelope).encode()
    assert only_event(slack.parse({}, second))["event_id"] == (
        "C0GENERAL01:1717243260.001200:edit:2024-06-01T12:04:20+00:00"
    )


def test_edit_without_edited_uses_the_change_time() -> None:
    envelope = json.loads(payload("slack", "message_changed"))
    del envelope["event"]["message"]["edited"]
    body = json.dumps(envelope).encode()
    event = only_event(slack.parse(headers(body), body))
    assert event["metadata"]["timestamp"] == "2024-06-01T12:03:20.000600+00:00"
    assert event["event_id"].endswith(":edit:2024-06-01T12:03:20.000600+00:00")


def test_unfurl_without_a_text_change_is_acknowledged_without_events() -> None:
    body = payload("slack", "message_changed_unfurl")
    slack.verify(headers(body), body, secret=SECRET, now=NOW)
    inbound = slack.parse(headers(body), body)
    assert inbound.events == [] and inbound.reply is None
    assert inbound.notes == {"ignored": "message_changed without a text change"}
    assert inbound.dedup_key == "Ev0UNFURL001"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"subtype": "bot_message", "bot_id": "B0APP0001"}, "edited message subtype bot_message"),
        ({"bot_id": "B0APP0001"}, "edited bot or hidden message"),
        ({"subtype": "tombstone", "text": "This message was deleted."}, "edited message subtype tombstone"),
    ],
)
def test_edits_of_bot_and_tombstone_messages_are_ignored(change: dict[str, str], reason: str) -> None:
    envelope = json.loads(payload("slack", "message_changed"))
    envelope["event"]["message"] |= change
    body = json.dumps(envelope).encode()
    inbound = slack.parse(headers(body), body)
    assert inbound.events == [] and inbound.notes["ignored"] == reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"message": None}, "event.message"),
        ({"message": {"type": "message", "user": "U0HARASS01", "ts": "1717243260.001200"}}, "event.message.text"),
        (
            {"message": {"type": "message", "user": "U0HARASS01", "text": ["x"], "ts": "1717243260.001200"}},
            "event.message.text",
        ),
        ({"message": {"type": "message", "user": "U0HARASS01", "text": "x"}}, "event.message.ts"),
        ({"channel": None}, "event.channel"),
    ],
)
def test_malformed_edit_is_400_naming_the_field(change: dict[str, object], field: str) -> None:
    envelope = json.loads(payload("slack", "message_changed"))
    envelope["event"] |= change
    body = json.dumps(envelope).encode()
    with pytest.raises(WebhookRejected) as caught:
        slack.parse(headers(body), body)
    assert caught.value.status == 400 and caught.value.reason.startswith(field + " ")


@pytest.mark.parametrize(
    ("name", "reason"),
    [("message_bot", "message subtype bot_message"), ("message_deleted", "message subtype message_deleted")],
)
def test_non_user_messages_are_acknowledged_without_events(name: str, reason: str) -> None:
    body = payload("slack", name)
    inbound = slack.parse(headers(body), body)
    assert inbound.events == [] and inbound.reply is None
    assert inbound.notes["ignored"] == reason
    assert inbound.dedup_key is not None


def test_bot_id_without_subtype_is_ignored() -> None:
    envelope = json.loads(payload("slack", "message_channels"))
    envelope["event"]["bot_id"] = "B0APP0001"
    body = json.dumps(envelope).encode()
    assert slack.parse(headers(body), body).events == []


def test_app_mention_is_ignored_because_message_carries_it() -> None:
    envelope = json.loads(payload("slack", "message_channels"))
    envelope["event"]["type"] = "app_mention"
    body = json.dumps(envelope).encode()
    inbound = slack.parse(headers(body), body)
    assert inbound.events == [] and inbound.notes["ignored"] == "event type app_mention"


def test_rejections_never_carry_message_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    text = "you are trash, uninstall"
    envelope = json.loads(payload("slack", "message_channels"))
    envelope["event"]["ts"] = text  # an unreadable ts must not be echoed either
    bad_ts = json.dumps(envelope).encode()
    envelope["event"] = {"type": "message", "user": "U1", "text": text}  # no channel
    no_channel = json.dumps(envelope).encode()
    for body in (bad_ts, no_channel, no_channel[:-2]):
        with pytest.raises(WebhookRejected) as caught:
            slack.parse(headers(body), body)
        assert caught.value.status == 400
        assert_hides(text, caught.value, caplog.text)
