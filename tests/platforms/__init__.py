"""Helpers shared by the connector tests: recorded payloads, the reference vectors, leak checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.platforms import Inbound, WebhookRejected

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def vectors() -> dict[str, Any]:
    """The platform reference's re-verified signature vectors, copied into the test fixtures."""
    result: dict[str, Any] = json.loads((FIXTURES / "platform_test_vectors.json").read_text())
    return result


def payload(platform: str, name: str) -> bytes:
    """A recorded-style payload's exact bytes, which the tests sign as the platform would."""
    return (FIXTURES / "webhooks" / platform / f"{name}.json").read_bytes()


def assert_hides(text: str, rejected: WebhookRejected, log_text: str = "") -> None:
    """Message content must appear neither in the reason, the exception text nor the logs."""
    assert text not in rejected.reason
    assert text not in str(rejected)
    assert text not in repr(rejected.args)
    assert text not in log_text
    # A chained JSONDecodeError would carry the whole body into a logged traceback.
    assert rejected.__cause__ is None
    assert rejected.__context__ is None or rejected.__suppress_context__


def only_event(inbound: Inbound) -> dict[str, Any]:
    assert inbound.reply is None
    assert len(inbound.events) == 1
    return inbound.events[0]
