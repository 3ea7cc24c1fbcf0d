"""The act stage as plain functions on real PostgreSQL and Redis, calling local fake platform APIs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from app import streams
from app.config import Settings, set_settings
from app.db import session_scope
from app.models import AuditLog, Event, User
from app.pipeline import act
from app.platforms.outbound import TransientError
from app.policies import GraduatedEscalation, SeverityBased, Step
from tests.fakes.platform_servers import FakePlatforms, Reply
from tests.fakes.rows import EVENTS, EVIDENCE, action_row, insert_action, insert_event

DISCORD_MEMBER = f"/guilds/{EVENTS['discord']['metadata']['guild_id']}/members/{EVENTS['discord']['author_id']}"


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


@pytest.fixture
def configure(settings_map, fakes):  # type: ignore[no-untyped-def]
    """Install settings: every platform's credentials pointing at the fakes, plus the test's overrides."""

    def install(**overrides: Any) -> Settings:
        settings = Settings.from_mapping(settings_map | fakes.settings() | {"ACTION_MAX_INLINE_WAIT_S": "1"}
                                         | overrides)
        set_settings(settings)
        return settings

    install()
    return install


def audit_rows(action_id: str) -> list[AuditLog]:
    with session_scope() as db:
        return list(db.scalars(select(AuditLog).where(AuditLog.action_id == action_id).order_by(AuditLog.id)))


def applied_entries(rds) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [streams.decode(fields) | {"status": fields["status"], "action_id": fields["action_id"]}
            for _, fields in rds.xrange(streams.ACTIONS_APPLIED)]


def violations(platform: str, user_id: str) -> int | None:
    with session_scope() as db:
        user = db.scalars(select(User).where(User.platform == platform, User.user_id == user_id)).first()
        return user.violation_count if user else None


def event_status(platform: str) -> str:
    with session_scope() as db:
        return db.scalars(select(Event.status).where(Event.platform == platform)).one()


def test_an_action_is_applied_once_audited_mirrored_and_counted(fakes, configure, rds):
    insert_event("discord")
    action_id = insert_action("discord", "timeout", duration_hours=1)

    result = act.apply(action_id)
    again = act.apply(action_id)

    [call] = fakes.discord.requests
    assert (call.method, call.path) == ("PATCH", DISCORD_MEMBER)
    assert result.status == "applied" and again.duplicate
    row = action_row(action_id)
    assert row.status == "applied" and row.action_type == "timeout" and row.duration_hours == 1
    assert row.expires_at == datetime.fromisoformat(call.json()["communication_disabled_until"])
    assert abs(row.expires_at - row.applied_at - timedelta(hours=1)) < timedelta(seconds=5)
    [audit] = audit_rows(action_id)
    assert (audit.kind, audit.actor, audit.event_id, audit.platform) == ("action.applied", "system",
                                                                         EVENTS["discord"]["event_id"], "discord")
    assert audit.detail["platform_status"] == 200 and audit.detail["platform_request"] == f"PATCH {DISCORD_MEMBER}"
    assert audit.detail["evidence_chain"][:2] == EVIDENCE
    assert audit.detail["evidence_chain"][2]["kind"] == "policy"
    [entry] = applied_entries(rds)
    assert entry["action_id"] == action_id and entry["status"] == "applied"
    assert entry["data"]["outcome"] == "action.applied" and entry["data"]["platform_status"] == 200
    assert violations("discord", EVENTS["discord"]["author_id"]) == 1
    assert event_status("discord") == "actioned"


def test_concurrent_deliveries_of_one_action_call_the_platform_once(fakes, configure):
    insert_event("discord")
    action_id = insert_action("discord", "ban")
    fakes.discord.script("PUT", f"/guilds/{EVENTS['discord']['metadata']['guild_id']}/bans/"
                                f"{EVENTS['discord']['author_id']}", Reply(204, delay=0.5))
    results: list[act.Result] = []
    threads = [threading.Thread(target=lambda: results.append(act.apply(action_id))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fakes.discord.requests) == 1
    assert sorted(r.kind for r in results) == ["action.applied", "duplicate"]
    assert len(audit_rows(action_id)) == 1


def test_dry_run_everywhere_decides_and_records_but_calls_nothing(fakes, configure, rds):
    configure(ACTIONS_DRY_RUN="true")
    ids = {}
    for platform in EVENTS:
        insert_event(platform)
        ids[platform] = insert_action(platform, "timeout", duration_hours=2)
        assert act.apply(ids[platform]).status == "dry_run"

    assert fakes.all_requests() == []
    for platform, action_id in ids.items():
        [audit] = audit_rows(action_id)
        assert audit.kind == "action.dry_run" and audit.detail["reason"] == "ACTIONS_DRY_RUN is set"
        assert action_row(action_id).expires_at is not None
        assert violations(platform, EVENTS[platform]["author_id"]) is None
    assert {e["status"] for e in applied_entries(rds)} == {"dry_run"}
    assert all(e["data"]["dry_run"] for e in applied_entries(rds))


def test_a_platform_without_credentials_runs_dry(fakes, configure):
    configure(DISCORD_BOT_TOKEN="")
    insert_event("discord")
    action_id = insert_action("discord", "ban")
    assert act.apply(action_id).status == "dry_run"
    assert audit_rows(action_id)[0].detail["reason"] == "no credentials configured for discord"
    assert fakes.discord.requests == []


def test_dry_run_channels_cover_a_whole_platform_or_one_channel(fakes, configure):
    configure(DRY_RUN_CHANNELS=f"twitch,discord:{EVENTS['discord']['channel_id']}")
    results = {}
    for platform in ("twitch", "discord", "slack"):
        insert_event(platform)
        results[platform] = act.apply(insert_action(platform, "ban")).status
    assert results == {"twitch": "dry_run", "discord": "dry_run", "slack": "applied"}
    assert fakes.twitch.requests == fakes.discord.requests == [] and len(fakes.slack.requests) == 1


def test_low_confidence_goes_to_human_review_instead_of_acting(fakes, configure, rds):
    insert_event("twitch")
    action_id = insert_action("twitch", "ban", confidence=0.4)

    result = act.apply(action_id)

    assert result.status == "applied" and result.kind == "action.review"
    row = action_row(action_id)
    assert row.action_type == "human_review" and row.evidence_chain[-1]["ref"] == "human_review"
    [audit] = audit_rows(action_id)
    assert audit.detail["recommended"] == {"action_type": "ban", "duration_hours": None}
    assert "below ACTION_MIN_CONFIDENCE 0.60" in audit.detail["reason"]
    assert event_status("twitch") == "needs_review" and fakes.twitch.requests == []
    assert applied_entries(rds)[0]["data"]["action_type"] == "human_review"


def test_a_message_the_model_could_not_read_goes_to_a_person_whatever_the_decision_says(fakes, configure):
    insert_event("twitch")
    with session_scope() as db:
        event = db.scalars(select(Event).where(Event.platform == "twitch")).one()
        event.confidence, event.flags = 0.18, ["unfamiliar_wording", "short_message", "model_uncertain"]
    action_id = insert_action("twitch", "mute", confidence=0.95, duration_hours=24)

    result = act.apply(action_id)

    assert result.kind == "action.review" and fakes.twitch.requests == []
    row = action_row(action_id)
    assert row.action_type == "human_review"
    [audit] = audit_rows(action_id)
    assert audit.detail["recommended"] == {"action_type": "mute", "duration_hours": 24}
    assert "could not read this message well" in audit.detail["reason"]
    assert "unfamiliar_wording" in audit.detail["reason"]


@pytest.mark.parametrize(("platform", "metadata", "overrides", "why"), [
    ("discord", {}, {"EXEMPT_USERS": f"discord:{EVENTS['discord']['author_id']}"}, "EXEMPT_USERS"),
    ("discord", {"author_roles": ["555"]}, {"EXEMPT_ROLES": "555"}, "exempt role '555'"),
    ("twitch", {"author_badges": ["moderator", "subscriber"]}, {}, "moderator badge 'moderator'"),
    ("web", {"author_is_moderator": True}, {}, "flagged as a moderator"),
])
def test_exempt_users_and_moderators_are_never_acted_on(fakes, configure, platform, metadata, overrides, why):
    configure(**overrides)
    insert_event(platform, metadata=metadata)
    action_id = insert_action(platform, "ban")

    assert act.apply(action_id).status == "skipped"
    assert why in audit_rows(action_id)[0].detail["reason"]
    assert fakes.all_requests() == []


def test_the_daily_quota_stops_automatic_actions_and_asks_a_human(fakes, configure):
    configure(DAILY_ACTION_QUOTA="1")
    for n in (1, 2):
        insert_event("web", event_id=f"m_{n}", metadata={"message_id": f"m_{n}"})
    first, second = (insert_action("web", "warning", event_id=f"m_{n}") for n in (1, 2))

    assert act.apply(first).kind == "action.applied"
    assert act.apply(second).kind == "action.review"
    assert "quota of 1 for web is spent" in audit_rows(second)[0].detail["reason"]
    assert len(fakes.web.requests) == 1


def test_graduated_escalation_climbs_the_ladder_with_each_violation(fakes, configure):
    author = EVENTS["twitch"]["author_id"]
    old = insert_event("twitch", event_id="old", metadata={"message_id": "old"})["event_id"]
    insert_action("twitch", "ban", event_id=old, status="applied",  # outside the 30-day window: forgotten
                  applied_at=datetime.now(UTC) - timedelta(days=40))
    applied = []
    for n in range(5):
        insert_event("twitch", event_id=f"msg-{n}", metadata={"message_id": f"msg-{n}"})
        action_id = insert_action("twitch", "warning", event_id=f"msg-{n}")
        act.apply(action_id)
        row = action_row(action_id)
        applied.append((row.action_type, row.duration_hours))

    assert applied == [("warning", None), ("timeout", 1.0), ("timeout", 24.0), ("mute", 168.0), ("ban", None)]
    calls = [(r.path, (r.json()["data"].get("duration"))) for r in fakes.twitch.requests]
    assert calls == [("/moderation/warnings", None), ("/moderation/bans", 3600), ("/moderation/bans", 86400),
                     ("/moderation/bans", 604800), ("/moderation/bans", None)]
    assert violations("twitch", author) == 5


def test_severity_based_applies_the_recommendation_whatever_the_history(fakes, configure):
    configure(ACTION_POLICY="severity_based")
    for n in range(3):
        insert_event("web", event_id=f"m_{n}", metadata={"message_id": f"m_{n}"})
    for n in range(2):
        act.apply(insert_action("web", "warning", event_id=f"m_{n}"))
    action_id = insert_action("web", "timeout", event_id="m_2")
    act.apply(action_id)

    row = action_row(action_id)
    assert (row.action_type, row.duration_hours, row.policy) == ("timeout", 24.0, "severity_based")
    assert fakes.web.requests[-1].json()["data"]["duration_seconds"] == 86400


def test_policies_in_isolation():
    graduated, severity = GraduatedEscalation(), SeverityBased()
    assert graduated.decide(Step("warning"), 0)[0] == Step("warning")
    assert graduated.decide(Step("warning"), 3)[0] == Step("mute", 168.0)
    assert graduated.decide(Step("ban"), 0)[0] == Step("ban")  # the recommendation is a floor
    assert graduated.decide(Step("timeout", 48.0), 1)[0] == Step("timeout", 48.0)
    assert graduated.decide(Step("delete_message"), 9)[0] == Step("delete_message")
    assert graduated.decide(Step("warning"), 99)[0] == Step("ban")
    assert severity.decide(Step("mute"), 9)[0] == Step("mute", 168.0)


@pytest.mark.parametrize(("recommended", "status", "kind"), [("none", "skipped", "action.skipped"),
                                                             ("human_review", "applied", "action.review")])
def test_none_and_human_review_make_no_call(fakes, configure, recommended, status, kind):
    insert_event("slack")
    action_id = insert_action("slack", recommended)
    result = act.apply(action_id)
    assert (result.status, result.kind) == (status, kind) and fakes.slack.requests == []


def test_a_permanent_failure_is_failed_audited_and_dead_lettered(fakes, configure, rds):
    fakes.discord.unknown_members.add(EVENTS["discord"]["author_id"])
    insert_event("discord")
    action_id = insert_action("discord", "timeout", duration_hours=1)
    labels = {"platform": "discord", "reason": "http_404"}
    before = REGISTRY.get_sample_value("safety_action_failed_total", labels) or 0

    assert act.apply(action_id).status == "failed"

    [audit] = audit_rows(action_id)
    assert audit.kind == "action.failed" and audit.detail["platform_status"] == 404
    assert audit.detail["platform_code"] == 10007 and audit.detail["attempts"] == [404]
    [(_, fields)] = rds.xrange(streams.DLQ_ERRORS)
    dead = streams.decode(fields)
    assert dead["event_id"] == EVENTS["discord"]["event_id"] and dead["data"]["stage"] == "act"
    assert "HTTP 404 (code 10007)" in dead["data"]["error"] and dead["data"]["item"]["action_id"] == action_id
    assert REGISTRY.get_sample_value("safety_action_failed_total", labels) == before + 1
    assert rds.xlen(streams.ACTIONS_APPLIED) == 0 and violations("discord", EVENTS["discord"]["author_id"]) is None


def test_a_transient_failure_leaves_the_action_pending_until_the_task_gives_up(fakes, configure, rds):
    insert_event("discord")
    action_id = insert_action("discord", "timeout", duration_hours=1)
    fakes.discord.script("PATCH", DISCORD_MEMBER, *[Reply(503, {"message": "unavailable"})] * 3)

    with pytest.raises(TransientError) as caught:
        act.apply(action_id)
    assert caught.value.attempts == [503, 503, 503] and caught.value.retry_after > 0
    assert action_row(action_id).status == "pending" and audit_rows(action_id) == []

    assert act.give_up(action_id, "gave up after 9 deliveries: HTTP 503").status == "failed"
    assert audit_rows(action_id)[0].kind == "action.failed"
    assert json.loads(rds.xrange(streams.DLQ_ERRORS)[0][1]["data"])["error"].startswith("gave up")
    assert act.give_up(action_id, "again").duplicate


def test_a_moderator_reverses_an_applied_ban(fakes, configure, rds):
    insert_event("discord")
    action_id = insert_action("discord", "ban")
    act.apply(action_id)
    assert violations("discord", EVENTS["discord"]["author_id"]) == 1

    result = act.reverse(action_id, "moderator:ana", reason="appeal upheld")

    unban = fakes.discord.requests[-1]
    assert unban.method == "DELETE"
    assert unban.headers["x-audit-log-reason"] == "reversed by moderator%3Aana%3A appeal upheld"
    assert result.status == "reversed" and fakes.discord.bans == set()
    _, reversed_ = audit_rows(action_id)
    assert (reversed_.kind, reversed_.actor, reversed_.detail["platform_status"]) == (
        "action.reversed", "moderator:ana", 204)
    assert violations("discord", EVENTS["discord"]["author_id"]) == 0
    assert [e["status"] for e in applied_entries(rds)] == ["applied", "reversed"]
    assert act.reverse(action_id, "moderator:ana").duplicate


def test_only_applied_sanctions_can_be_reversed(configure):
    insert_event("web")
    action_id = insert_action("web", "ban")
    with pytest.raises(act.NotReversible):
        act.reverse(action_id, "moderator:ana")


def test_expired_temporary_bans_are_due_for_lifting(configure):
    now = datetime.now(UTC)
    insert_event("twitch")
    due = insert_action("twitch", "ban", status="applied", applied_at=now - timedelta(days=2),
                        expires_at=now - timedelta(minutes=1))
    insert_action("twitch", "timeout", status="applied", applied_at=now - timedelta(days=2),
                  expires_at=now - timedelta(minutes=1))  # a timeout ends on Twitch by itself
    with session_scope() as db:
        assert act.expired_temporary_bans(db) == [due]
