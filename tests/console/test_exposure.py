"""What `make run` exposes: loopback binds by default, Flower with basic auth beyond loopback, and
the console's first admin on an empty database."""

from __future__ import annotations

import importlib

import pytest

from app.console import accounts


@pytest.fixture
def devstack(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    def load(**env: str):  # type: ignore[no-untyped-def]
        for name in ("WEB_HOST", "FLOWER_ADDRESS", "FLOWER_BASIC_AUTH"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SAFETY_VAR_DIR", str(tmp_path))
        import app.devstack

        return importlib.reload(app.devstack)
    yield load
    monkeypatch.undo()
    import app.devstack

    importlib.reload(app.devstack)


def test_web_and_flower_bind_to_loopback_by_default(devstack):
    stack = devstack()
    procs = stack.commands()
    assert procs["web"][procs["web"].index("--bind") + 1].startswith("127.0.0.1:")
    assert "--address=127.0.0.1" in procs["flower"]
    env: dict[str, str] = {}
    assert stack.flower_auth(env) is None and "FLOWER_BASIC_AUTH" not in env


def test_flower_beyond_loopback_gets_basic_auth(devstack):
    stack = devstack(FLOWER_ADDRESS="0.0.0.0")
    env: dict[str, str] = {}
    credentials = stack.flower_auth(env)
    assert credentials and credentials.startswith("flower:") and env["FLOWER_BASIC_AUTH"] == credentials
    assert stack.flower_auth({}) == credentials  # kept under var/, the same on the next start


def test_make_run_creates_the_first_admin_once(devstack, settings_map, settings):
    stack = devstack()
    created = stack.first_admin(dict(settings_map, ADMIN_USER="root", ADMIN_PASSWORD="a long enough secret"))
    assert created == ("root", "a long enough secret")
    assert stack.first_admin(dict(settings_map)) is None
    assert accounts.authenticate("root", "a long enough secret") is not None
