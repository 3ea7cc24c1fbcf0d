"""``make run``: the whole system on one machine, with embedded services where none are configured.

    python -m app.devstack run        # start everything; Ctrl-C stops every process it started
    python -m app.devstack services   # only PostgreSQL + Redis (prints their URLs), for tools and benches

DATABASE_URL / REDIS_URL (or REDIS_HOST/REDIS_PORT) point at existing services instead; then none
is started. Every other setting is passed through the environment to the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.config import FLOWER_PREFIX
from app.embedded import EmbeddedPostgres, EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("SAFETY_VAR_DIR", ROOT / "var")).resolve()
BIN = Path(sys.executable).parent
WEB_PORT = int(os.environ.get("WEB_PORT", "8001"))
FLOWER_PORT = int(os.environ.get("FLOWER_PORT", "5555"))
# Loopback unless told otherwise: the API, the console and Flower show message text.
WEB_HOST = os.environ.get("WEB_HOST", "127.0.0.1")
FLOWER_ADDRESS = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# One worker group per queue; screening gets its own processes so LLM calls never block it.
WORKERS = {
    # A screen.batch message only wakes a reader (the batch comes from the events:raw consumer
    # group): prefetching more than one per process would park wakes behind a busy process.
    "screening": ["--concurrency", os.environ.get("SCREENING_CONCURRENCY", "2"), "--prefetch-multiplier", "1"],
    # Qdrant's local mode (no QDRANT_HOST) lets one process open var/qdrant: one reasoning process then.
    "reasoning": ["--concurrency", "2" if os.environ.get("QDRANT_HOST") else "1"],
    "actions": ["--concurrency", "1"],
    "maintenance": ["--concurrency", "1", "--beat", "--schedule", str(VAR / "celerybeat-schedule")],
}


def ensure_services(env: dict[str, str]) -> list[object]:
    """Start embedded PostgreSQL/Redis for whatever is not configured; returns what to stop later."""
    started: list[object] = []
    if not env.get("DATABASE_URL"):
        pg = EmbeddedPostgres(VAR / "postgres").start()
        env["DATABASE_URL"] = pg.url
        started.append(pg)
    if not env.get("REDIS_URL") and not env.get("REDIS_HOST"):
        rd = EmbeddedRedis(VAR / "redis").start()
        env["REDIS_URL"] = rd.url
        started.append(rd)
    return started


def local_api_key(env: dict[str, str]) -> str | None:
    """Keep API_KEYS when given; otherwise a key generated once and kept under var/."""
    if env.get("API_KEYS"):
        return None
    path = VAR / "local-api-key"
    if not path.exists():
        VAR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    env["API_KEYS"] = path.read_text().strip()
    return env["API_KEYS"]


def migrate(env: dict[str, str]) -> None:
    subprocess.run([str(BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True)


def first_admin(env: dict[str, str]) -> tuple[str, str] | None:
    """On an empty moderators table, create the console's first admin (ADMIN_USER / ADMIN_PASSWORD,
    or ``admin`` with a generated password); returns the credentials to show once."""
    from app.config import Settings, set_settings
    from app.console.accounts import ensure_first_admin

    set_settings(Settings.from_mapping(env))
    username = env.get("ADMIN_USER") or "admin"
    from app.db import engine_for

    password = ensure_first_admin(username, env.get("ADMIN_PASSWORD"))
    engine_for(env["DATABASE_URL"]).dispose()  # this supervisor keeps no connection open
    return (username, password) if password else None


def flower_auth(env: dict[str, str]) -> str | None:
    """Flower listening beyond loopback gets basic auth (FLOWER_BASIC_AUTH, else generated under var/)."""
    if FLOWER_ADDRESS in LOOPBACK or env.get("FLOWER_BASIC_AUTH"):
        return None
    path = VAR / "flower-auth"
    if not path.exists():
        VAR.mkdir(exist_ok=True)
        path.write_text(f"flower:{secrets.token_urlsafe(18)}")
        path.chmod(0o600)
    env["FLOWER_BASIC_AUTH"] = path.read_text().strip()  # Flower reads its options from FLOWER_* variables
    return env["FLOWER_BASIC_AUTH"]


def commands() -> dict[str, list[str]]:
    # ``python -m`` keeps the project root on sys.path; the ``celery`` script drops it again after
    # loading the app, which breaks the lazy model import in the workers.
    celery = [sys.executable, "-m", "celery"]
    procs = {"web": [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app",
                     "--bind", f"{WEB_HOST}:{WEB_PORT}"]}
    for queue, extra in WORKERS.items():
        procs[f"worker-{queue}"] = [*celery, "-A", "tasks.celery_app", "worker", "-Q", queue,
                                    "-n", f"{queue}@%h", "--loglevel", "INFO", *extra]
    if os.environ.get("DISCORD_BOT_TOKEN"):  # the gateway bridge, only when there is a bot to run
        procs["discord-bridge"] = [sys.executable, "-m", "app.discord_bridge"]
    # Flower serves under the console's path, so /admin/flower/ can show it to signed-in admins.
    procs["flower"] = [*celery, "-A", "tasks.celery_app", "flower", f"--port={FLOWER_PORT}",
                       f"--address={FLOWER_ADDRESS}", f"--url_prefix={FLOWER_PREFIX.strip('/')}"]
    return procs


_stop = {"now": False}


def _request_stop(signum: int, _frame: object) -> None:
    _stop["now"] = True


def run() -> int:
    # Ctrl-C at any moment from here on stops everything cleanly, even before the banner.
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    env = dict(os.environ)
    services = ensure_services(env)
    key = local_api_key(env)
    metrics_dir = VAR / "prometheus"
    _fresh_dir(metrics_dir)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env.setdefault("BRIDGE_TARGET_URL", f"http://127.0.0.1:{WEB_PORT}/v1/webhooks/discord")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        migrate(env)
        admin = first_admin(env)
        flower = flower_auth(env)
        env.setdefault("FLOWER_URL", flower_url(flower))
        for name, cmd in commands().items():
            procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        _wait_for_workers(env, procs, expected=len(WORKERS))
        if not _stop["now"]:
            _banner(key, admin, flower)
        return _supervise(procs)
    finally:
        _stop_all(procs)
        for service in reversed(services):
            service.stop()  # type: ignore[attr-defined]


def flower_url(auth: str | None) -> str:
    """Where the web process reaches Flower for the console's /admin/flower/ (its basic auth included)."""
    host = "127.0.0.1" if FLOWER_ADDRESS in ("0.0.0.0", "::", *LOOPBACK) else FLOWER_ADDRESS
    return f"http://{auth + '@' if auth else ''}{host}:{FLOWER_PORT}"


