"""The signed-in moderator's own account: their role, their password, their other sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, g, redirect, render_template, request, url_for

from app.console import accounts, session_store, throttle
from app.db import session_scope
from app.redis_client import get_redis
from web.console import bp
from web.console.access import COOKIE, audit, audit_lock, client_address, notify

MAY = {
    "viewer": "read every page: the queue, events, users, appeals, the policy and the reports",
    "moderator": "also claim and decide review items, reverse actions and enter and decide appeals",
    "admin": "also change the policy",
}


@bp.get("/account")
def account() -> Any:
    return _page()


@bp.post("/account/password")
def change_password() -> Any:
    client, address, name = get_redis(), client_address(), g.account.username
    lock = throttle.blocked(client, name, address)
    if lock is not None:
        return _throttled(lock)
    form = request.form
    try:
        accounts.change_own_password(g.account.id, form.get("current_password", ""), form.get("new_password", ""),
                                     form.get("confirm_password", ""), address=address)
    except accounts.WrongPassword as exc:
        # Counted like a failed sign-in: a borrowed session must not become a way to guess the password.
        lock = throttle.record_failure(client, name, address)
        if lock is not None:
            audit_lock(name, address, lock)
        return _throttled(lock) if lock is not None else _page(password_error=str(exc).capitalize() + ".", status=400)
    except accounts.AccountError as exc:
        return _page(password_error=str(exc).capitalize() + ".", status=400)
    ended = session_store.end_all(client, g.account.id, keep_token=request.cookies.get(COOKIE, ""))
    notify("Password changed." + (f" Signed out {_sessions(ended)} elsewhere." if ended else ""))
    return redirect(url_for("console.account"))


@bp.post("/account/sessions/end-others")
def end_other_sessions() -> Any:
    ended = session_store.end_all(get_redis(), g.account.id, keep_token=request.cookies.get(COOKIE, ""))
    with session_scope() as db:
        db.add(audit("console.sessions_ended", count=ended, address=client_address()))
    notify(f"Signed out {_sessions(ended)} elsewhere." if ended else "No other session was open.")
    return redirect(url_for("console.account"))


def _page(password_error: str = "", status: int = 200) -> tuple[str, int]:
    profile = accounts.profile(g.account.id)
    if profile is None:
        abort(404, description="This account no longer exists.")
    current = session_store.key(request.cookies.get(COOKIE, ""))
    sessions = [{"this": key == current, "started_at": _when(data.get("started_at")),
                 "address": data.get("address") or "unknown", "agent": data.get("agent") or ""}
                for key, data in session_store.listing(get_redis(), g.account.id).items()]
    sessions.sort(key=lambda s: (not s["this"], s["started_at"] or datetime.min.replace(tzinfo=UTC)))
    return render_template("console/account.html", profile=profile, may=MAY[g.account.role], sessions=sessions,
                           others=sum(not s["this"] for s in sessions), password_error=password_error,
                           min_password=accounts.MIN_PASSWORD), status


def _throttled(lock: throttle.Blocked) -> Response:
    minutes = max(1, -(-lock.retry_after_s // 60))
    text, status = _page(password_error=f"Too many wrong passwords. Try again in {minutes} minute"
                         + ("s." if minutes != 1 else "."), status=429)
    return Response(text, status=status, headers={"Retry-After": str(lock.retry_after_s)})


def _sessions(count: int) -> str:
    return f"{count} session" + ("" if count == 1 else "s")


def _when(epoch: Any) -> datetime | None:
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else None
