"""Flower, read-only, behind the console's sign-in: /admin/flower/ for admins.

Flower's own log-in is basic auth or a hosted OAuth provider; neither knows the console's accounts. Here
the console proxies GET and HEAD to Flower for a signed-in admin, so Flower's pages share the console's
session, roles and security headers. Flower has to serve under the same path: start it with
``--url_prefix=admin/flower`` (or ``FLOWER_URL_PREFIX=admin/flower``). ``FLOWER_URL`` is where this process
reaches it; basic-auth credentials in it (``http://flower:secret@127.0.0.1:5555``) are sent upstream and
never shown. Worker control (revoke, shutdown, pool changes) is a POST and is not passed on; the one POST
that is, the tasks page's search, only reads.
"""

from __future__ import annotations

import base64
import hashlib

import httpx
from flask import Response, abort, current_app, request

from app.config import FLOWER_PREFIX
from web.console import bp
from web.console.access import requires

PREFIX = FLOWER_PREFIX
TIMEOUT_S = 10.0
# What may travel each way: never the console's cookie or CSRF header up, never Flower's cookies down.
REQUEST_HEADERS = ("Accept", "Accept-Language", "If-None-Match", "If-Modified-Since", "X-Requested-With")
RESPONSE_HEADERS = ("Content-Type", "Cache-Control", "ETag", "Last-Modified", "Expires")
# Flower 2.2's one inline script (workers.html sets the auto-refresh flag), allowed by its hash and nothing else.
_INLINE = ("\nvar autorefresh = 1;\n", "\nvar autorefresh = 0;\n")
_HASHES = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in _INLINE)
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self' " + _HASHES
       + "; frame-ancestors 'none'; form-action 'self'")


def upstream() -> httpx.URL:
    return httpx.URL(current_app.config["SETTINGS"].FLOWER_URL)


def public_url(url: str) -> str:
    """FLOWER_URL without any credentials, for a page to show."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


@bp.route("/flower/", methods=["GET", "HEAD"])  # /admin/flower answers 308 to here: Flower wants the slash
@bp.route("/flower/<path:path>", methods=["GET", "HEAD"])
@requires("admin")
def flower(path: str = "") -> Response:
    if ".." in path.split("/"):
        abort(404, description="No such Flower page.")
    return _forward(path)


@bp.post("/flower/tasks/datatable")
@requires("admin")
def flower_tasks_table() -> Response:
    """The tasks page's search: a POST that only reads (exempt from the CSRF check in access.py, since
    Flower's script cannot send the console's token; the SameSite=Strict cookie keeps other sites out)."""
    return _forward("tasks/datatable", form=request.form.to_dict(flat=False))


def _forward(path: str, form: dict[str, list[str]] | None = None) -> Response:
    base = upstream()
    auth = (base.username, base.password) if base.userinfo else None
    target = base.copy_with(username=None, password=None, path=PREFIX + "/" + path,
                            query=request.query_string or None)
    headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
    try:
        answer = httpx.request(request.method, target, headers=headers, auth=auth, data=form, timeout=TIMEOUT_S,
                               follow_redirects=False)
    except httpx.HTTPError as exc:
        abort(502, description=f"Flower did not answer at {public_url(str(base))} ({type(exc).__name__}).")
    if answer.status_code == 401:
        abort(502, description="Flower refused the console's credentials: put its basic auth in FLOWER_URL "
                               "(http://user:password@host:5555).")
    if answer.status_code == 404 and not path:
        abort(502, description="Flower does not serve under /admin/flower: start it with "
                               "--url_prefix=admin/flower (or FLOWER_URL_PREFIX=admin/flower).")
    response = Response(answer.content if request.method != "HEAD" else b"", status=answer.status_code)
    for name in RESPONSE_HEADERS:
        if name in answer.headers:
            response.headers[name] = answer.headers[name]
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CSP
    location = answer.headers.get("Location")
    if location:  # Flower redirects within its prefix; an absolute one names the upstream host
        moved = httpx.URL(location)
        response.headers["Location"] = moved.raw_path.decode() if moved.is_absolute_url else location
    return response
