"""docker-compose.yml cannot run here (no Docker engine), so read it and check it against the code."""

from __future__ import annotations

import importlib
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = [name for name, svc in SERVICES.items() if svc.get("build")]


def test_the_full_stack_is_there():
    assert {"postgres", "redis", "qdrant", "migrate", "web", "flower", "worker-screening", "worker-reasoning",
            "worker-actions", "worker-maintenance"} <= set(SERVICES)


@pytest.mark.parametrize("name", [n for n in SERVICES if n not in {"migrate", "ollama"}])
def test_every_long_running_service_has_a_health_check(name):
    assert SERVICES[name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_dependencies(name):
    deps = SERVICES[name]["depends_on"]
    for dep, cond in deps.items():
        assert dep in SERVICES
        assert cond["condition"] in {"service_healthy", "service_completed_successfully"}
    if name != "migrate":
        assert deps["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_command_exists_in_the_code(name):
    command = SERVICES[name]["command"]
    program = command[0]
    if program == "gunicorn":
        module, attr = command[command.index("--config") + 2].split(":")
        assert (ROOT / command[command.index("--config") + 1]).exists()
        assert (ROOT / f"{module}.py").exists()
        assert f"{attr} = create_app()" in (ROOT / f"{module}.py").read_text()
    elif program == "celery":
        module = command[command.index("-A") + 1]
        celery_app = importlib.import_module(module).app
        assert command[command.index("-A") + 2] in {"worker", "flower"}
        if "-Q" in command:
            queue = command[command.index("-Q") + 1]
            assert queue in {q.name for q in celery_app.conf.task_queues}
            assert any(route["queue"] == queue for route in celery_app.conf.task_routes.values())
    elif program == "python":
        assert command[1] == "-m"
        module = command[2]
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), module
        importlib.import_module(module)
    elif program == "alembic":
        assert command[1:] == ["upgrade", "head"]
        assert (ROOT / "alembic.ini").exists() and (ROOT / "migrations" / "env.py").exists()
    else:
        pytest.fail(f"unknown program {program!r} in {name}")


def test_every_screening_and_worker_queue_has_a_worker():
    from tasks.celery_app import app as celery_app

    served = {svc["command"][svc["command"].index("-Q") + 1] for svc in SERVICES.values()
              if "-Q" in svc.get("command", [])}
    assert served == {q.name for q in celery_app.conf.task_queues}


def test_app_environment_uses_known_setting_names():
    known = {f.name for f in fields(Settings)} | {"PROMETHEUS_MULTIPROC_DIR"}
    env = SERVICES["web"]["environment"]
    assert set(env) <= known, set(env) - known


def test_dockerfile_installs_the_pinned_requirements():
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in text
    assert "FROM python:3.11" in text


def test_flower_serves_where_the_console_shows_it():
    """The console's /admin/flower/ proxies to FLOWER_URL under its own path (web/console/flower.py)."""
    from web.console.flower import PREFIX

    flower = SERVICES["flower"]
    assert f"--url_prefix={PREFIX.strip('/')}" in flower["command"]
    assert f"{PREFIX}/healthcheck" in " ".join(flower["healthcheck"]["test"])
    assert SERVICES["web"]["environment"]["FLOWER_URL"].endswith("http://flower:5555}")
