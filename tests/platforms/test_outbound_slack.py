"""The Slack client against a local fake of the Web API (platforms.md §3.4): delete or notify."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import Settings
from app.platforms.outbound import PermanentError
from app.platforms.outbound.slack import SlackClient
from tests.fakes.platform_servers import FakePlatforms, Reply, make_transport
from tests.fakes.rows import EVENTS, request_for

CHANNEL = EVENTS["slack"]["channel_id"]
TS = EVENTS["slack"]["metadata"]["message_id"]
USER = EVENTS["slack"]["author_id"]


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


@pytest.fixture
def transport(rds):  # type: ignore[no-untyped-def]
    return make_transport(rds)


def slack(fakes: FakePlatforms, transport, **overrides: str) -> SlackClient:  # type: ignore[no-untyped-def]
    return SlackClient(Settings.from_mapping(fakes.settings() | overrides), transport)


def test_delete_uses_the_admin_user_token(fakes, transport):
    outcome = slack(fakes, transport).apply(request_for("slack", "delete_message"))

    [seen] = fakes.slack.requests
    assert (seen.method, seen.path) == ("POST", "/chat.delete")
    assert seen.headers["authorization"] == "Bearer xoxp-admin-token-for-tests"
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    assert seen.json() == {"channel": CHANNEL, "ts": TS}
    assert outcome.status == 200 and (CHANNEL, TS) in fakes.slack.deleted


def test_without_an_admin_token_moderators_are_asked_to_delete(fakes, transport):
    outcome = slack(fakes, transport, SLACK_ADMIN_TOKEN="").apply(request_for("slack", "delete_message"))

    [seen] = fakes.slack.requests
    assert seen.path == "/chat.postMessage"
    assert seen.headers["authorization"] == "Bearer xoxb-bot-token-for-tests"
    body = seen.json()
    assert body["channel"] == "C0MODS" and body["unfurl_links"] is False
    assert f"<@{USER}>" in body["text"] and TS in body["text"] and f"<#{CHANNEL}>" in body["text"]
    assert outcome.note == "moderators notified" and fakes.slack.deleted == set()


def test_sanctions_slack_cannot_apply_become_moderator_notifications(fakes, transport):
    request = request_for("slack", "timeout", duration_s=24 * 3600)
    slack(fakes, transport).apply(request)
    [post] = fakes.slack.posts
    assert "time out" in post["text"] and "24 h" in post["text"] and request.action_id in post["text"]


def test_a_message_already_gone_counts_as_deleted(fakes, transport):
    fakes.slack.deleted.add((CHANNEL, TS))
    outcome = slack(fakes, transport).apply(request_for("slack", "delete_message"))
    assert "message_not_found" in outcome.note


def test_logical_errors_are_permanent_and_try_again_errors_retried(fakes, transport):
    client = slack(fakes, transport, SLACK_ADMIN_TOKEN="xoxb-bot-token-for-tests")  # a bot token cannot delete
    with pytest.raises(PermanentError) as caught:
        client.apply(request_for("slack", "delete_message"))
    assert caught.value.code == "cant_delete_message" and len(fakes.slack.requests) == 1

    fakes.slack.script("POST", "/chat.postMessage", Reply(200, {"ok": False, "error": "internal_error"}))
    outcome = slack(fakes, transport).apply(request_for("slack", "ban"))
    assert outcome.attempts == ["internal_error", 200]


def test_a_429_waits_retry_after(fakes, transport):
    fakes.slack.script("POST", "/chat.delete", Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))
    outcome = slack(fakes, transport).apply(request_for("slack", "delete_message"))

    first, second = fakes.slack.requests
    assert second.at - first.at >= 1 and outcome.attempts == [429, 200]


def test_a_notification_without_a_moderator_channel_is_a_configuration_error(fakes, transport):
    client = slack(fakes, transport, SLACK_MODERATOR_CHANNEL="")
    with pytest.raises(PermanentError, match="SLACK_MODERATOR_CHANNEL"):
        client.apply(request_for("slack", "ban"))
    assert fakes.slack.requests == []


def test_reversal_tells_the_moderators(fakes, transport):
    slack(fakes, transport).reverse(request_for("slack", "ban", reason="reversed by moderator:ana"))
    [post] = fakes.slack.posts
    assert post["text"].startswith("Reversed:") and "moderator:ana" in post["text"]
