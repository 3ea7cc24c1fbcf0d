"""Flower behind the console's sign-in: an admin reads it at /admin/flower/, nobody else, nothing written."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class FakeFlower:
    """Flower started with --url_prefix=admin/flower and basic auth flower:secret, as far as the proxy sees."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.seen.append({"method": request.method, "path": request.path, "query": request.query_string.decode(),
                          "headers": dict(request.headers)})
        expected = "Basic " + base64.b64encode(b"flower:secret").decode()
        if request.headers.get("Authorization") != expected:
            response = Response("auth", status=401, headers={"WWW-Authenticate": 'Basic realm="flower"'})
        elif not request.path.startswith("/admin/flower/"):
            response = Response("not found", status=404)
        elif request.path == "/admin/flower/old":
            response = Response("", status=302, headers={"Location": "http://127.0.0.1:1/admin/flower/tasks?x=1"})
        elif request.path == "/admin/flower/tasks/datatable":
            response = Response(json.dumps({"data": [], "search": request.form.get("search[value]", "")}),
                                content_type="application/json")
        elif request.path == "/admin/flower/api/workers":
            response = Response('{"celery@w1": {}}', content_type="application/json",
                                headers={"Set-Cookie": "_xsrf=flower; Path=/", "Cache-Control": "no-cache"})
        else:
            response = Response(f"<html><body>Flower {request.path}</body></html>", content_type="text/html")
        return response(environ, start_response)


@pytest.fixture
def flower_server() -> Iterator[tuple[FakeFlower, int]]:
    flower = FakeFlower()
    server = make_server("127.0.0.1", 0, flower, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield flower, server.server_port
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def flower_url(flower_server: tuple[FakeFlower, int]) -> str:
    return f"http://flower:secret@127.0.0.1:{flower_server[1]}"


@pytest.fixture
def console_map(settings_map: dict[str, Any], fakes: Any, flower_url: str) -> dict[str, Any]:
    return settings_map | fakes.settings() | {"FLOWER_URL": flower_url}


def test_an_admin_reads_flower_through_the_console(as_role, flower_server):
    flower, _ = flower_server
    admin = as_role("admin")
    page = admin.get("/admin/flower/")
    assert page.status_code == 200 and "Flower /admin/flower/" in page.get_data(as_text=True)
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]  # the console's headers still apply
    api = admin.get("/admin/flower/api/workers?refresh=1", headers={"Accept": "application/json"})
    assert api.status_code == 200 and api.get_json() == {"celery@w1": {}}
    assert "Set-Cookie" not in api.headers and api.headers["Cache-Control"] == "no-cache"
    upstream = flower.seen[-1]
    assert upstream["path"] == "/admin/flower/api/workers" and upstream["query"] == "refresh=1"
    assert "Cookie" not in upstream["headers"] and "X-Csrf-Token" not in upstream["headers"]
    moved = admin.get("/admin/flower")  # Flower's script recognises its dashboard by the slash
    assert moved.status_code == 308 and moved.headers["Location"].endswith("/admin/flower/")


def test_flower_redirects_stay_on_the_console(as_role):
    moved = as_role("admin").get("/admin/flower/old")
    assert moved.status_code == 302 and moved.headers["Location"] == "/admin/flower/tasks?x=1"


def test_only_admins_and_only_reading(as_role, console_app, flower_server):
    flower, _ = flower_server
    assert as_role("moderator").get("/admin/flower/").status_code == 403
    assert as_role("viewer").get("/admin/flower/").status_code == 403
    anonymous = console_app.test_client().get("/admin/flower/")
    assert anonymous.status_code == 302 and "/admin/login" in anonymous.headers["Location"]
    admin = as_role("admin")
    assert admin.post("/admin/flower/api/task/revoke/abc").status_code == 405
    assert admin.get("/admin/flower/../metrics").status_code in (404, 308)
    assert all(seen["method"] == "GET" and "revoke" not in seen["path"] for seen in flower.seen)


def test_the_tasks_search_is_the_one_post_passed_on(as_role, console_app, flower_server):
    flower, _ = flower_server
    admin = as_role("admin")
    # Flower's script sends no console CSRF token; this read-only search is exempt, and only for an admin.
    found = admin.client.post("/admin/flower/tasks/datatable", data={"search[value]": "act.apply", "draw": "1"})
    assert found.status_code == 200 and found.get_json() == {"data": [], "search": "act.apply"}
    assert flower.seen[-1]["method"] == "POST"
    assert as_role("moderator").client.post("/admin/flower/tasks/datatable").status_code == 403
    assert console_app.test_client().post("/admin/flower/tasks/datatable").status_code == 401
    assert admin.client.post("/admin/flower/api/worker/shutdown/w1").status_code == 405
    assert all("shutdown" not in seen["path"] for seen in flower.seen)


def test_the_reports_page_never_shows_flowers_credentials(as_role):
    for role in ("viewer", "admin"):
        html = as_role(role).get("/admin/reports").get_data(as_text=True)
        assert "secret" not in html and "http://127.0.0.1:" in html
        assert ('href="/admin/flower/"' in html) == (role == "admin")


@pytest.mark.parametrize("flower_url", ["http://127.0.0.1:9"], indirect=False)
def test_an_unreachable_flower_is_a_502_that_says_so(as_role, flower_url):
    page = as_role("admin").get("/admin/flower/")
    assert page.status_code == 502 and "Flower did not answer at http://127.0.0.1:9" in page.get_data(as_text=True)


class TestMisconfigured:
    @pytest.fixture
    def flower_url(self, flower_server: tuple[FakeFlower, int]) -> str:
        return f"http://127.0.0.1:{flower_server[1]}"

    def test_missing_credentials_say_where_they_go(self, as_role):
        page = as_role("admin").get("/admin/flower/")
        assert page.status_code == 502 and "FLOWER_URL" in page.get_data(as_text=True)
