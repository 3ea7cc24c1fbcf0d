"""The real Flower (started with --url_prefix=admin/flower) in a real Chromium, through the console."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.console import browser as b
from tests.console.conftest import PASSWORD

if b.why_not():
    pytest.skip(f"browser tests skipped: {b.why_not()}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def flower_url(services: dict[str, str]) -> Iterator[str]:
    from app.config import Settings

    port = free_port()
    broker = Settings.from_mapping({"REDIS_URL": services["REDIS_URL"]}).broker_url  # kombu spells a socket its way
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks.celery_app", f"--broker={broker}", "flower",
         f"--port={port}", "--address=127.0.0.1", "--url_prefix=admin/flower", "--basic_auth=flower:secret"],
        cwd=b.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://flower:secret@127.0.0.1:{port}"
    try:
        b.until(lambda: _answers(url + "/admin/flower/healthcheck"), "Flower to start", timeout_s=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def console_map(settings_map: dict[str, Any], fakes: Any, flower_url: str) -> dict[str, Any]:
    return settings_map | fakes.settings() | {"FLOWER_URL": flower_url}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from b.launch()


def test_an_admin_sees_flower_inside_the_console_with_its_scripts_running(chromium, console_app, staff):
    with b.LiveServer(console_app) as live:
        context = chromium.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        b.sign_in(page, live.url, "ada", PASSWORD)
        page.goto(f"{live.url}/admin/reports")
        # The dashboard's own script loads its workers table through the proxy.
        with page.expect_response(lambda r: "/admin/flower/workers?json=1" in r.url, timeout=15000) as polled:
            page.click("a.flower")
        page.locator("#workers-table").wait_for()
        assert polled.value.status == 200, problems
        b.screenshot(page, "flower")
        page.goto(f"{live.url}/admin/flower/tasks")
        with page.expect_response(lambda r: r.url.endswith("/admin/flower/tasks/datatable"), timeout=15000) as table:
            page.reload()  # the tasks table loads through its POST search
        assert table.value.status == 200
        assert not [p for p in problems if "Content Security Policy" in p or "autorefresh" in p], problems
        context.close()