def _wait_for_workers(env: dict[str, str], procs: dict[str, subprocess.Popen[bytes]], expected: int,
                      timeout_s: float = 90.0) -> None:
    """Print the banner only once every worker answers a ping: an event sent right after it is
    screened at once instead of waiting in the queue for a worker that is still starting."""
    from app.config import Settings
    from tasks.celery_app import app as celery

    celery.conf.broker_url = Settings.from_mapping(env).broker_url
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not _stop["now"]:
        if any(proc.poll() is not None for proc in procs.values()):
            return  # _supervise reports which one died
        try:
            if len(celery.control.ping(timeout=1.0)) >= expected:
                return
        except Exception:  # the broker may still be coming up
            time.sleep(0.5)
    print("warning: not every worker answered within 90 s; see the log above", file=sys.stderr, flush=True)


def _fresh_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


EXAMPLE_EVENT = {"event_id": "m1", "platform": "web", "author_id": "u1", "user_id": "u2", "channel_id": "lobby",
                 "content": "you are a worthless idiot, nobody wants you here"}


def _banner(key: str | None, admin: tuple[str, str] | None = None, flower: str | None = None) -> None:
    shown = key or "<one of your API_KEYS>"
    example = json.dumps(EXAMPLE_EVENT, separators=(",", ":"))
    web = f"http://{'127.0.0.1' if WEB_HOST in ('0.0.0.0', '::') else WEB_HOST}:{WEB_PORT}"
    signin = (f"\n    Console    first admin {admin[0]!r}, password {admin[1]}  (shown once; "
              "flask --app wsgi users ... for more)") if admin else ""
    flower_note = f"  (basic auth {flower})" if flower else ""
    print(f"""
  Safety system running
    API        {web}/v1   (health: /healthz, /readyz; metrics: /metrics)
    Console    {web}/admin{signin}
    Flower     {web}/admin/flower/  (console admins)  or  http://{FLOWER_ADDRESS}:{FLOWER_PORT}{FLOWER_PREFIX}/{flower_note}
    API key    {shown}

  Try it:
    curl -s -X POST http://127.0.0.1:{WEB_PORT}/v1/events/ingest -H 'Content-Type: application/json' \\
      -H 'X-API-Key: {shown}' \\
      -d '{example}'
    curl -s http://127.0.0.1:{WEB_PORT}/v1/events/m1 -H 'X-API-Key: {shown}'

  Ctrl-C stops everything.
""", flush=True)


def _supervise(procs: dict[str, subprocess.Popen[bytes]]) -> int:
    while not _stop["now"]:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"\n{name} exited with status {proc.returncode}; stopping the rest.", file=sys.stderr)
                return 1
        time.sleep(0.5)
    print("\nStopping...", flush=True)
    return 0


def _stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def services_only() -> int:
    env = dict(os.environ)
    services = ensure_services(env)
    print(f"DATABASE_URL={env['DATABASE_URL']}\nREDIS_URL={env.get('REDIS_URL', '')}", flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for service in reversed(services):
            service.stop()  # type: ignore[attr-defined]
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devstack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "services"])
    args = parser.parse_args(argv)
    return run() if args.command == "run" else services_only()


if __name__ == "__main__":
    sys.exit(main())
