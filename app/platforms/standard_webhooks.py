"""Standard Webhooks v1 signature verification (HMAC-SHA256, ``v1``), written against the spec.

Used by every sender whose wire format is ours to choose: the Discord gateway bridge and web chat.
Signed content is ``f"{webhook-id}.{webhook-timestamp}.{raw body}"``; the key is the base64-decoded
``whsec_`` secret, not the string. The signature header may list several ``version,base64``
entries (the sender rotating its key), and any valid ``v1`` entry is enough. ``v1a`` (Ed25519)
entries are ignored: we only hold symmetric secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from app.platforms.base import WebhookRejected, is_digits, require_headers, require_key

WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"

# The reference libraries refuse timestamps more than 5 minutes old *or* ahead; the sender
# stamps each attempt afresh, so a retry after a refusal carries a current timestamp.
TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
# Every verification failure is 401: Standard Webhooks leaves the status to us, and any
# non-2xx makes the sender retry with backoff.
UNAUTHORIZED = 401


def decode_secret(secret: str, setting: str) -> bytes:
    """``whsec_<base64>`` (or bare base64, as the reference libraries also accept) to key bytes."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected(503, f"{setting} is not valid base64") from None


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` entry a sender produces (``v1,<base64>``); for bridges and tests."""
    key = decode_secret(secret, "secret")
    return "v1," + _digest(key, webhook_id, str(timestamp), body)


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | Sequence[str],
    now: float,
    setting: str = "webhook secret",
    tolerance: float = TOLERANCE_SECONDS,
) -> None:
    """Raise ``WebhookRejected`` unless a ``v1`` signature matches and the timestamp is current.

    ``secret`` may be a list so that *we* can rotate too: old and new secret both verify until
    the sender has switched. ``setting`` names the config variable in the 503 for a missing secret.
    """
    keys = _keys(secret, setting)
    webhook_id, timestamp, signatures = require_headers(
        headers, (WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE), status=UNAUTHORIZED
    )
    if not is_digits(timestamp):
        raise WebhookRejected(UNAUTHORIZED, "webhook-timestamp is not integer seconds")
    if not _any_signature_matches(keys, webhook_id, timestamp, body, signatures):
        raise WebhookRejected(UNAUTHORIZED, "no matching webhook signature")
    _check_fresh(int(timestamp), now, tolerance)


def _keys(secret: str | Sequence[str], setting: str) -> list[bytes]:
    secrets = [secret] if isinstance(secret, str) else [s for s in secret if s]
    require_key(secrets[0] if secrets else "", setting)
    return [decode_secret(s, setting) for s in secrets]


def _digest(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _any_signature_matches(keys: list[bytes], webhook_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """Compare every ``v1`` entry against every key, without short-cuts that leak timing."""
    candidates = [sig.encode() for version, _, sig in (e.partition(",") for e in header.split()) if version == "v1"]
    matched = False
    for key in keys:
        expected = _digest(key, webhook_id, timestamp, body).encode()
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    return matched


def _check_fresh(timestamp: int, now: float, tolerance: float) -> None:
    if now - timestamp > tolerance:
        raise WebhookRejected(UNAUTHORIZED, "webhook-timestamp too old")
    if timestamp - now > tolerance:
        raise WebhookRejected(UNAUTHORIZED, "webhook-timestamp too new")
