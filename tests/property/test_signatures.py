"""The signature checks of app/platforms against the reference vectors: a changed byte or header is
refused with the platform's 4xx, and no header value, signed or not, raises anything else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from app.platforms import WebhookRejected, discord, slack, standard_webhooks, twitch
from tests.platforms import vectors

# What a WSGI server can hand over as a header value (latin-1), and any other text a caller might pass.
HEADER_TEXT = st.text(st.characters(max_codepoint=0xFF), max_size=80) | st.text(
    st.characters(codec="utf-8"), max_size=40) | st.sampled_from(["²", "٣٣", "1e3", "-1", "9" * 40, " 1", "0x1f"])


SIGNATURES = {"Twitch-Eventsub-Message-Signature", "X-Slack-Signature", "webhook-signature", "X-Signature-Ed25519"}


@dataclass(frozen=True)
class Case:
    headers: dict[str, str]
    body: bytes
    check: Callable[[dict[str, str], bytes], None]
    statuses: tuple[int, ...]
    # Re-sign after a header changed, as a sender holding the key would: (headers) -> headers.
    resign: Callable[[dict[str, str], bytes], dict[str, str]]


def _twitch(name: str) -> Case:
    v = vectors()[name]
    sent = datetime.fromisoformat(v["Twitch-Eventsub-Message-Timestamp"]).timestamp()

    def resign(h: dict[str, str], body: bytes) -> dict[str, str]:
        return h | {"Twitch-Eventsub-Message-Signature": twitch.sign(
            v["secret"], h["Twitch-Eventsub-Message-Id"], h["Twitch-Eventsub-Message-Timestamp"], body)}

    signed = ("Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Timestamp", "Twitch-Eventsub-Message-Signature")
    return Case({k: v[k] for k in signed}, v["body"].encode(),
                lambda h, b: twitch.verify(h, b, secret=v["secret"], now=sent + 1), (403,), resign)


def _slack(name: str) -> Case:
    v = vectors()[name]
    ts = v["X-Slack-Request-Timestamp"]

    def resign(h: dict[str, str], body: bytes) -> dict[str, str]:
        return h | {"X-Slack-Signature": slack.sign(v["signing_secret"], h["X-Slack-Request-Timestamp"], body)}

    return Case({k: v[k] for k in v if k.startswith("X-Slack-")}, v["body"].encode(),
                lambda h, b: slack.verify(h, b, secret=v["signing_secret"], now=int(ts) + 10), (401,), resign)


def _standard(name: str) -> Case:
    v = vectors()[name]

    def resign(h: dict[str, str], body: bytes) -> dict[str, str]:
        return h | {"webhook-signature": standard_webhooks.sign(v["secret"], h["webhook-id"], h["webhook-timestamp"],
                                                                body)}

    return Case({k: v[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}, v["body"].encode(),
                lambda h, b: standard_webhooks.verify(h, b, secret=v["secret"], now=int(v["webhook-timestamp"])),
                (401,), resign)


def _discord() -> Case:
    v = vectors()["discord_ping"]
    key = SigningKey(bytes.fromhex(v["private_seed_hex"]))

    def resign(h: dict[str, str], body: bytes) -> dict[str, str]:
        signed = key.sign(h["X-Signature-Timestamp"].encode() + body).signature.hex()
        return h | {"X-Signature-Ed25519": signed}

    return Case({k: v[k] for k in ("X-Signature-Ed25519", "X-Signature-Timestamp")}, v["body"].encode(),
                lambda h, b: discord.verify_interaction(h, b, public_key=v["public_key_hex"],
                                                        now=int(v["X-Signature-Timestamp"])), (401,), resign)


CASES = {"twitch_chat_message": _twitch("twitch_chat_message"),
         "twitch_follow_third_party": _twitch("twitch_follow_third_party"),
         "slack_doc_vector": _slack("slack_doc_vector"), "slack_message_event": _slack("slack_message_event"),
         "standard_webhooks_lib_vector": _standard("standard_webhooks_lib_vector"),
         "webchat_standard_webhooks": _standard("webchat_standard_webhooks"), "discord_ping": _discord()}


def outcome(case: Case, headers: dict[str, str], body: bytes) -> int:
    """200 when the check passes, else the status it refused with; anything else propagates."""
    try:
        case.check(headers, body)
    except WebhookRejected as exc:
        return exc.status
    return 200


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_reference_vector_passes(name: str) -> None:
    assert outcome(CASES[name], CASES[name].headers, CASES[name].body) == 200


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_any_other_body_is_refused(name: str, data: st.DataObject) -> None:
    case = CASES[name]
    body = data.draw(st.binary(max_size=300) | st.integers(0, max(len(case.body) - 1, 0)).map(
        lambda i: case.body[:i] + bytes([case.body[i] ^ 1]) + case.body[i + 1:]))
    if body != case.body:
        assert outcome(case, case.headers, body) in case.statuses


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_any_header_value_is_refused_with_the_platforms_status(name: str, data: st.DataObject) -> None:
    case = CASES[name]
    header = data.draw(st.sampled_from(sorted(case.headers)))
    value = data.draw(HEADER_TEXT)
    status = outcome(case, case.headers | {header: value}, case.body)
    assert status == 200 if value == case.headers[header] else status in case.statuses


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_a_signed_but_malformed_header_is_refused_or_passes_never_raises(name: str, data: st.DataObject) -> None:
    """A sender holding the key can still send any timestamp or id: the check must answer, not crash."""
    case = CASES[name]
    header = data.draw(st.sampled_from([h for h in sorted(case.headers) if h not in SIGNATURES]))
    headers = case.resign(case.headers | {header: data.draw(HEADER_TEXT)}, case.body)
    assert outcome(case, headers, case.body) in (200, *case.statuses)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_missing_header_is_refused(name: str) -> None:
    case = CASES[name]
    for header in case.headers:
        assert outcome(case, {k: v for k, v in case.headers.items() if k != header}, case.body) in case.statuses
