"""`make run` end to end: the launcher starts everything on embedded services, a curl-style request
is screened, and Ctrl-C (SIGINT) stops every process it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.timeout(240)
def test_make_run_starts_screens_and_stops_cleanly(tmp_path):
    web, flower = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "API_KEYS"}}
    env.update(SAFETY_VAR_DIR=str(tmp_path / "var"), WEB_PORT=str(web), FLOWER_PORT=str(flower),
               SCREENING_CONCURRENCY="1", PYTHONUNBUFFERED="1")
    with (tmp_path / "run.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app.devstack", "run"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{web}"
    try:
        key = _wait_for_key(tmp_path, proc)
        _wait(lambda: http("GET", f"{base}/readyz")[0] == 200, proc, tmp_path, "web ready")
        event = {"event_id": "m1", "platform": "web", "author_id": "u1", "user_id": "u2", "channel_id": "lobby",
                 "content": "you are a worthless idiot, nobody wants you here"}
        status, body = http("POST", f"{base}/v1/events/ingest", event, key)
        assert status == 202 and body["accepted"] == ["m1"]
        _wait(lambda: http("GET", f"{base}/v1/events/m1", key=key)[1].get("status") in {"needs_review", "decided",
                                                                                         "actioned", "screened"},
              proc, tmp_path, "event screened")
        record = http("GET", f"{base}/v1/events/m1", key=key)[1]
        assert record["risk_prediction"]["risk_score"] >= 0.7
        _wait(lambda: _up(f"http://127.0.0.1:{flower}/admin/flower/healthcheck"), proc, tmp_path, "flower")
        # The banner comes once every worker answers a ping.
        _wait(lambda: "Ctrl-C stops everything" in (tmp_path / "run.log").read_text(errors="replace"), proc,
              tmp_path, "the banner")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 6  # gunicorn, four worker groups, flower (and their children)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    time.sleep(1)
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"
    assert proc.returncode == 0
    text = (tmp_path / "run.log").read_text(errors="replace")
    assert "curl -s -X POST" in text and key in text


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _wait_for_key(tmp_path: Path, proc: subprocess.Popen) -> str:
    path = tmp_path / "var" / "local-api-key"
    _wait(path.exists, proc, tmp_path, "local API key")
    return path.read_text().strip()


def _wait(check, proc, tmp_path: Path, what: str, timeout_s: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"launcher exited early:\n{(tmp_path / 'run.log').read_text(errors='replace')[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}:\n{(tmp_path / 'run.log').read_text(errors='replace')[-3000:]}")
