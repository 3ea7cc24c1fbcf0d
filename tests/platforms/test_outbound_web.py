"""The web-chat client: a Standard Webhooks signed callback to the site's moderation endpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.config import Settings
from app.platforms import standard_webhooks
from app.platforms.outbound import PermanentError
from app.platforms.outbound.web import WebClient
from tests.fakes.platform_servers import WEB_SECRET, FakePlatforms, Reply, make_transport
from tests.fakes.rows import EVENTS, request_for


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


@pytest.fixture
def web(fakes, rds) -> WebClient:  # type: ignore[no-untyped-def]
    return WebClient(Settings.from_mapping(fakes.settings()), make_transport(rds))


def test_the_callback_is_signed_and_carries_the_action_id_as_idempotency_key(fakes, web):
    request = request_for("web", "timeout", duration_s=3600, expires_at="2030-01-01T00:00:00+00:00")
    outcome = web.apply(request)

    [seen] = fakes.web.requests
    assert (seen.method, seen.path) == ("POST", "")
    standard_webhooks.verify(seen.headers, seen.body, secret=WEB_SECRET, now=time.time())  # raises if forged
    assert seen.headers["webhook-id"] == seen.headers["idempotency-key"] == request.action_id
    assert abs(int(seen.headers["webhook-timestamp"]) - time.time()) < 5
    body = seen.json()
    assert body["type"] == "moderation.action.requested"
    assert body["data"] == {"action_id": request.action_id, "event_id": "m_9001", "action_type": "timeout",
                            "user_id": EVENTS["web"]["author_id"], "room_id": "room_42", "message_id": "m_9001",
                            "duration_seconds": 3600, "expires_at": "2030-01-01T00:00:00+00:00",
                            "reason_code": "targeted_harassment",
                            "reason": "targeted_harassment (safety action A1)", "tenant_id": "acme"}
    assert outcome.status == 200 and list(fakes.web.deliveries) == [request.action_id]


def test_a_retried_delivery_keeps_its_id_and_is_freshly_signed(fakes, web):
    fakes.web.script("POST", "", Reply(503, {"error": {"code": "unavailable", "message": "try later"}}))
    outcome = web.apply(request_for("web", "ban"))
    web.apply(request_for("web", "ban"))  # a duplicate delivery of the same action

    first, second, third = fakes.web.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    assert outcome.attempts == [503, 200]
    assert len(fakes.web.deliveries) == 1 and fakes.web.duplicates == 1


def test_a_429_honours_retry_after(fakes, web):
    fakes.web.script("POST", "", Reply(429, {"error": {"code": "rate_limited", "message": "slow down"}},
                                       {"Retry-After": "1"}))
    web.apply(request_for("web", "warning"))
    first, second = fakes.web.requests
    assert second.at - first.at >= 1


@pytest.mark.parametrize("reply", [Reply(410, {"error": {"code": "gone", "message": "endpoint retired"}}),
                                   Reply(307, None, {"Location": "http://example.invalid/"}),
                                   Reply(404, {"error": {"code": "not_found", "message": "unknown room"}})])
def test_gone_redirects_and_client_errors_are_final(fakes, web, reply):
    fakes.web.script("POST", "", reply)
    with pytest.raises(PermanentError) as caught:
        web.apply(request_for("web", "ban"))
    assert caught.value.status == reply.status and len(fakes.web.requests) == 1


def test_reversal_is_its_own_delivery(fakes, web):
    request = request_for("web", "ban")
    web.apply(request)
    web.reverse(request)
    assert fakes.web.requests[1].headers["webhook-id"] == f"{request.action_id}-reverse"
    assert fakes.web.requests[1].json()["type"] == "moderation.action.reversed"
