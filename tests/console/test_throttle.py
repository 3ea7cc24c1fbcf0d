"""Failed sign-ins throttled per account name and per client address, without telling names apart."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from app.console import accounts, throttle
from app.db import session_scope
from app.models import AuditLog
from tests.console.conftest import PASSWORD, Browser

WRONG = "not the password at all"


def attempt(app, username: str, password: str = WRONG, address: str = "10.0.0.1", **headers: str):
    client = app.test_client()
    page = client.get("/admin/login", environ_base={"REMOTE_ADDR": address})
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/admin/login", data={"csrf_token": token, "username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def kinds(actor: str) -> list[str]:
    with session_scope() as db:
        return list(db.scalars(select(AuditLog.kind).where(AuditLog.actor == actor).order_by(AuditLog.id)))


def test_the_fifth_failure_locks_the_account_with_429_and_retry_after(console_app, staff):
    statuses = [attempt(console_app, "mo").status_code for _ in range(throttle.ACCOUNT_LIMIT - 1)]
    assert statuses == [401] * (throttle.ACCOUNT_LIMIT - 1)
    locked = attempt(console_app, "mo")
    assert locked.status_code == 429
    assert 840 <= int(locked.headers["Retry-After"]) <= throttle.WINDOW_S
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    right = attempt(console_app, "mo", PASSWORD)  # even the right password waits out the lock
    assert right.status_code == 429
    assert not any(c.startswith("safety_console=") for c in right.headers.getlist("Set-Cookie"))
    assert kinds("moderator:mo") == ["console.sign_in_failed"] * throttle.ACCOUNT_LIMIT + ["console.sign_in_throttled"]
    with session_scope() as db:
        detail = db.scalars(select(AuditLog.detail).where(AuditLog.kind == "console.sign_in_throttled")).one()
    assert detail["scope"] == "account" and detail["address"] == "10.0.0.1"
    other = attempt(console_app, "max", PASSWORD)  # another account from the same address is unaffected
    assert other.status_code == 302


def test_an_unknown_name_is_throttled_exactly_like_a_real_one(console_app, staff):
    def run(name: str) -> list[tuple[int, str | None, str]]:
        seen = []
        for _ in range(throttle.ACCOUNT_LIMIT + 1):
            r = attempt(console_app, name, address="10.0.0.7")
            body = re.sub(r'value="[^"]+"', "", r.get_data(as_text=True))  # the form's fresh CSRF token
            seen.append((r.status_code, r.headers.get("Retry-After"), body))
        return seen

    real, ghost = run("mo"), run("ghost")
    assert [s for s, _, _ in real] == [401] * (throttle.ACCOUNT_LIMIT - 1) + [429, 429]
    assert [(s, b) for s, _, b in real] == [(s, b) for s, _, b in ghost]
    assert kinds("moderator:ghost")[-1] == "console.sign_in_throttled"


def test_an_unknown_name_costs_one_password_hash_like_a_real_one(console_app, staff, monkeypatch):
    calls: list[str] = []
    real_check = accounts.check_password_hash

    def counting(stored: str, password: str) -> bool:
        calls.append(stored)
        return real_check(stored, password)

    monkeypatch.setattr(accounts, "check_password_hash", counting)
    attempt(console_app, "ghost")
    attempt(console_app, "mo")
    accounts.update("vi", actor="test", disabled=True)
    attempt(console_app, "vi", PASSWORD)
    assert len(calls) == 3 and all(stored.startswith("scrypt:") for stored in calls)
    assert calls[0] == calls[2] == accounts._DUMMY_HASH  # unknown and disabled: the same dummy scrypt


def test_a_successful_sign_in_clears_the_account_counter(console_app, staff):
    for _ in range(throttle.ACCOUNT_LIMIT - 1):
        attempt(console_app, "mo")
    assert attempt(console_app, "mo", PASSWORD).status_code == 302
    statuses = [attempt(console_app, "mo").status_code for _ in range(throttle.ACCOUNT_LIMIT - 1)]
    assert statuses == [401] * (throttle.ACCOUNT_LIMIT - 1)


def test_an_address_has_its_own_larger_budget_and_forwarded_headers_do_not_reset_it(console_app, staff,
                                                                                   monkeypatch):
    monkeypatch.setattr(throttle, "ADDRESS_LIMIT", 3)
    assert [attempt(console_app, f"guess{i}", address="10.9.9.9").status_code for i in range(3)] == [401, 401, 429]
    refused = attempt(console_app, "mo", PASSWORD, address="10.9.9.9", **{"X-Forwarded-For": "192.0.2.1"})
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert attempt(console_app, "mo", PASSWORD, address="10.9.9.10").status_code == 302
    with session_scope() as db:
        detail = db.scalars(select(AuditLog.detail).where(AuditLog.kind == "console.sign_in_throttled")).one()
    assert detail["scope"] == "address"


def test_the_budget_comes_back_when_the_window_ends(console_app, staff, rds):
    for _ in range(throttle.ACCOUNT_LIMIT):
        attempt(console_app, "mo")
    assert attempt(console_app, "mo", PASSWORD).status_code == 429
    keys = list(rds.scan_iter("console:signin_failures:*"))
    assert len(keys) == 2 and all(0 < rds.ttl(k) <= throttle.WINDOW_S for k in keys)
    for key in keys:
        rds.pexpire(key, 50)
    time.sleep(0.2)
    assert attempt(console_app, "mo", PASSWORD).status_code == 302


def test_the_sign_in_page_for_a_locked_account_renders_the_message(console_app, staff):
    for _ in range(throttle.ACCOUNT_LIMIT):
        attempt(console_app, "mo")
    browser = Browser(console_app)
    response = browser.login("mo")
    assert response.status_code == 429
    assert 'role="alert"' in response.get_data(as_text=True)


def test_cli_unlock_and_reset_password_forgive_the_account(console_app, staff):
    runner = console_app.test_cli_runner()
    for _ in range(throttle.ACCOUNT_LIMIT):
        attempt(console_app, "mo")
    assert runner.invoke(args=["users", "unlock", "mo"]).exit_code == 0
    assert attempt(console_app, "mo", PASSWORD).status_code == 302
    for _ in range(throttle.ACCOUNT_LIMIT):
        attempt(console_app, "mo", address="10.0.0.2")
    out = runner.invoke(args=["users", "reset-password", "mo", "--password", "a brand new passphrase"])
    assert out.exit_code == 0 and "1 open session(s) ended" in out.output  # the sign-in just above
    assert attempt(console_app, "mo", "a brand new passphrase", address="10.0.0.2").status_code == 302
