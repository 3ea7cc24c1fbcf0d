"""The Discord REST client against a local fake of Discord's API (platforms.md §1.3)."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.config import Settings
from app.platforms.outbound import PermanentError, TransientError
from app.platforms.outbound.discord import DiscordClient
from tests.fakes.platform_servers import FakePlatforms, Reply, discord_429, discord_error, make_transport
from tests.fakes.rows import EVENTS, request_for

GUILD = EVENTS["discord"]["metadata"]["guild_id"]
USER = EVENTS["discord"]["author_id"]
CHANNEL = EVENTS["discord"]["channel_id"]
MESSAGE = EVENTS["discord"]["metadata"]["message_id"]
MEMBER = f"/guilds/{GUILD}/members/{USER}"


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


@pytest.fixture
def transport(rds):  # type: ignore[no-untyped-def]
    return make_transport(rds)


@pytest.fixture
def discord(fakes, transport) -> DiscordClient:  # type: ignore[no-untyped-def]
    return DiscordClient(Settings.from_mapping(fakes.settings()), transport)


def test_timeout_is_one_patch_with_bot_auth_user_agent_and_an_encoded_audit_reason(fakes, discord):
    outcome = discord.apply(request_for("discord", "timeout", duration_s=3600))

    [seen] = fakes.discord.requests
    assert (seen.method, seen.path) == ("PATCH", MEMBER)
    assert seen.headers["authorization"] == "Bot discord-bot-token-for-tests"
    assert re.fullmatch(r"DiscordBot \(https://\S+, \d+\.\d+\.\d+\)", seen.headers["user-agent"])
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-audit-log-reason"] == "targeted_harassment %28safety action A1%29"
    body = seen.json()
    assert list(body) == ["communication_disabled_until"]
    until = datetime.fromisoformat(body["communication_disabled_until"])
    assert abs((until - datetime.now(UTC)) - timedelta(hours=1)) < timedelta(seconds=10)
    assert outcome.status == 200 and outcome.expires_at == body["communication_disabled_until"]
    assert fakes.discord.timeouts[(GUILD, USER)] == body["communication_disabled_until"]


def test_a_mute_past_28_days_is_clamped_just_below_discords_limit(fakes, discord):
    discord.apply(request_for("discord", "mute", duration_s=60 * 86_400))

    until = datetime.fromisoformat(fakes.discord.requests[0].json()["communication_disabled_until"])
    assert timedelta(days=28) - timedelta(seconds=70) < until - datetime.now(UTC) < timedelta(days=28)
    assert fakes.discord.timeouts[(GUILD, USER)] is not None  # the fake refuses anything at or past 28 days


def test_a_long_or_non_ascii_audit_reason_is_truncated_then_percent_encoded(fakes, discord):
    reason = "harassment — " + "x" * 600
    discord.apply(request_for("discord", "ban", reason=reason))

    header = fakes.discord.requests[0].headers["x-audit-log-reason"]
    assert header.isascii() and len(header) <= 512
    assert reason.startswith(urllib.parse.unquote(header))
    assert "%E2%80%94" in header


def test_ban_and_unban(fakes, discord):
    assert discord.apply(request_for("discord", "ban")).status == 204
    assert discord.reverse(request_for("discord", "ban")).status == 204

    ban, unban = fakes.discord.requests
    assert (ban.method, ban.path, ban.json()) == ("PUT", f"/guilds/{GUILD}/bans/{USER}", {"delete_message_seconds": 0})
    assert (unban.method, unban.path, unban.body) == ("DELETE", f"/guilds/{GUILD}/bans/{USER}", b"")
    assert "content-type" not in unban.headers  # no body, no Content-Type
    assert fakes.discord.bans == set()


def test_removing_a_timeout_patches_null(fakes, discord):
    discord.apply(request_for("discord", "timeout", duration_s=600))
    outcome = discord.reverse(request_for("discord", "timeout"))

    assert fakes.discord.requests[-1].json() == {"communication_disabled_until": None}
    assert outcome.status == 200 and fakes.discord.timeouts[(GUILD, USER)] is None


def test_delete_message_and_already_deleted_or_unbanned_count_as_done(fakes, discord):
    first = discord.apply(request_for("discord", "delete_message"))
    again = discord.apply(request_for("discord", "delete_message"))
    unban = discord.reverse(request_for("discord", "ban"))

    assert fakes.discord.requests[0].path == f"/channels/{CHANNEL}/messages/{MESSAGE}"
    assert first.status == 204
    assert again.status == 404 and "10008" in again.note
    assert unban.status == 404 and "10026" in unban.note


def test_a_warning_is_a_direct_message_whose_nonce_makes_a_resend_harmless(fakes, discord):
    request = request_for("discord", "warning")
    discord.apply(request)
    discord.apply(request)

    open_dm, send = fakes.discord.requests[:2]
    assert (open_dm.method, open_dm.path, open_dm.json()) == ("POST", "/users/@me/channels", {"recipient_id": USER})
    assert (send.method, send.path) == ("POST", f"/channels/dm-{USER}/messages")
    assert send.json()["nonce"] == request.action_id[:25] and send.json()["enforce_nonce"] is True
    assert "targeted_harassment" in send.json()["content"]
    assert len(fakes.discord.messages) == 1


def test_a_bucket_429_waits_retry_after_then_succeeds(fakes, discord, transport, rds):
    fakes.discord.script("PATCH", MEMBER, discord_429(0.3))
    outcome = discord.apply(request_for("discord", "timeout", duration_s=600))

    first, second = fakes.discord.requests
    assert second.at - first.at >= 0.3
    assert outcome.attempts == [429, 200]
    assert transport.sleep.waits[0] >= 0.3


def test_a_long_429_is_handed_to_the_task_instead_of_slept(fakes, discord, transport):
    fakes.discord.script("PATCH", MEMBER, discord_429(64.57))
    with pytest.raises(TransientError) as caught:
        discord.apply(request_for("discord", "timeout", duration_s=600))

    assert caught.value.status == 429 and caught.value.retry_after >= 64.57
    assert len(fakes.discord.requests) == 1 and transport.sleep.waits == []


def test_a_global_429_pauses_every_route_of_every_worker(fakes, rds):
    transport = make_transport(rds, max_inline_wait_s=0.1)
    discord = DiscordClient(Settings.from_mapping(fakes.settings()), transport)
    fakes.discord.script("PUT", f"/guilds/{GUILD}/bans/{USER}", discord_429(5.0, is_global=True))
    with pytest.raises(TransientError):
        discord.apply(request_for("discord", "ban"))
    with pytest.raises(TransientError) as caught:  # another route: refused locally, nothing sent
        discord.apply(request_for("discord", "delete_message"))

    assert len(fakes.discord.requests) == 1
    assert caught.value.code == "local_rate_limit" and 4 < caught.value.retry_after <= 5.6  # plus jitter
    assert 3000 < rds.pttl("ratelimit:discord:global") <= 5000


def test_an_exhausted_bucket_delays_only_calls_to_the_same_bucket_and_guild(fakes, discord, transport):
    fakes.discord.bucket_headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                                    "X-RateLimit-Reset-After": "0.400", "X-RateLimit-Bucket": "members-bucket"}
    discord.apply(request_for("discord", "timeout", duration_s=600))
    discord.apply(request_for("discord", "timeout", duration_s=600, scope={"guild_id": "111"}))
    assert transport.sleep.waits == []
    discord.apply(request_for("discord", "timeout", duration_s=600))

    [wait] = transport.sleep.waits
    assert 0 < wait <= 0.4
    assert fakes.discord.requests[2].at - fakes.discord.requests[0].at >= 0.4


def test_5xx_is_retried_with_exponential_backoff_and_jitter(fakes, discord, transport):
    fakes.discord.script("PUT", f"/guilds/{GUILD}/bans/{USER}", Reply(502, {"message": "Bad Gateway"}),
                         Reply(500, {"message": "Internal Server Error"}))
    outcome = discord.apply(request_for("discord", "ban"))

    assert outcome.attempts == [502, 500, 204]
    first, second = transport.sleep.waits
    assert 0.125 <= first <= 0.25 and 0.25 <= second <= 0.5


def test_permanent_errors_are_not_retried(fakes, discord):
    fakes.discord.script("PUT", f"/guilds/{GUILD}/bans/{USER}", discord_error(403, 50013, "Missing Permissions"))
    with pytest.raises(PermanentError) as forbidden:
        discord.apply(request_for("discord", "ban"))
    fakes.discord.unknown_members.add(USER)
    with pytest.raises(PermanentError) as unknown:
        discord.apply(request_for("discord", "timeout", duration_s=60))

    assert (forbidden.value.status, forbidden.value.code) == (403, 50013)
    assert (unknown.value.status, unknown.value.code) == (404, 10007)
    assert len(fakes.discord.requests) == 2


def test_a_wrong_token_is_a_permanent_401(fakes, transport):
    discord = DiscordClient(Settings.from_mapping(fakes.settings() | {"DISCORD_BOT_TOKEN": "stale"}), transport)
    with pytest.raises(PermanentError) as caught:
        discord.apply(request_for("discord", "ban"))
    assert caught.value.status == 401


def test_network_failures_are_transient(fakes, rds):
    transport = make_transport(rds, max_inline_wait_s=1.0, timeout_s=1.0)
    fakes.discord.stop()
    discord = DiscordClient(Settings.from_mapping(fakes.settings()), transport)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        discord.apply(request_for("discord", "ban"))
    assert caught.value.code == "ConnectError" and caught.value.attempts == ["ConnectError"] * 3
    assert time.monotonic() - started < 5


def test_an_event_without_a_guild_is_refused_before_any_call(fakes, discord):
    with pytest.raises(PermanentError, match="guild_id"):
        discord.apply(request_for("discord", "ban", scope={}))
    assert fakes.discord.requests == []
