"""Shedding on a real Celery worker: a batch whose oldest event has waited longer than
SCREENING_SHED_AFTER_MS is screened with the cascade at SCREENING_SHED_BELOW; once screening has
caught up, the transformer reads what it read before."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app import streams
from ml import screening
from tests.conftest import make_event
from tests.tasks.test_screen_worker import HARASSMENT, Worker, status_of, wait_for, worker_env  # noqa: F401

SHED_BELOW = 0.45
LINES = ["anyone up for another round?", "thanks for the carry", "who wants to duo", "that was a great game",
         "you are such a noob lol", "gg ez", "why would you even pick that hero", "report this guy",
         "i hope you lose every game", "uninstall the game you are trash", HARASSMENT]


def events(lines: list[str], first: int) -> list[dict]:
    # Each line between two people of its own: no turn before, so the worker reads what the screener below reads.
    return [make_event(first + i, content=text, author_id=f"a{first + i}", user_id=f"b{first + i}")
            for i, text in enumerate(lines)]


def flags_of(client, auth, event_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return client.get(f"/v1/events/{event_id}", headers=auth).get_json()["risk_prediction"]["flags"]


def shed_metric(folder: Path) -> float:
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    return registry.get_sample_value("safety_screen_shed_total") or 0.0


@pytest.mark.timeout(180)
def test_a_backlog_is_shed_and_the_transformer_reads_everything_once_caught_up(client, auth, rds, worker_env,  # noqa: F811
                                                                               tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = worker_env | {"SCREENING_SHED_AFTER_MS": "1500", "SCREENING_SHED_BELOW": str(SHED_BELOW),
                        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    screener = screening.Screener.load(screening.DEFAULT_MODEL)
    want_shed = {f"evt-{i}" for i, r in enumerate(screener.screen(LINES, shed_below=SHED_BELOW))
                 if "shed_under_load" in r.flags}
    read_normally = {f"evt-{i}" for i, r in enumerate(screener.screen(LINES)) if "cascade_cleared" not in r.flags}
    assert want_shed and want_shed <= read_normally, "the lines must include some only shedding clears"

    assert client.post("/v1/events/ingest", json={"events": events(LINES, 0)}, headers=auth).status_code == 202
    time.sleep(2.0)  # no worker yet: the backlog is older than SCREENING_SHED_AFTER_MS
    worker = Worker(env, "screening", tmp_path / "worker.log").start()
    try:
        last = f"evt-{len(LINES) - 1}"
        wait_for(lambda: status_of(client, auth, last) == "needs_review", timeout_s=90, what="the backlog screened")
        wait_for(lambda: rds.xlen(streams.SCREENED) == len(LINES), what="the backlog mirrored")
        shed = {f"evt-{i}" for i in range(len(LINES)) if "shed_under_load" in flags_of(client, auth, f"evt-{i}")}
        assert shed == want_shed
        assert "cascade_cleared" not in flags_of(client, auth, last)  # the transformer still read the harassment
        assert "screening is" in (tmp_path / "worker.log").read_text()  # said so in the log

        # Caught up: the same lines again, one at a time, are read as before shedding.
        for i, batch in enumerate(events([line], 100 + n) for n, line in enumerate(LINES)):
            assert client.post("/v1/events/ingest", json=batch[0], headers=auth).status_code == 202
            wait_for(lambda i=i: status_of(client, auth, f"evt-{100 + i}") in {"screened", "needs_review"},
                     what="a fresh event screened")
        for i in range(len(LINES)):
            fresh = flags_of(client, auth, f"evt-{100 + i}")
            assert "shed_under_load" not in fresh
            assert ("cascade_cleared" not in fresh) == (f"evt-{i}" in read_normally)
    finally:
        worker.stop()
    assert shed_metric(metrics_dir) == len(want_shed)


def test_the_batch_sheds_only_while_its_oldest_event_has_waited_too_long(caplog: pytest.LogCaptureFixture) -> None:
    from tasks.screen import _state, shed_setting

    _state["shedding"] = False
    now = 1_000_000.0
    young, old = {"received_at": int(now) - 100}, {"received_at": int(now) - 2_500}
    assert shed_setting([young], 2_000, 0.3, now) == 0.0
    assert shed_setting([young, old], 0, 0.3, now) == 0.0  # 0: never
    assert shed_setting([], 2_000, 0.3, now) == 0.0
    with caplog.at_level("WARNING", logger="tasks.screen"):
        assert shed_setting([young, old], 2_000, 0.3, now) == 0.3
        assert shed_setting([old], 2_000, 0.3, now) == 0.3
        assert shed_setting([young], 2_000, 0.3, now) == 0.0
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "2.5 s behind" in said[0] and "caught up" in said[1]  # once when it starts, once ends


@pytest.mark.parametrize(("mapping", "says"), [
    ({"SCREENING_SHED_AFTER_MS": "-1"}, "use 0 to never shed"),
    ({"SCREENING_SHED_BELOW": "0.7"}, "outside [0, SCREENING_THRESHOLD=0.7)"),
    ({"SCREENING_SHED_BELOW": "0.5", "SCREENING_THRESHOLD": "0.4"}, "the n-gram model alone would decide"),
])
def test_a_bad_shedding_setting_says_what_to_do(mapping: dict[str, str], says: str) -> None:
    from app.config import Settings

    with pytest.raises(ValueError, match="SCREENING_SHED") as error:
        Settings.from_mapping(mapping)
    assert says in str(error.value)
