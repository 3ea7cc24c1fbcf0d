"""Review queue, event and user pages, reversal, appeals, policy and reports through the test client,
on the real PostgreSQL and Redis, with the fake platform servers at the network edge."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from sqlalchemy import select

from app.config import get_settings
from app.console import policy_store
from app.db import session_scope
from app.models import Action, AuditLog, Event
from app.redis_client import get_redis
from tests.console.conftest import review_item
from tests.fakes.rows import insert_action, insert_event


def test_queue_lists_review_items_riskiest_first_and_filters(as_role):
    review_item("web", "low")
    review_item("discord", "high")
    with session_scope() as db:
        db.execute(Event.__table__.update().where(Event.event_id == "low").values(risk_score=0.75))
    mod = as_role("moderator")
    page = mod.get("/admin/queue").get_data(as_text=True)
    assert page.index("/admin/events/discord/high") < page.index("/admin/events/web/low")
    assert "the reasoning stage asked for a person" in page
    only_web = mod.get("/admin/queue?platform=web").get_data(as_text=True)
    assert "/events/web/low" in only_web and "/events/discord/high" not in only_web
    assert mod.get("/admin/queue?platform=myspace").status_code == 400
    assert mod.get("/admin/queue?page=0").status_code == 400


def test_a_claim_locks_the_item_to_one_moderator(as_role):
    review_item()
    mo, mx = as_role("moderator"), as_role("moderator2")
    json = {"Accept": "application/json"}
    assert mo.post("/admin/queue/web/m_9001/claim", headers=json).get_json() == {"claimed_by": "mo", "mine": True}
    refused = mx.post("/admin/queue/web/m_9001/claim", headers=json)
    assert refused.status_code == 409 and refused.get_json()["claimed_by"] == "mo"
    assert "claimed by mo" in mx.get("/admin/queue/rows").get_data(as_text=True)
    decided = mx.post("/admin/queue/web/m_9001/decide", {"decision": "dismiss"})
    assert decided.status_code == 409
    with session_scope() as db:
        assert db.scalars(select(Event.status).where(Event.event_id == "m_9001")).one() == "needs_review"


def test_the_claim_expires(as_role):
    review_item()
    mo, mx = as_role("moderator"), as_role("moderator2")
    mo.post("/admin/queue/web/m_9001/claim")
    get_redis().delete("console:claim:web:m_9001")  # what the TTL does once it runs out
    assert mx.post("/admin/queue/web/m_9001/claim", headers={"Accept": "application/json"}).status_code == 200


def test_changing_the_action_applies_it_through_the_platform(as_role, fakes):
    review_item()
    mo = as_role("moderator")
    mo.post("/admin/queue/web/m_9001/claim")
    response = mo.post("/admin/queue/web/m_9001/decide", {"decision": "change", "action_type": "mute",
                                                          "duration_hours": "2", "note": "slur at a child"})
    assert response.status_code == 302
    with session_scope() as db:
        action = db.scalars(select(Action).where(Action.event_id == "m_9001", Action.action_type == "mute")).one()
        audit = db.scalars(select(AuditLog.actor).where(AuditLog.kind == "console.review_decided")).one()
    assert (action.status, action.provider, action.duration_hours) == ("applied", "moderator", 2.0)
    assert audit == "moderator:mo"
    assert len(fakes.web.deliveries) == 1
    assert get_redis().get("console:claim:web:m_9001") is None
    assert "/events/web/m_9001" not in mo.get("/admin/queue/rows").get_data(as_text=True)


def test_approve_applies_what_the_reasoner_recommended(as_role):
    review_item(recommended="timeout")
    mo = as_role("moderator")
    mo.post("/admin/queue/web/m_9001/claim")
    mo.post("/admin/queue/web/m_9001/decide", {"decision": "approve"})
    with session_scope() as db:
        kinds = db.scalars(select(Action.action_type).where(Action.event_id == "m_9001")).all()
    assert sorted(kinds) == ["human_review", "timeout"]


def test_bad_decisions_get_a_400_and_leave_the_item(as_role):
    review_item()
    mo = as_role("moderator")
    mo.post("/admin/queue/web/m_9001/claim")
    assert mo.post("/admin/queue/web/m_9001/decide", {"decision": "change", "action_type": "nuke"}).status_code == 400
    assert mo.post("/admin/queue/web/m_9001/decide", {"decision": "change", "action_type": "mute",
                                                      "duration_hours": "soon"}).status_code == 400
    with session_scope() as db:
        assert db.scalars(select(Event.status).where(Event.event_id == "m_9001")).one() == "needs_review"


def test_event_page_shows_prediction_conversation_and_evidence(as_role):
    review_item()
    insert_event("web", event_id="before", content="gg")
    page = as_role("viewer").get("/admin/events/web/m_9001").get_data(as_text=True)
    assert "you are worthless, leave" in page and "repeated_name_calling" in page
    assert "model_score" in page and "action.review" in page
    assert as_role("viewer").get("/admin/events/web/nope").status_code == 404


def test_user_page_reverses_an_action_through_the_platform(as_role, fakes):
    insert_event("web")
    action_id = insert_action("web", "timeout", duration_hours=1, status="applied", applied_at=datetime.now(UTC))
    mo = as_role("moderator")
    page = mo.get("/admin/users/web/u_1234").get_data(as_text=True)
    assert action_id in page and "Reverse" in page
    assert mo.post(f"/admin/actions/{action_id}/reverse", {"reason": "misread"}).status_code == 302
    with session_scope() as db:
        assert db.get(Action, action_id).status == "reversed"  # type: ignore[union-attr]
        actor = db.scalars(select(AuditLog.actor).where(AuditLog.kind == "action.reversed")).one()
    assert actor == "moderator:mo" and len(fakes.web.deliveries) == 1
    assert mo.post(f"/admin/actions/{action_id}/reverse").status_code == 302  # a second click does nothing more
    assert len(fakes.web.deliveries) == 1
    pending = insert_action("web", "ban")
    assert mo.post(f"/admin/actions/{pending}/reverse").status_code == 409


def test_appeal_from_the_api_then_overturned_in_the_console(as_role, console_app, fakes, rds):
    insert_event("web")
    action_id = insert_action("web", "ban", status="applied", applied_at=datetime.now(UTC))
    api = console_app.test_client()
    key = {"X-API-Key": "test-key-0123456789"}
    assert api.post("/v1/appeals", json={"action_id": action_id}, headers=key).status_code == 400
    assert api.post("/v1/appeals", json={"action_id": "nope", "statement": "x"}, headers=key).status_code == 404
    filed = api.post("/v1/appeals", json={"action_id": action_id, "statement": "I was quoting him"}, headers=key)
    again = api.post("/v1/appeals", json={"action_id": action_id, "statement": "please"}, headers=key)
    assert filed.status_code == 201 and again.status_code == 200
    appeal_id = filed.get_json()["appeal"]["appeal_id"]
    assert again.get_json()["appeal"]["appeal_id"] == appeal_id
    mo = as_role("moderator")
    assert "I was quoting him" in mo.get("/admin/appeals").get_data(as_text=True)
    assert mo.post(f"/admin/appeals/{appeal_id}/decide", {"outcome": "overturned"}).status_code == 400
    mo.post(f"/admin/appeals/{appeal_id}/decide", {"outcome": "overturned", "reason": "quote, not abuse"})
    with session_scope() as db:
        assert db.get(Action, action_id).status == "reversed"  # type: ignore[union-attr]
    told = [m for m in rds.lrange("reasoning", 0, -1) if "context.record_outcome" in m]
    assert told and "overturned" in told[-1]  # the precedent in Qdrant hears it through the reasoning queue
    assert "Overturned by mo" in mo.get(f"/admin/appeals/{appeal_id}").get_data(as_text=True)
    again = mo.post(f"/admin/appeals/{appeal_id}/decide", {"outcome": "upheld", "reason": "no"})
    assert again.status_code == 409


def test_appeal_entered_in_the_console_and_upheld(as_role):
    insert_event("web")
    action_id = insert_action("web", "warning", status="applied", applied_at=datetime.now(UTC))
    mo = as_role("moderator")
    response = mo.post("/admin/appeals/new", {"action_id": action_id, "statement": "called on the phone"})
    appeal_id = response.headers["Location"].rsplit("/", 1)[1]
    mo.post(f"/admin/appeals/{appeal_id}/decide", {"outcome": "upheld", "reason": "repeated insults"})
    page = mo.get(f"/admin/appeals/{appeal_id}").get_data(as_text=True)
    assert "Upheld by mo: repeated insults" in page
    with session_scope() as db:
        assert db.get(Action, action_id).status == "applied"  # type: ignore[union-attr]


def test_policy_change_is_stored_audited_and_seen_without_restart(as_role):
    admin = as_role("admin")
    bad = admin.post("/admin/policy", {"SCREENING_THRESHOLD": "1.5", "DRY_RUN_CHANNELS": "myspace"})
    assert bad.status_code == 400 and "must be above 0" in bad.get_data(as_text=True)
    assert admin.post("/admin/policy", {"SCREENING_THRESHOLD": "0.55", "DRY_RUN_CHANNELS": "twitch",
                                        "ACTION_POLICY_SCOPES": "web:lobby=severity_based"}).status_code == 302
    live = policy_store.effective(get_settings(), get_redis())
    assert (live.SCREENING_THRESHOLD, live.DRY_RUN_CHANNELS) == (0.55, ("twitch",))
    with session_scope() as db:
        change = db.scalars(select(AuditLog).where(AuditLog.kind == "console.policy_changed")).one()
    assert change.actor == "moderator:ada"
    assert change.detail["changes"]["SCREENING_THRESHOLD"] == {"before": 0.7, "after": 0.55}
    admin.post("/admin/policy", {"SCREENING_THRESHOLD": "0.7"})  # back to the environment's value
    assert policy_store.sources(get_settings(), get_redis())["SCREENING_THRESHOLD"] == "environment"


def test_reports_and_decision_log_csv(as_role):
    review_item()
    insert_action("web", "ban", event_id="m_9001", status="applied", applied_at=datetime.now(UTC))
    with session_scope() as db:
        db.add(AuditLog(actor="system", kind="action.applied", event_id="m_9001", platform="web",
                        detail={"reason": "=HYPERLINK(\"x\")"}))
    viewer = as_role("viewer")
    page = viewer.get("/admin/reports").get_data(as_text=True)
    assert "Events per second" in page and "<svg" in page and "targeted_harassment" in page
    assert viewer.get("/admin/reports?from=yesterday").status_code == 400
    response = viewer.get("/admin/reports/decisions.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert response.mimetype == "text/csv" and rows[0][0] == "at"
    assert any(r[2] == "action.applied" and r[8].startswith("'=") for r in rows[1:])
