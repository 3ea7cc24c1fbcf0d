"""The console in a real headless Chromium: sign in, a hostile message arriving in the live queue,
claim it (and a second moderator locked out), change the action, reverse it, file and overturn an
appeal, change the policy and see the next message follow it, CSRF and role refusals. Each page is
photographed under var/screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.config import get_settings
from app.db import session_scope
from app.models import Action, Event
from app.redis_client import get_redis
from tests.console import browser as b
from tests.console.conftest import PASSWORD
from tests.fakes.rows import insert_action, insert_event

if b.why_not():
    pytest.skip(f"browser tests skipped: {b.why_not()}", allow_module_level=True)

HOSTILE = "you are a worthless idiot, nobody wants you here"
MILD = "that was a dumb move"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from b.launch()


@pytest.fixture(scope="module")
def screener() -> Any:
    from ml.screening import get_screener

    return get_screener()


@pytest.fixture
def live(console_app: Any, staff: dict[str, str]) -> Iterator[str]:
    with b.LiveServer(console_app) as server:
        yield server.url


@pytest.fixture
def page_as(chromium: Any, live: str) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_as(username: str) -> Any:
        context = chromium.new_context(viewport={"width": 1360, "height": 900})
        contexts.append(context)
        page = context.new_page()
        b.sign_in(page, live, username, PASSWORD)
        return page
    yield open_as
    for context in contexts:
        context.close()


def screen_now(screener: Any, *events: dict[str, Any]) -> None:
    """What a screening worker does with a batch from events:raw, with the shipped model."""
    from app.pipeline import screen
    from app.schemas import EventSchema

    settings = get_settings()
    now = int(time.time() * 1000)
    batch = [{"event": EventSchema().load(e), "received_at": now} for e in events]
    with session_scope() as db:
        result = screen.screen_batch(batch, screener=screener, db=db, client=get_redis(), settings=settings)
    screen.publish(get_redis(), result, settings.STREAM_MAXLEN, settings.EMBEDDING_TTL_S)


def message(event_id: str, content: str, channel: str = "lobby") -> dict[str, Any]:
    return {"event_id": event_id, "platform": "web", "author_id": "troll", "user_id": "ann",
            "channel_id": channel, "content": content, "metadata": {"message_id": event_id}}


def status_of(event_id: str) -> str:
    with session_scope() as db:
        return db.scalars(select(Event.status).where(Event.event_id == event_id)).one()


def test_moderator_works_a_hostile_message_from_arrival_to_reversal(page_as, live, screener, fakes):
    page = page_as("mo")
    b.screenshot(page, "queue-empty")
    assert "Nothing waits for review" in page.inner_text("#queue-rows")
    screen_now(screener, message("m1", HOSTILE))
    row = page.locator("tr[data-event=m1]")
    row.wait_for()  # arrived without a reload
    assert HOSTILE in row.inner_text()
    page.keyboard.press("c")  # claim from the keyboard
    page.locator("tr[data-event=m1] .lock.mine").wait_for()
    b.screenshot(page, "queue")
    page.select_option("tr[data-event=m1] select[name=action_type]", "mute")
    page.fill("tr[data-event=m1] input[name=duration_hours]", "2")
    page.click("tr[data-event=m1] button.change")
    assert "mute applied" in page.inner_text(".flash")
    assert status_of("m1") == "actioned" and len(fakes.web.deliveries) == 1

    page.goto(f"{live}/admin/events/web/m1")
    assert "targeted_harassment" in page.inner_text(".prediction")
    assert page.locator("figure.chart svg circle.message").count() >= 1
    assert page.locator("tr.this.flagged").count() == 1
    b.screenshot(page, "event")

    page.click("text=troll")
    page.fill("tr[data-action] input[name=reason]", "quoted a song")
    b.screenshot(page, "user")
    page.click("tr[data-action] button.reverse")
    assert "is reversed" in page.inner_text(".flash")
    assert page.inner_text("tr[data-action] td.status") == "reversed"
    assert len(fakes.web.deliveries) == 2  # the reversal went through the platform too


def test_an_appeal_is_filed_and_overturned(page_as, live, fakes):
    insert_event("web")
    action_id = insert_action("web", "ban", status="applied", applied_at=datetime.now(UTC))
    page = page_as("mo")
    page.goto(f"{live}/admin/appeals/new?action_id={action_id}")
    page.fill("textarea[name=statement]", "It was my brother on my account")
    page.click("main form.stack button[type=submit]")
    assert "filed" in page.inner_text(".flash")
    page.fill("textarea[name=reason]", "account shared; first offence")
    b.screenshot(page, "appeal")
    page.click("button.overturn")
    assert "Overturned by mo" in page.inner_text("p.decision")
    with session_scope() as db:
        assert db.get(Action, action_id).status == "reversed"  # type: ignore[union-attr]
    page.goto(f"{live}/admin/appeals?status=overturned")
    assert "It was my brother" in page.inner_text("table.appeals")
    b.screenshot(page, "appeals")


def test_a_claim_locks_out_a_second_moderator(page_as, screener):
    screen_now(screener, message("m2", HOSTILE))
    first, second = page_as("mo"), page_as("max")
    first.click("tr[data-event=m2] button.claim")
    first.locator("tr[data-event=m2] .lock.mine").wait_for()
    second.locator("tr[data-event=m2] .lock", has_text="claimed by mo").wait_for()  # the live refresh shows it
    assert second.locator("tr[data-event=m2] button.approve").count() == 0
    b.screenshot(second, "queue-claimed-by-another")
    token = second.get_attribute("meta[name=csrf-token]", "content")
    forged = second.request.post(second.url.split("/admin")[0] + "/admin/queue/web/m2/decide",
                                 form={"csrf_token": token, "decision": "dismiss"})
    assert forged.status == 409 and status_of("m2") == "needs_review"


def test_a_policy_change_decides_the_next_message(page_as, live, screener):
    risk = screener.screen([MILD])[0].risk_score
    assert risk < get_settings().SCREENING_THRESHOLD  # at the default, this message is not flagged
    page = page_as("ada")
    page.goto(f"{live}/admin/policy")
    page.fill("#f-SCREENING_THRESHOLD", f"{max(risk - 0.05, 0.05):.2f}")
    b.screenshot(page, "policy")
    page.click("text=Save policy")
    assert "SCREENING_THRESHOLD" in page.inner_text(".flash")
    screen_now(screener, message("m3", MILD, channel="quiet"))
    assert status_of("m3") == "needs_review"
    page.goto(f"{live}/admin/queue")
    page.locator("tr[data-event=m3]").wait_for()


def test_csrf_and_role_refusals_in_the_browser(page_as, live):
    page = page_as("vi")
    assert "view only" in page.inner_text("body") or "Nothing waits" in page.inner_text("body")
    page.goto(f"{live}/admin/policy")
    assert page.locator("#f-SCREENING_THRESHOLD").is_disabled()
    token = page.get_attribute("meta[name=csrf-token]", "content")
    refused = page.request.post(f"{live}/admin/policy", form={"csrf_token": token, "SCREENING_THRESHOLD": "0.2"})
    assert refused.status == 403
    forged = page.request.post(f"{live}/admin/policy", form={"SCREENING_THRESHOLD": "0.2"})
    assert forged.status == 400 and "CSRF" in forged.text()
    page.goto(f"{live}/admin/reports")
    assert page.locator("figure.chart svg").count() == 3
    b.screenshot(page, "reports")
    page.goto(f"{live}/admin/login")
    b.screenshot(page, "login")


def test_account_page_changes_the_password_and_signs_out_elsewhere(page_as, live):
    page, elsewhere = page_as("mo"), page_as("mo")
    page.click("header a.account-link")
    page.wait_for_url(f"{live}/admin/account")
    assert "moderator" in page.inner_text("dl.account")
    assert page.locator("table.sessions tbody tr").count() == 2
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", "a much longer passphrase, 2026")
    page.fill("input[name=confirm_password]", "a much longer passphrase, 2026")
    b.screenshot(page, "account")
    page.click("form.password button[type=submit]")
    assert "Signed out 1 session elsewhere" in page.inner_text(".flash")
    assert page.locator("table.sessions tbody tr").count() == 1
    elsewhere.goto(f"{live}/admin/queue")
    assert "/admin/login" in elsewhere.url


def test_repeated_failed_sign_ins_are_throttled_in_the_browser(chromium, live):
    from app.console import throttle

    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    for _ in range(throttle.ACCOUNT_LIMIT):
        page.goto(f"{live}/admin/login")
        page.fill("input[name=username]", "mo")
        page.fill("input[name=password]", "not the password at all")
        with page.expect_response(f"{live}/admin/login") as answer:
            page.click("form.login button[type=submit]")
    assert answer.value.status == 429 and int(answer.value.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in page.inner_text(".flash.error")
    b.screenshot(page, "login-throttled")
    context.close()
