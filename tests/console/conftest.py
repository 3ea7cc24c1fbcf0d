"""Console fixtures: accounts of each role, a signed-in test client, rows waiting for review."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app.console import accounts
from app.db import session_scope
from app.models import AuditLog
from tests.fakes.platform_servers import FakePlatforms
from tests.fakes.rows import insert_action, insert_event

PASSWORD = "correct horse battery staple"


@pytest.fixture
def fakes() -> Iterator[FakePlatforms]:
    with FakePlatforms() as fakes:
        yield fakes


@pytest.fixture
def console_map(settings_map: dict[str, Any], fakes: FakePlatforms) -> dict[str, Any]:
    return settings_map | fakes.settings()


@pytest.fixture
def console_app(console_map: dict[str, Any], settings: Any):  # type: ignore[no-untyped-def]
    from app.config import set_settings
    from web import create_app

    flask_app = create_app(console_map | {"TESTING": "1"})
    yield flask_app
    set_settings(settings)


@pytest.fixture
def staff(console_app: Any) -> dict[str, str]:
    for name, role in (("ada", "admin"), ("mo", "moderator"), ("vi", "viewer"), ("max", "moderator")):
        accounts.create(name, role, PASSWORD, actor="test")
    return {"admin": "ada", "moderator": "mo", "viewer": "vi", "moderator2": "max"}


class Browser:
    """A test client that signs in through the form and sends the page's CSRF token with each POST."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        self.csrf = ""

    def login(self, username: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        response = self.client.post("/admin/login", data={"csrf_token": token, "username": username,
                                                          "password": password})
        self.csrf = self.token()
        return response

    def token(self) -> str:
        page = self.client.get("/admin/appeals").get_data(as_text=True)
        found = re.search(r'name="csrf-token" content="([^"]*)"', page)
        return found.group(1) if found else ""

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kw)


@pytest.fixture
def as_role(console_app: Any, staff: dict[str, str]):  # type: ignore[no-untyped-def]
    def signed_in(role: str) -> Browser:
        browser = Browser(console_app)
        assert browser.login(staff[role]).status_code == 302
        return browser
    return signed_in


def review_item(platform: str = "web", event_id: str = "m_9001", recommended: str = "timeout") -> str:
    """An event a gate handed to people, as act._to_review leaves it."""
    insert_event(platform, event_id=event_id)
    action_id = insert_action(platform, "human_review", event_id=event_id, status="applied",
                              applied_at=datetime.now(UTC))
    with session_scope() as db:
        db.add(AuditLog(actor="system", kind="action.review", event_id=event_id, action_id=action_id,
                        platform=platform, detail={"recommended": {"action_type": recommended},
                                                   "reason": "model_uncertain"}))
    return action_id


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One clear line when the browser tests could not run (make test stays green without Chromium)."""
    from tests.console.browser import why_not

    reason = why_not()
    if reason and terminalreporter.config.getoption("collectonly") is False:
        terminalreporter.write_line(f"console browser tests SKIPPED: {reason}", yellow=True, bold=True)
