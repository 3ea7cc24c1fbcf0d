"""Sign-in, sessions, CSRF and roles."""

from __future__ import annotations

from sqlalchemy import select

from app.console import accounts
from app.db import session_scope
from app.models import AuditLog
from tests.console.conftest import PASSWORD, Browser


def test_pages_redirect_to_sign_in_and_json_gets_401(console_app):
    client = console_app.test_client()
    page = client.get("/admin/queue")
    assert page.status_code == 302 and page.headers["Location"].startswith("/admin/login")
    assert client.post("/admin/policy", headers={"Accept": "application/json"}).status_code == 401


def test_a_browser_navigation_without_a_session_is_sent_to_sign_in(console_app):
    client = console_app.test_client()
    chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
    page = client.get("/admin/queue", headers={"Accept": chromium})  # */* accepts JSON too: still a redirect
    assert page.status_code == 302 and page.headers["Location"].startswith("/admin/login")
    assert client.get("/admin/queue", headers={"Accept": "application/json"}).status_code == 401


def test_wrong_password_is_refused_and_right_one_signs_in(console_app, staff):
    browser = Browser(console_app)
    assert browser.login("mo", "wrong password here").status_code == 401
    response = browser.login("mo")
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "mo (moderator)" in browser.get("/admin/queue").get_data(as_text=True)
    with session_scope() as db:
        kinds = db.scalars(select(AuditLog.kind).where(AuditLog.actor == "moderator:mo").order_by(AuditLog.id)).all()
    assert kinds == ["console.sign_in_failed", "console.signed_in"]


def test_passwords_are_stored_hashed(console_app, staff):
    from app.console.models import Moderator

    with session_scope() as db:
        stored = db.scalars(select(Moderator.password_hash).where(Moderator.username == "mo")).one()
    assert PASSWORD not in stored and stored.startswith("scrypt:")


def test_sign_in_form_needs_its_csrf_token(console_app, staff):
    client = console_app.test_client()
    client.get("/admin/login")
    response = client.post("/admin/login", data={"username": "mo", "password": PASSWORD})
    assert response.status_code == 400


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(as_role):
    admin = as_role("admin")
    response = admin.client.post("/admin/policy", data={"SCREENING_THRESHOLD": "0.5"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert 'value="0.7"' in admin.get("/admin/policy").get_data(as_text=True)


def test_viewer_can_read_but_not_act(as_role):
    viewer = as_role("viewer")
    assert viewer.get("/admin/queue").status_code == 200
    assert viewer.post("/admin/queue/web/m_9001/claim").status_code == 403
    assert viewer.post("/admin/policy", {"SCREENING_THRESHOLD": "0.5"}).status_code == 403
    assert viewer.post("/admin/appeals/new", {"action_id": "x", "statement": "y"}).status_code == 403


def test_sign_out_ends_the_session_on_the_server(as_role):
    mod = as_role("moderator")
    assert mod.post("/admin/logout").status_code == 302
    assert mod.get("/admin/queue").status_code == 302


def test_a_disabled_account_loses_its_open_session(as_role):
    mod = as_role("moderator")
    accounts.update("mo", actor="test", disabled=True)
    assert mod.get("/admin/queue").status_code == 302


def test_first_admin_is_created_only_on_an_empty_table(console_app):
    password = accounts.ensure_first_admin("admin", None)
    assert password and len(password) >= 12
    assert accounts.ensure_first_admin("admin2", None) is None
    assert accounts.authenticate("admin", password) is not None
    with session_scope() as db:
        kinds = db.scalars(select(AuditLog.kind)).all()
    assert "console.user_created" in kinds


def test_cli_manages_accounts(console_app):
    runner = console_app.test_cli_runner()
    out = runner.invoke(args=["users", "add", "nia", "--role", "viewer"])
    assert out.exit_code == 0 and "password:" in out.output
    assert runner.invoke(args=["users", "set-role", "nia", "moderator"]).exit_code == 0
    listed = runner.invoke(args=["users", "list"]).output
    assert "nia" in listed and "moderator" in listed
    assert runner.invoke(args=["users", "add", "nia"]).exit_code != 0
