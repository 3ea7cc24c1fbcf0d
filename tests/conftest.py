"""Real services for every test: PostgreSQL and Redis from DATABASE_URL / REDIS_URL when set,
otherwise embedded ones started from the pip wheels in a temporary folder.

Each test run gets its own freshly migrated database, so a developer's data is never touched;
tables and Redis are emptied between tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
from sqlalchemy.engine import make_url

from app.config import Settings, set_settings
from app.db import sqlalchemy_url

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("events", "users", "sessions", "actions", "audit_log", "alerts", "moderators", "appeals", "policy_settings")
TEST_API_KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    from app.embedded import EmbeddedPostgres, EmbeddedRedis

    started: list[Any] = []
    # Not pytest's tmp_path: that tree is private to root (0700), and PostgreSQL refuses to run as
    # root, so the embedded server runs as its own user and needs to reach its data folder.
    base = Path(tempfile.mkdtemp(prefix="safety-test-"))
    base.chmod(0o755)
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        pg = EmbeddedPostgres(base / "pg", database="postgres").start()
        started.append(pg)
        admin_url = pg.url
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        rd = EmbeddedRedis(base / "redis").start()
        started.append(rd)
        redis_url = rd.url
    elif "REDIS_TEST_DB" in os.environ or redis_url.rstrip("/").endswith(":6379"):
        redis_url = redis_url.rstrip("/") + "/" + os.environ.get("REDIS_TEST_DB", "15")
    database_url = _create_database(admin_url)
    _migrate(database_url)
    try:
        yield {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "_admin": admin_url}
    finally:
        _drop_database(admin_url, database_url)
        for service in reversed(started):
            service.stop()
        shutil.rmtree(base, ignore_errors=True)


def _psycopg_dsn(url: str) -> str:
    return make_url(sqlalchemy_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def _create_database(admin_url: str) -> str:
    name = f"safety_test_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(_psycopg_dsn(admin_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return make_url(sqlalchemy_url(admin_url)).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin_url: str, database_url: str) -> None:
    from app.db import engine_for

    engine_for(database_url).dispose()
    conn = psycopg2.connect(_psycopg_dsn(admin_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{make_url(database_url).database}" WITH (FORCE)')
    conn.close()


def _migrate(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True,
                   capture_output=True)


@pytest.fixture
def settings_map(services: dict[str, str]) -> dict[str, Any]:
    # Never shed (the default, said here so a changed default cannot reach them): a test's verdicts must not
    # depend on how fast this machine screens. Shedding has its own tests (tests/tasks/test_shedding.py).
    return {"DATABASE_URL": services["DATABASE_URL"], "REDIS_URL": services["REDIS_URL"],
            "API_KEYS": TEST_API_KEY, "SCREENING_SHED_AFTER_MS": "0"}


@pytest.fixture
def settings(settings_map: dict[str, Any]) -> Settings:
    settings = Settings.from_mapping(settings_map)
    set_settings(settings)
    return settings


@pytest.fixture
def rds(services: dict[str, str]) -> redis.Redis:
    from app.redis_client import redis_for

    return redis_for(services["REDIS_URL"])


@pytest.fixture(autouse=True)
def clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty tables and Redis before each test that uses the services."""
    if "services" not in request.fixturenames:
        yield
        return
    services = request.getfixturevalue("services")
    _truncate(services["DATABASE_URL"])
    from app.redis_client import redis_for

    redis_for(services["REDIS_URL"]).flushdb()
    yield


def _truncate(database_url: str) -> None:
    conn = psycopg2.connect(_psycopg_dsn(database_url))
    with conn, conn.cursor() as cur:
        # The audit log refuses TRUNCATE by trigger; replica mode skips triggers for this session only.
        cur.execute("SET session_replication_role = replica")
        cur.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
    conn.close()


@pytest.fixture
def app(settings_map: dict[str, Any], settings: Settings):  # type: ignore[no-untyped-def]
    from web import create_app

    flask_app = create_app(settings_map | {"TESTING": "1"})
    yield flask_app
    set_settings(settings)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Key": TEST_API_KEY}


def make_event(n: int | str = 1, **overrides: Any) -> dict[str, Any]:
    event = {"event_id": f"evt-{n}", "platform": "web", "author_id": "alice", "user_id": "bob",
             "channel_id": "lobby", "content": "hello there, good game everyone"}
    event.update(overrides)
    return event
