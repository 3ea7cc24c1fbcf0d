"""The Twitch Helix moderation client against a local fake of Helix (platforms.md §2.3)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from app.config import Settings
from app.platforms.outbound import PermanentError
from app.platforms.outbound.twitch import TwitchClient
from tests.fakes.platform_servers import FakePlatforms, FakeTwitch, Reply, make_transport, twitch_429, twitch_error
from tests.fakes.rows import EVENTS, request_for

BROADCASTER = EVENTS["twitch"]["metadata"]["broadcaster_id"]
USER = EVENTS["twitch"]["author_id"]
MESSAGE = EVENTS["twitch"]["metadata"]["message_id"]
QUERY = {"broadcaster_id": BROADCASTER, "moderator_id": "5678"}


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


@pytest.fixture
def transport(rds):  # type: ignore[no-untyped-def]
    return make_transport(rds, max_inline_wait_s=3.0)


@pytest.fixture
def twitch(fakes, transport) -> TwitchClient:  # type: ignore[no-untyped-def]
    return TwitchClient(Settings.from_mapping(fakes.settings()), transport)


def test_timeout_is_a_ban_with_a_duration_as_the_moderator(fakes, twitch):
    outcome = twitch.apply(request_for("twitch", "timeout", duration_s=3600))

    [seen] = fakes.twitch.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/moderation/bans", QUERY)
    assert seen.headers["authorization"] == "Bearer twitch-moderator-token"
    assert seen.headers["client-id"] == "twitch-client-id-for-tests"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {"data": {"user_id": USER, "duration": 3600,
                                    "reason": "targeted_harassment (safety action A1)"}}
    assert outcome.status == 200
    assert outcome.expires_at == fakes.twitch.bans[(BROADCASTER, USER)] is not None


def test_a_mute_longer_than_two_weeks_is_clamped_to_twitchs_maximum(fakes, twitch):
    twitch.apply(request_for("twitch", "mute", duration_s=30 * 86_400))
    assert fakes.twitch.requests[0].json()["data"]["duration"] == 1_209_600


def test_ban_warn_delete_and_unban(fakes, twitch):
    twitch.apply(request_for("twitch", "ban"))
    twitch.apply(request_for("twitch", "warning"))
    twitch.apply(request_for("twitch", "delete_message"))
    twitch.reverse(request_for("twitch", "ban"))

    ban, warn, delete, unban = fakes.twitch.requests
    assert ban.json() == {"data": {"user_id": USER, "reason": "targeted_harassment (safety action A1)"}}
    assert (warn.method, warn.path, warn.query) == ("POST", "/moderation/warnings", QUERY)
    assert warn.json() == {"data": {"user_id": USER, "reason": "targeted_harassment (safety action A1)"}}
    assert (delete.method, delete.path, delete.query) == ("DELETE", "/moderation/chat",
                                                          QUERY | {"message_id": MESSAGE})
    assert (unban.method, unban.path, unban.query, unban.body) == ("DELETE", "/moderation/bans",
                                                                   QUERY | {"user_id": USER}, b"")
    assert fakes.twitch.bans == {} and (BROADCASTER, MESSAGE) in fakes.twitch.deleted
    assert fakes.twitch.warnings[0]["user_id"] == USER


def test_a_delete_without_a_message_id_is_never_sent(fakes, twitch):
    """Helix deletes the whole chat when message_id is missing."""
    with pytest.raises(PermanentError, match="message id"):
        twitch.apply(request_for("twitch", "delete_message", message_id=None))
    assert fakes.twitch.requests == [] and fakes.twitch.chat_cleared == []


def test_409_conflict_and_503_are_retried(fakes, twitch):
    fakes.twitch.script("POST", "/moderation/bans", twitch_error(409, "Conflict"), twitch_error(503, "Unavailable"))
    outcome = twitch.apply(request_for("twitch", "ban"))
    assert outcome.attempts == [409, 503, 200] and (BROADCASTER, USER) in fakes.twitch.bans


def test_a_429_waits_until_ratelimit_reset(fakes, twitch):
    reset = int(time.time()) + 1
    fakes.twitch.script("POST", "/moderation/warnings", twitch_429(reset))
    outcome = twitch.apply(request_for("twitch", "warning"))

    _, second = fakes.twitch.requests
    assert second.at >= reset and outcome.attempts == [429, 200]


def test_an_empty_points_bucket_makes_the_next_call_wait_for_the_reset(fakes, twitch, transport):
    reset = time.time() + 0.6
    fakes.twitch.script("POST", "/moderation/warnings", Reply(200, {"data": [{}]}, {
        "Ratelimit-Limit": "800", "Ratelimit-Remaining": "0", "Ratelimit-Reset": f"{reset:.3f}"}))
    twitch.apply(request_for("twitch", "warning"))
    twitch.apply(request_for("twitch", "ban"))

    [wait] = transport.sleep.waits
    assert 0 < wait <= 0.6 and fakes.twitch.requests[1].at >= reset


def test_auth_and_permission_errors_are_permanent(fakes, transport, twitch):
    fakes.twitch.script("POST", "/moderation/bans", twitch_error(403, "The user in moderator_id is not a moderator"))
    with pytest.raises(PermanentError) as forbidden:
        twitch.apply(request_for("twitch", "ban"))
    stale = TwitchClient(Settings.from_mapping(fakes.settings() | {"TWITCH_MODERATOR_TOKEN": "expired"}), transport)
    with pytest.raises(PermanentError) as unauthorized:
        stale.apply(request_for("twitch", "ban"))
    assert forbidden.value.status == 403 and unauthorized.value.status == 401
    assert len(fakes.twitch.requests) == 2


def test_already_banned_is_an_error_first_time_and_done_on_a_repeated_delivery(fakes, twitch):
    fakes.twitch.bans[(BROADCASTER, USER)] = None
    with pytest.raises(PermanentError) as caught:
        twitch.apply(request_for("twitch", "ban"))
    repeated = twitch.apply(request_for("twitch", "ban", delivery=1))
    assert caught.value.status == 400
    assert repeated.status == 400 and "already in effect" in repeated.note


def test_a_missing_message_on_a_repeated_delete_is_done(fakes, twitch):
    fakes.twitch.deleted.add((BROADCASTER, MESSAGE))
    with pytest.raises(PermanentError):  # first time: unknown, or older than 6 hours
        twitch.apply(request_for("twitch", "delete_message"))
    assert twitch.apply(request_for("twitch", "delete_message", delivery=2)).status == 404


def test_lifting_a_timeout_that_already_ran_out_is_done(fakes, twitch):
    outcome = twitch.reverse(request_for("twitch", "timeout"))
    assert outcome.status == 400 and "already in effect" in outcome.note


def refreshing(fakes, transport) -> TwitchClient:  # type: ignore[no-untyped-def]
    return TwitchClient(Settings.from_mapping(fakes.settings() | fakes.twitch_refresh_settings()), transport)


def test_a_rejected_token_is_refreshed_once_and_every_worker_uses_the_new_one(fakes, transport, rds):
    fakes.twitch.token = "issued-elsewhere"  # the configured token has expired
    outcome = refreshing(fakes, transport).apply(request_for("twitch", "ban"))
    assert outcome.status == 200 and fakes.twitch.bans[(BROADCASTER, USER)] is None
    assert [(r.method, r.path) for r in fakes.twitch.requests] == [("POST", "/moderation/bans")] * 2
    assert [r.headers["authorization"] for r in fakes.twitch.requests] == [
        f"Bearer {FakeTwitch.token}", "Bearer twitch-access-token-1"]
    assert fakes.twitch_id.issued == 1 and fakes.twitch_id.requests[0].path == "/token"

    other_worker = refreshing(fakes, make_transport(rds))
    other_worker.apply(request_for("twitch", "warning"))
    assert fakes.twitch.requests[-1].headers["authorization"] == "Bearer twitch-access-token-1"
    assert fakes.twitch_id.issued == 1 and len(fakes.twitch.requests) == 3  # no 401, no second refresh

    fakes.twitch.token = "expired-again"  # hours later: the rotated refresh token is the one that works now
    other_worker.apply(request_for("twitch", "delete_message", message_id=MESSAGE))
    assert fakes.twitch_id.issued == 2 and fakes.twitch.requests[-1].headers["authorization"] == (
        "Bearer twitch-access-token-2")


def test_workers_hit_by_the_same_401_refresh_once(fakes, rds):
    fakes.twitch.token = "issued-elsewhere"
    clients = [refreshing(fakes, make_transport(rds)) for _ in range(4)]
    errors: list[BaseException] = []

    def ban(client: TwitchClient, user: str) -> None:
        try:
            client.apply(request_for("twitch", "ban", user_id=user))
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=ban, args=(client, f"10{i}")) for i, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and fakes.twitch_id.issued == 1
    assert {(BROADCASTER, f"10{i}") for i in range(4)} <= set(fakes.twitch.bans)


def test_without_a_refresh_token_a_401_says_how_to_fix_it(fakes, transport):
    stale = TwitchClient(Settings.from_mapping(fakes.settings() | {"TWITCH_MODERATOR_TOKEN": "expired"}), transport)
    with pytest.raises(PermanentError) as rejected:
        stale.apply(request_for("twitch", "ban"))
    assert rejected.value.status == 401 and rejected.value.code == "token_rejected"
    assert "TWITCH_REFRESH_TOKEN" in rejected.value.reason and fakes.twitch_id.requests == []


def test_a_refused_refresh_fails_for_good_and_says_to_reauthorise(fakes, transport):
    fakes.twitch.token = "issued-elsewhere"
    fakes.twitch_id.refresh_token = "the-moderator-revoked-our-access"
    with pytest.raises(PermanentError) as refused:
        refreshing(fakes, transport).apply(request_for("twitch", "ban"))
    assert refused.value.status == 400 and refused.value.code == "token_refresh_refused"
    assert "re-authorise" in refused.value.reason and len(fakes.twitch.requests) == 1
