"""Standard Webhooks v1 verification, shared by the Discord bridge and web chat."""

from __future__ import annotations

import pytest

from app.platforms import WebhookRejected, standard_webhooks
from tests.platforms import vectors

NEW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_hhFwD9Wo9Sn/0uqF0VuXrgBS4RFgjxteYBz18sbMX3g="


def vector_headers(name: str) -> tuple[dict[str, str], bytes, str, int]:
    vector = vectors()[name]
    headers = {k: vector[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    return headers, vector["body"].encode(), vector["secret"], int(vector["webhook-timestamp"])


@pytest.mark.parametrize("name", ["standard_webhooks_lib_vector", "webchat_standard_webhooks"])
def test_reference_vectors_verify_and_sign(name: str) -> None:
    headers, body, secret, timestamp = vector_headers(name)
    assert standard_webhooks.sign(secret, headers["webhook-id"], timestamp, body) == headers["webhook-signature"]
    standard_webhooks.verify(headers, body, secret=secret, now=timestamp)


def test_secret_without_prefix_is_the_same_key() -> None:
    headers, body, secret, timestamp = vector_headers("standard_webhooks_lib_vector")
    standard_webhooks.verify(headers, body, secret=secret.removeprefix("whsec_"), now=timestamp)


def test_any_of_several_signatures_may_match() -> None:
    """A sender rotating its key sends old and new signatures side by side."""
    headers, body, secret, timestamp = vector_headers("standard_webhooks_lib_vector")
    stale = standard_webhooks.sign(OLD_SECRET, headers["webhook-id"], timestamp, body)
    headers["webhook-signature"] = f"v1a,bm90LWVkMjU1MTk= {stale} {headers['webhook-signature']}"
    standard_webhooks.verify(headers, body, secret=secret, now=timestamp)


def test_we_can_rotate_our_secret_too() -> None:
    headers, body, secret, timestamp = vector_headers("standard_webhooks_lib_vector")
    standard_webhooks.verify(headers, body, secret=[OLD_SECRET, secret], now=timestamp)


@pytest.mark.parametrize(
    "signature",
    [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",  # one character off
        "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",  # right bytes, unknown version
        "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",  # no version
        "v1,",
    ],
)
def test_wrong_signatures_are_401(signature: str) -> None:
    headers, body, secret, timestamp = vector_headers("standard_webhooks_lib_vector")
    with pytest.raises(WebhookRejected) as caught:
        standard_webhooks.verify(headers | {"webhook-signature": signature}, body, secret=secret, now=timestamp)
    assert caught.value.status == 401


@pytest.mark.parametrize(("offset", "reason"), [(301, "too old"), (-301, "too new")])
def test_timestamps_outside_five_minutes_are_401(offset: int, reason: str) -> None:
    headers, body, secret, timestamp = vector_headers("standard_webhooks_lib_vector")
    standard_webhooks.verify(headers, body, secret=secret, now=timestamp + offset - (1 if offset > 0 else -1))
    with pytest.raises(WebhookRejected) as caught:
        standard_webhooks.verify(headers, body, secret=secret, now=timestamp + offset)
    assert caught.value.status == 401 and reason in caught.value.reason


def test_non_integer_timestamp_is_401() -> None:
    headers, body, secret, timestamp = vector_headers("standard_webhooks_lib_vector")
    with pytest.raises(WebhookRejected) as caught:
        standard_webhooks.verify(headers | {"webhook-timestamp": "1614265330.0"}, body, secret=secret, now=timestamp)
    assert caught.value.status == 401


@pytest.mark.parametrize("secret", ["", [], ["", ""]])
def test_unconfigured_secret_is_503(secret: str | list[str]) -> None:
    headers, body, _, timestamp = vector_headers("standard_webhooks_lib_vector")
    with pytest.raises(WebhookRejected) as caught:
        standard_webhooks.verify(headers, body, secret=secret, now=timestamp, setting="WEB_WEBHOOK_SECRET")
    assert caught.value.status == 503 and "WEB_WEBHOOK_SECRET" in caught.value.reason


def test_secret_that_is_not_base64_is_503() -> None:
    headers, body, _, timestamp = vector_headers("standard_webhooks_lib_vector")
    with pytest.raises(WebhookRejected) as caught:
        standard_webhooks.verify(headers, body, secret="whsec_not base64!", now=timestamp)
    assert caught.value.status == 503
