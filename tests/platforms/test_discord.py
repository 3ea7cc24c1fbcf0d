"""Discord: Ed25519 interactions (PING, "Report message") and the Standard Webhooks gateway bridge."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

import pytest
from nacl.signing import SigningKey

from app.platforms import WebhookRejected, discord, standard_webhooks
from tests.platforms import assert_hides, only_event, payload, vectors

PING = vectors()["discord_ping"]
SIGNING_KEY = SigningKey(bytes.fromhex(PING["private_seed_hex"]))
PUBLIC_KEY = PING["public_key_hex"]
NOW = 1717243200
BRIDGE_SECRET = "whsec_hhFwD9Wo9Sn/0uqF0VuXrgBS4RFgjxteYBz18sbMX3g="


def interaction_headers(body: bytes, timestamp: str = str(NOW), key: SigningKey = SIGNING_KEY) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body).signature.hex()
    return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": timestamp}


def bridge_headers(body: bytes, webhook_id: str = "msg_2F4a9sQ1:42") -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(NOW),
        "webhook-signature": standard_webhooks.sign(BRIDGE_SECRET, webhook_id, NOW, body),
    }


# --- Interactions -----------------------------------------------------------------------------


def test_reference_ping_vector_verifies_and_pongs() -> None:
    body = PING["body"].encode()
    headers = {k: PING[k] for k in ("X-Signature-Ed25519", "X-Signature-Timestamp")}
    assert interaction_headers(body, PING["X-Signature-Timestamp"]) == headers  # Ed25519 is deterministic
    discord.verify_interaction(headers, body, public_key=PUBLIC_KEY, now=1700000000)
    inbound = discord.parse_interaction(headers, body)
    assert inbound.reply == (200, {"type": 1}, {"Content-Type": "application/json"})
    assert inbound.events == [] and inbound.dedup_key is None


def test_discords_bad_signature_probe_gets_401() -> None:
    body = PING["body"].encode()
    flipped = PING["X-Signature-Ed25519"][:-1] + ("0" if PING["X-Signature-Ed25519"][-1] != "0" else "1")
    probe = {"X-Signature-Ed25519": flipped, "X-Signature-Timestamp": PING["X-Signature-Timestamp"]}
    with pytest.raises(WebhookRejected) as caught:
        discord.verify_interaction(probe, body, public_key=PUBLIC_KEY, now=1700000000)
    assert caught.value.status == 401


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h | {"X-Signature-Timestamp": "1700000001"}, b),  # timestamp is signed
        lambda h, b: (h, b.replace(b'"version":1', b'"version":2')),  # body is signed
        lambda h, b: (h | {"X-Signature-Ed25519": "zz" * 64}, b),  # not hex
        lambda h, b: (h | {"X-Signature-Ed25519": "ab" * 10}, b),  # wrong length
        lambda h, b: (interaction_headers(b, "1700000000", SigningKey.generate()), b),  # another app's key
    ],
)
def test_any_tampering_is_401(tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]) -> None:
    body = PING["body"].encode()
    headers = {"X-Signature-Ed25519": PING["X-Signature-Ed25519"], "X-Signature-Timestamp": "1700000000"}
    headers, body = tamper(headers, body)
    with pytest.raises(WebhookRejected) as caught:
        discord.verify_interaction(headers, body, public_key=PUBLIC_KEY, now=1700000000)
    assert caught.value.status == 401


@pytest.mark.parametrize("missing", ["X-Signature-Ed25519", "X-Signature-Timestamp"])
def test_missing_header_is_401(missing: str) -> None:
    body = PING["body"].encode()
    headers = interaction_headers(body)
    del headers[missing]
    with pytest.raises(WebhookRejected) as caught:
        discord.verify_interaction(headers, body, public_key=PUBLIC_KEY, now=NOW)
    assert caught.value.status == 401


def test_stale_interaction_is_401_only_after_a_valid_signature() -> None:
    body = PING["body"].encode()
    discord.verify_interaction(interaction_headers(body), body, public_key=PUBLIC_KEY, now=NOW + 300)
    with pytest.raises(WebhookRejected) as caught:
        discord.verify_interaction(interaction_headers(body), body, public_key=PUBLIC_KEY, now=NOW + 301)
    assert caught.value.status == 401 and "timestamp" in caught.value.reason


def test_non_numeric_timestamp_is_only_signature_checked() -> None:
    body = PING["body"].encode()
    opaque = "2024-06-01T12:00:00Z"
    discord.verify_interaction(interaction_headers(body, opaque), body, public_key=PUBLIC_KEY, now=NOW)


@pytest.mark.parametrize("key", ["", "not-hex", "ab" * 31])
def test_missing_or_broken_public_key_is_503(key: str) -> None:
    body = PING["body"].encode()
    with pytest.raises(WebhookRejected) as caught:
        discord.verify_interaction(interaction_headers(body), body, public_key=key, now=NOW)
    assert caught.value.status == 503


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"type": 99}', b'{"type": 2}'])
def test_malformed_interaction_is_400(body: bytes) -> None:
    discord.verify_interaction(interaction_headers(body), body, public_key=PUBLIC_KEY, now=NOW)
    with pytest.raises(WebhookRejected) as caught:
        discord.parse_interaction(interaction_headers(body), body)
    assert caught.value.status == 400


def test_report_message_becomes_a_report_event_with_an_ephemeral_answer() -> None:
    body = payload("discord", "interaction_report_message")
    headers = interaction_headers(body)
    discord.verify_interaction(headers, body, public_key=PUBLIC_KEY, now=NOW)
    inbound = discord.parse_interaction(headers, body)
    assert inbound.reply == (
        200,
        {"type": 4, "data": {"content": discord.REPORT_RECEIVED, "flags": 64}},
        {"Content-Type": "application/json"},
    )
    assert inbound.dedup_key == "867793873336926249"
    assert inbound.events == [
        {
            "event_id": "867793873336926249",
            "platform": "discord",
            "user_id": "80351110224678912",  # nobody mentioned: the reporter is the target
            "author_id": "167348773423415296",
            "content": "log off forever, you worthless clown",
            "channel_id": "772908445358620702",
            "metadata": {
                "timestamp": "2021-07-22T15:42:57.744000+00:00",
                "mentions": [],
                "mention_roles": [],
                "mention_everyone": False,
                "author_name": "ian",
                "author_username": "ian",
                "author_roles": [],
                "attachments": 0,
                "message_type": 0,
                "source": "report",
                "guild_id": "772904309264089089",
                "message_id": "867793854505943041",
                "reported_by": "80351110224678912",
                "reported_at": "2021-07-22T15:43:02.234000+00:00",
                "reporter_permissions": "274877906943",
            },
        }
    ]


def test_report_from_a_dm_uses_user_instead_of_member() -> None:
    interaction = json.loads(payload("discord", "interaction_report_message"))
    interaction["user"] = interaction.pop("member")["user"]
    del interaction["guild_id"]
    body = json.dumps(interaction).encode()
    [event] = discord.parse_interaction(interaction_headers(body), body).events
    assert event["metadata"]["reported_by"] == "80351110224678912"
    assert "guild_id" not in event["metadata"]
    assert event["metadata"]["reporter_permissions"] is None


def test_snowflake_time_matches_discords_own_timestamp() -> None:
    assert discord.snowflake_time("867793854505943041") == "2021-07-22T15:42:57.744000+00:00"


def test_report_with_a_non_snowflake_id_is_400() -> None:
    interaction = json.loads(payload("discord", "interaction_report_message"))
    interaction["id"] = "not-a-snowflake"
    body = json.dumps(interaction).encode()
    with pytest.raises(WebhookRejected) as caught:
        discord.parse_interaction(interaction_headers(body), body)
    assert caught.value.status == 400


def test_other_commands_get_an_ephemeral_not_supported() -> None:
    body = payload("discord", "interaction_slash_command")
    inbound = discord.parse_interaction(interaction_headers(body), body)
    assert inbound.events == []
    assert inbound.reply == (
        200,
        {"type": 4, "data": {"content": discord.UNSUPPORTED, "flags": 64}},
        {"Content-Type": "application/json"},
    )


def test_autocomplete_gets_empty_choices() -> None:
    body = b'{"type": 4, "id": "1", "data": {"name": "blep", "options": []}}'
    inbound = discord.parse_interaction(interaction_headers(body), body)
    assert inbound.reply == (200, {"type": 8, "data": {"choices": []}}, {"Content-Type": "application/json"})


# --- Gateway bridge ---------------------------------------------------------------------------


def test_bridge_verifies_with_standard_webhooks() -> None:
    body = payload("discord", "bridge_message_create")
    discord.verify_bridge(bridge_headers(body), body, secret=BRIDGE_SECRET, now=NOW)


@pytest.mark.parametrize(
    ("change", "now"),
    [
        ({"webhook-signature": "v1,AAAA"}, NOW),
        ({"webhook-id": "msg_other"}, NOW),
        ({}, NOW + 301),
        ({}, NOW - 301),
    ],
)
def test_bridge_rejections_are_401(change: dict[str, str], now: int) -> None:
    body = payload("discord", "bridge_message_create")
    with pytest.raises(WebhookRejected) as caught:
        discord.verify_bridge(bridge_headers(body) | change, body, secret=BRIDGE_SECRET, now=now)
    assert caught.value.status == 401


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_bridge_missing_header_is_401(missing: str) -> None:
    body = payload("discord", "bridge_message_create")
    headers = bridge_headers(body)
    del headers[missing]
    with pytest.raises(WebhookRejected) as caught:
        discord.verify_bridge(headers, body, secret=BRIDGE_SECRET, now=NOW)
    assert caught.value.status == 401


def test_bridge_message_create_reply_to_deleted_message_targets_the_mention() -> None:
    body = payload("discord", "bridge_message_create")
    inbound = discord.parse_bridge(bridge_headers(body), body)
    assert inbound.dedup_key == "msg_2F4a9sQ1:42"
    assert only_event(inbound) == {
        "event_id": "1234567890123456789",
        "platform": "discord",
        "user_id": "80351110224678912",
        "author_id": "53908099506183680",
        "content": "<@80351110224678912> nobody wants you here",
        "channel_id": "290926798999357250",
        "metadata": {
            "timestamp": "2024-06-01T12:00:00.123000+00:00",
            "mentions": ["80351110224678912"],
            "mention_roles": [],
            "mention_everyone": False,
            "author_name": "Mason",
            "author_username": "mason",
            "author_roles": [],
            "attachments": 0,
            "message_type": 19,
            "source": "gateway",
            "guild_id": "197038439483310086",
            "message_id": "1234567890123456789",
            "reply_to_message_id": "1234567890123450000",
            "gateway_seq": 42,
        },
    }


def test_bridge_batch_keeps_people_and_automod_and_skips_the_rest() -> None:
    body = payload("discord", "bridge_batch")
    inbound = discord.parse_bridge(bridge_headers(body), body)
    assert inbound.notes == {"skipped": 3}  # bot message, member join, TYPING_START
    reply, image, automod = inbound.events
    assert reply["event_id"] == "1234567890123459999"
    assert reply["user_id"] == "80351110224678912"  # the replied-to author, ahead of the mention
    assert reply["metadata"]["mentions"] == ["222222222222222222"]
    assert reply["metadata"]["mention_roles"] == ["999999999999999999"]
    assert reply["metadata"]["author_roles"] == ["41771983423143936"]
    assert image["content"] == "" and image["metadata"]["attachments"] == 1 and image["user_id"] is None
    assert automod == {
        "event_id": "automod:197038439483310086:969707018069872670:53908099506183680:"
        + hashlib.sha256(b"<@80351110224678912> you absolute <slur>").hexdigest()[:16],
        "platform": "discord",
        "user_id": "80351110224678912",
        "author_id": "53908099506183680",
        "content": "<@80351110224678912> you absolute <slur>",
        "channel_id": "290926798999357250",
        "metadata": {
            "timestamp": "2024-06-01T12:00:09+00:00",
            "guild_id": "197038439483310086",
            "mentions": ["80351110224678912"],
            "rule_id": "969707018069872670",
            "rule_trigger_type": 4,
            "automod_action": {"type": 1, "metadata": {"custom_message": "Please keep it civil"}},
            "matched_keyword": None,
            "matched_content": "<slur>",
            "blocked": True,
            "source": "automod",
            "gateway_seq": 48,
        },
    }


def test_bridge_message_update_is_a_new_event_for_the_same_message() -> None:
    body = payload("discord", "bridge_message_update")
    discord.verify_bridge(bridge_headers(body), body, secret=BRIDGE_SECRET, now=NOW)
    original = only_event(discord.parse_bridge({}, payload("discord", "bridge_message_create")))
    edit = only_event(discord.parse_bridge(bridge_headers(body), body))
    # The original as it was, with the new words, the edit time, its own id and the edit marks.
    # message_id stays: DELETE /channels/{channel}/messages/{message_id} acts on the edited message.
    assert edit == {
        **original,
        "event_id": "1234567890123456789:edit:2024-06-01T12:05:00.456000+00:00",
        "content": "<@80351110224678912> nobody wants you here, you pathetic loser",
        "metadata": {
            **original["metadata"],
            "timestamp": "2024-06-01T12:05:00.456000+00:00",
            "edited": True,
            "original_event_id": "1234567890123456789",
            "gateway_seq": 51,
        },
    }
    assert original["metadata"]["message_id"] == "1234567890123456789"
    assert edit["metadata"]["original_event_id"] == original["event_id"]


def test_each_edit_has_its_own_id_and_a_redelivery_keeps_it() -> None:
    envelope = json.loads(payload("discord", "bridge_message_update"))
    first = json.dumps(envelope).encode()
    again = only_event(discord.parse_bridge(bridge_headers(first, "msg_other:99"), first))
    assert again["event_id"] == only_event(discord.parse_bridge(bridge_headers(first), first))["event_id"]
    envelope["data"]["d"] |= {"content": "third version", "edited_timestamp": "2024-06-01T12:06:00.000000+00:00"}
    second = json.dumps(envelope).encode()
    assert only_event(discord.parse_bridge(bridge_headers(second), second))["event_id"] == (
        "1234567890123456789:edit:2024-06-01T12:06:00+00:00"
    )


def test_updates_that_are_not_edits_are_skipped() -> None:
    body = payload("discord", "bridge_message_update_not_edits")
    inbound = discord.parse_bridge(bridge_headers(body), body)
    assert inbound.events == [] and inbound.notes == {"skipped": 2}  # embed resolved, pin of an unedited message


def test_edits_by_bots_are_skipped() -> None:
    envelope = json.loads(payload("discord", "bridge_message_update"))
    envelope["data"]["d"]["author"]["bot"] = True
    body = json.dumps(envelope).encode()
    assert discord.parse_bridge(bridge_headers(body), body).notes == {"skipped": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"author": None}, "message.author"),
        ({"id": None}, "message.id"),
        ({"content": 7}, "message.content"),
        ({"edited_timestamp": "soon"}, "d.edited_timestamp"),
        ({"edited_timestamp": "2024-06-01T12:05:00"}, "d.edited_timestamp"),
    ],
)
def test_malformed_edit_is_400_naming_the_field(change: dict[str, object], field: str) -> None:
    envelope = json.loads(payload("discord", "bridge_message_update"))
    envelope["data"]["d"] |= change
    body = json.dumps(envelope).encode()
    with pytest.raises(WebhookRejected) as caught:
        discord.parse_bridge(bridge_headers(body), body)
    assert caught.value.status == 400 and caught.value.reason.startswith(field + " ")


def test_automod_on_a_posted_message_shares_the_message_id() -> None:
    body = payload("discord", "bridge_automod")
    event = only_event(discord.parse_bridge(bridge_headers(body), body))
    assert event["event_id"] == "1234567890123461000"
    assert event["metadata"]["message_id"] == "1234567890123461000"
    assert event["metadata"]["blocked"] is False
    assert event["metadata"]["timestamp"] == "2024-06-01T12:00:10+00:00"
    assert event["user_id"] is None


def test_automod_without_envelope_time_uses_the_delivery_time() -> None:
    envelope = json.loads(payload("discord", "bridge_automod"))
    del envelope["timestamp"]
    body = json.dumps(envelope).encode()
    event = only_event(discord.parse_bridge(bridge_headers(body), body))
    assert event["metadata"]["timestamp"] == "2024-06-01T12:00:00+00:00"


def test_oversized_bridge_batch_is_413() -> None:
    frame = json.loads(payload("discord", "bridge_message_create"))["data"]
    body = json.dumps({"type": "discord.gateway.batch", "data": {"events": [frame] * 501}}).encode()
    with pytest.raises(WebhookRejected) as caught:
        discord.parse_bridge(bridge_headers(body), body)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"type": "discord.message_create"}',
        b'{"data": {"t": "MESSAGE_CREATE", "s": 1, "d": []}}',
        b'{"data": {"t": "MESSAGE_UPDATE", "s": 1, "d": null}}',
    ],
)
def test_malformed_bridge_body_is_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as caught:
        discord.parse_bridge(bridge_headers(body), body)
    assert caught.value.status == 400


def test_rejections_never_carry_message_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    text = "nobody wants you here"
    frame = json.loads(payload("discord", "bridge_message_create"))
    frame["data"]["d"]["timestamp"] = text
    bad_time = json.dumps(frame).encode()
    del frame["data"]["d"]["author"]
    no_author = json.dumps(frame).encode()
    for body in (bad_time, no_author, no_author[:-5]):
        with pytest.raises(WebhookRejected) as caught:
            discord.parse_bridge(bridge_headers(body), body)
        assert caught.value.status == 400
        assert_hides(text, caught.value, caplog.text)
    interaction = json.loads(payload("discord", "interaction_report_message"))
    del interaction["data"]["resolved"]["messages"]["867793854505943041"]["channel_id"]
    body = json.dumps(interaction).encode()
    with pytest.raises(WebhookRejected) as caught:
        discord.parse_interaction(interaction_headers(body), body)
    assert_hides("worthless clown", caught.value, caplog.text)
