"""Sign-in, server-side sessions, CSRF and roles for the console.

The cookie holds only a random token; the session (account id, CSRF token) lives in Redis under the
token's SHA-256, so signing out or disabling an account ends it everywhere and nothing secret sits
in the browser. Every POST carries the session's CSRF token (a hidden field, or X-CSRF-Token from
the page's JavaScript); the sign-in form, before any session exists, uses a double-submit cookie.
Failed sign-ins are throttled per account name and per client address (app.console.throttle).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, abort, current_app, g, redirect, render_template, request, url_for

from app.console import accounts, session_store, throttle
from app.console.accounts import Account
from app.db import session_scope
from app.models import AuditLog
from app.redis_client import get_redis
from web.console import bp

COOKIE = "safety_console"
LOGIN_CSRF_COOKIE = "safety_console_login"
OPEN_ENDPOINTS = {"console.login", "console.static"}
# POSTs that change nothing and whose sender cannot carry the token: Flower's own script searching its tasks.
CSRF_EXEMPT = {"console.flower_tasks_table"}
log = logging.getLogger(__name__)


def _key(token: str) -> str:
    return session_store.key(token)


def client_address() -> str:
    """The socket's peer: X-Forwarded-For is the client's to write, so the throttle never reads it."""
    return request.remote_addr or "unknown"


def _settings() -> Any:
    return current_app.config["SETTINGS"]


@bp.before_request
def load_session() -> Response | None:
    g.account, g.csrf = None, ""
    token = request.cookies.get(COOKIE, "")
    if token:
        data = session_store.load(get_redis(), token, _settings().CONSOLE_SESSION_TTL_S)
        if data:
            account = accounts.active(int(data["account_id"]))
            if account is not None:
                g.account, g.csrf = account, data["csrf"]
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if g.account is None:
        # A browser's navigation accepts */* too: only a client that prefers JSON gets the bare 401.
        if request.method == "GET" and _prefers_html():
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        abort(401, description="Sign in to the console first.")
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.endpoint not in CSRF_EXEMPT:
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
        if not sent or not hmac.compare_digest(sent, g.csrf):
            abort(400, description="The form's CSRF token is missing or stale; reload the page and try again.")
    return None


def _prefers_html() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) != "application/json"


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def requires(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse (403) a signed-in account whose role is below ``role``."""
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not g.account.can(role):
                abort(403, description=f"This needs the {role} role; you are a {g.account.role}.")
            return view(*args, **kwargs)
        return wrapper
    return decorate


def actor() -> str:
    return f"moderator:{g.account.username}"


def audit(kind: str, **detail: Any) -> AuditLog:
    """An audit row naming the signed-in moderator (the caller adds it to its unit of work)."""
    return AuditLog(actor=actor(), kind=kind, event_id=detail.pop("event_id", None),
                    action_id=detail.pop("action_id", None), platform=detail.pop("platform", None), detail=detail)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error, status, retry_after = "", 200, 0
    if request.method == "POST":
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        sent = request.form.get("csrf_token", "")
        if not cookie or not hmac.compare_digest(cookie, sent):
            abort(400, description="The sign-in form expired; reload the page and try again.")
        username, address = request.form.get("username", "")[:64], client_address()
        client = get_redis()
        lock = throttle.blocked(client, username, address)
        if lock is None:
            account = accounts.authenticate(username, request.form.get("password", ""), address=address)
            if account is not None:
                throttle.clear_account(client, username)
                return _start_session(account)
            lock = throttle.record_failure(client, username, address)
            if lock is not None:  # this failure spent a budget: audit the lock once, as it starts
                audit_lock(username, address, lock)
            else:
                error, status = "Wrong user name or password.", 401
        else:  # refused unchecked; not audited row by row, so a flood cannot fill the audit log
            log.warning("console sign-in refused (%s throttled) for %r from %s", lock.scope, username, address)
        if lock is not None:
            error, status, retry_after = _throttled_message(lock.retry_after_s), 429, lock.retry_after_s
    token = secrets.token_urlsafe(24)
    response = Response(render_template("console/login.html", csrf=token, error=error), status=status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    _set_cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


def _throttled_message(seconds: int) -> str:
    # The same words for an account name and an address, and whether or not the name exists.
    minutes = max(1, -(-seconds // 60))
    return (f"Too many failed sign-ins for this user name or from this address. Try again in {minutes} minute"
            + ("s." if minutes != 1 else "."))


def audit_lock(username: str, address: str, lock: throttle.Blocked) -> None:
    detail = {"address": address, "scope": lock.scope, "retry_after_s": lock.retry_after_s}
    with session_scope() as db:
        db.add(AuditLog(actor=f"moderator:{username}", kind="console.sign_in_throttled", detail=detail))


@bp.post("/logout")
def logout() -> Response:
    session_store.end(get_redis(), request.cookies.get(COOKIE, ""), g.account.id)
    response = redirect(url_for("console.login"))
    response.delete_cookie(COOKIE, path="/admin")
    return response


def _start_session(account: Account) -> Response:
    token = session_store.create(get_redis(), account.id, _settings().CONSOLE_SESSION_TTL_S,
                                 address=client_address(), agent=request.headers.get("User-Agent", ""))
    target = request.args.get("next", "")
    if not target.startswith("/admin") or target.startswith("//"):  # never an open redirect
        target = url_for("console.queue")
    response = redirect(target)
    _set_cookie(response, COOKIE, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")
    return response


def _set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/admin", httponly=True, samesite="Strict",
                        secure=request.is_secure or _settings().CONSOLE_SECURE_COOKIES)


@bp.errorhandler(400)
@bp.errorhandler(401)
@bp.errorhandler(403)
@bp.errorhandler(404)
@bp.errorhandler(409)
@bp.errorhandler(429)
@bp.errorhandler(502)
def console_error(exc: Any) -> tuple[Any, int]:
    status = getattr(exc, "code", 500) or 500
    message = getattr(exc, "description", str(exc))
    if request.accept_mimetypes.accept_json and not request.accept_mimetypes.accept_html:
        from web.errors import error_response

        return error_response(status, message)
    return render_template("console/error.html", status=status, message=message), status


def notify(message: str, kind: str = "ok") -> None:
    """A message shown once on the next page (kept with the session in Redis, not in a cookie)."""
    key = _key(request.cookies.get(COOKIE, "")) + ":flash"
    pipe = get_redis().pipeline(transaction=False)
    pipe.rpush(key, json.dumps([kind, message]))
    pipe.expire(key, 300)
    pipe.execute()


@bp.app_context_processor
def console_context() -> dict[str, Any]:
    def messages() -> list[tuple[str, str]]:
        if not request.blueprint == "console" or not request.cookies.get(COOKIE):
            return []
        key = _key(request.cookies.get(COOKIE, "")) + ":flash"
        pipe = get_redis().pipeline(transaction=True)
        pipe.lrange(key, 0, -1)
        pipe.delete(key)
        raw, _ = pipe.execute()
        return [tuple(json.loads(item)) for item in raw]

    return {"messages": messages, "account": g.get("account"), "csrf_token": g.get("csrf", "")}
