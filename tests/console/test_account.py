"""The account page: role, own password change, other sessions signed out."""

from __future__ import annotations

import time

from sqlalchemy import select

from app.console import accounts, session_store, throttle
from app.db import session_scope
from app.models import AuditLog
from tests.console.conftest import PASSWORD, Browser

NEW = "a much longer passphrase, 2026"


def change(browser: Browser, current: str = PASSWORD, new: str = NEW, confirm: str | None = None):
    return browser.post("/admin/account/password", {"current_password": current, "new_password": new,
                                                    "confirm_password": new if confirm is None else confirm})


def audit_kinds() -> list[str]:
    with session_scope() as db:
        return list(db.scalars(select(AuditLog.kind).order_by(AuditLog.id)))


def test_every_role_sees_its_account_and_role(as_role):
    for role, name in (("viewer", "vi"), ("moderator", "mo"), ("admin", "ada")):
        page = as_role(role).get("/admin/account")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and f"<dd>{name}</dd>" in html and f"<strong>{role}</strong>" in html
        assert 'href="/admin/account"' in html  # the header's link to it
        assert "this session" in html


def test_the_page_needs_a_session(console_app):
    response = console_app.test_client().get("/admin/account")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_changing_the_password_needs_the_current_one_and_the_usual_rules(as_role):
    mo = as_role("moderator")
    cases = {
        "the current password is wrong": dict(current="not my password"),
        "confirmation differ": dict(confirm=NEW + "x"),
        f"at least {accounts.MIN_PASSWORD} characters": dict(new="short one"),
        "contain your user name": dict(new="mo-and-some-more-words"),
        "5 different characters": dict(new="abababababababab"),
        "is the current one": dict(new=PASSWORD),
    }
    for message, fields in cases.items():
        response = change(mo, **fields)
        assert response.status_code == 400 and message in response.get_data(as_text=True).lower(), message
    assert Browser(mo.client.application).login("mo").status_code == 302  # the old password still works
    assert audit_kinds().count("console.password_change_failed") == 1


def test_a_change_without_the_csrf_token_is_refused(as_role):
    mo = as_role("moderator")
    response = mo.client.post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": NEW, "confirm_password": NEW})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert accounts.authenticate("mo", PASSWORD) is not None


def test_a_change_takes_effect_and_ends_the_other_sessions_only(as_role, console_app):
    mo, elsewhere = as_role("moderator"), as_role("moderator")
    response = change(mo)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/account")
    page = mo.get("/admin/account").get_data(as_text=True)
    assert "Password changed. Signed out 1 session elsewhere." in page
    assert elsewhere.get("/admin/queue").status_code == 302  # back to the sign-in page
    assert Browser(console_app).login("mo").status_code == 401
    assert Browser(console_app).login("mo", NEW).status_code == 302
    assert "console.password_changed" in audit_kinds()


def test_wrong_current_passwords_count_against_the_sign_in_throttle(as_role, console_app):
    mo = as_role("moderator")
    statuses = [change(mo, current=f"guess number {i}").status_code for i in range(throttle.ACCOUNT_LIMIT)]
    assert statuses == [400] * (throttle.ACCOUNT_LIMIT - 1) + [429]
    refused = change(mo)  # even the right one, while locked
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in refused.get_data(as_text=True)
    assert Browser(console_app).login("mo").status_code == 429
    assert "console.sign_in_throttled" in audit_kinds()


def test_sign_out_other_sessions(as_role, rds):
    mo, phone, laptop, other = as_role("moderator"), as_role("moderator"), as_role("moderator"), as_role("admin")
    page = mo.get("/admin/account").get_data(as_text=True)
    assert "Sign out 2 other sessions" in page
    response = mo.post("/admin/account/sessions/end-others")
    assert response.status_code == 302
    assert "Signed out 2 sessions elsewhere." in mo.get("/admin/account").get_data(as_text=True)
    assert phone.get("/admin/queue").status_code == 302 and laptop.get("/admin/queue").status_code == 302
    assert mo.get("/admin/queue").status_code == 200 and other.get("/admin/queue").status_code == 200
    assert "No other session is open." in mo.get("/admin/account").get_data(as_text=True)
    with session_scope() as db:
        detail = db.scalars(select(AuditLog.detail).where(AuditLog.kind == "console.sessions_ended")).one()
    assert detail["count"] == 2
    assert mo.post("/admin/account/sessions/end-others").status_code == 302  # nothing left: still fine


def test_the_index_forgets_sessions_that_ended_on_their_own(as_role, rds):
    mo = as_role("moderator")
    as_role("moderator")
    account_id = accounts.id_of("mo")
    assert len(session_store.listing(rds, account_id)) == 2
    others = [k for k in rds.smembers(f"console:account_sessions:{account_id}")
              if k != session_store.key(mo.client.get_cookie("safety_console", path="/admin").value)]
    rds.pexpire(others[0], 20)
    time.sleep(0.1)
    assert len(session_store.listing(rds, account_id)) == 1
    assert rds.scard(f"console:account_sessions:{account_id}") == 1
    assert mo.post("/admin/logout").status_code == 302
    assert rds.scard(f"console:account_sessions:{account_id}") == 0


def test_cli_disable_ends_the_accounts_sessions_at_once(as_role, console_app, rds):
    as_role("moderator")
    out = console_app.test_cli_runner().invoke(args=["users", "disable", "mo"])
    assert out.exit_code == 0 and "1 open session(s) ended" in out.output
    assert list(rds.scan_iter("console:session:*")) == []
