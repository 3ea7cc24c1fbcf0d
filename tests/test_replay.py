"""app.replay on real PostgreSQL and Redis: traffic ingested through the API and screened by the
pipeline, then replayed against other thresholds, models and policies, with nothing written."""

from __future__ import annotations

import json
import time

import psycopg2
import pytest

from app import policies, streams
from app.db import session_scope
from app.pipeline import screen
from app.replay import Candidate, Window, main, redrive, run
from tests.conftest import _psycopg_dsn, make_event

INSULT = "you are pathetic and stupid, everyone here hates you"
FRIENDLY = ["good game everyone", "nice play", "thanks for the help with the raid",
            "anyone up for another round?"]


@pytest.fixture(scope="module")
def screener():  # type: ignore[no-untyped-def]
    from ml.screening import Screener

    return Screener.load("ngram-v1")


def ingest_and_screen(client, auth, rds, settings, screener, events):  # type: ignore[no-untyped-def]
    reply = client.post("/v1/events/ingest", json={"events": events}, headers=auth)
    assert reply.status_code == 202, reply.get_json()
    items = [{"event": json.loads(f["data"]), "received_at": int(f["received_at"])}
             for _, f in rds.xrange(streams.RAW)]
    with session_scope() as db:
        result = screen.screen_batch(items, screener=screener, db=db, client=rds, settings=settings)
    screen.publish(rds, result, settings.STREAM_MAXLEN, settings.EMBEDDING_TTL_S)


@pytest.fixture
def rds_events(rds):  # type: ignore[no-untyped-def]
    """What events:screened says of each event, by event id."""
    return lambda: {f["event_id"]: json.loads(f["data"]) for _, f in rds.xrange(streams.SCREENED)}


def traffic() -> list[dict]:
    events = [make_event(i, content=text, channel_id="lobby", author_id=f"u{i}")
              for i, text in enumerate(FRIENDLY)]
    events += [make_event(10 + i, content=INSULT, channel_id="arena", author_id="troll", user_id="bob")
               for i in range(3)]
    return events


def snapshot(rds, database_url):  # type: ignore[no-untyped-def]
    """Everything replay must leave alone: every Redis key's value and every table's rows."""
    keys = {key: rds.dump(key) for key in rds.keys("*")}
    conn = psycopg2.connect(_psycopg_dsn(database_url))
    with conn, conn.cursor() as cur:
        tables = {}
        for table in ("events", "users", "sessions", "actions", "audit_log", "alerts"):
            cur.execute(f"SELECT * FROM {table} ORDER BY 1")
            tables[table] = cur.fetchall()
    conn.close()
    return keys, tables


def candidate(screener, settings, threshold=None, policy=None):  # type: ignore[no-untyped-def]
    return Candidate(screener, policies.policy_for(policy or settings.ACTION_POLICY),
                     settings.SCREENING_THRESHOLD if threshold is None else threshold, settings)


def replay(rds, screener, settings, window=None, **kw):  # type: ignore[no-untyped-def]
    pages = []
    window = window or Window()
    with session_scope() as db:
        report = run(rds, db, window, candidate(screener, settings, **kw),
                     progress=lambda page, r: pages.append((page, r.events)))
    return report, pages


def test_the_same_model_and_threshold_change_nothing_and_write_nothing(client, auth, rds, settings, services,
                                                                        screener):
    ingest_and_screen(client, auth, rds, settings, screener, traffic())
    before = snapshot(rds, services["DATABASE_URL"])
    report, pages = replay(rds, screener, settings)
    assert (report.events, report.compared, report.flipped) == (7, 7, [])
    assert report.flagged["before"] == report.flagged["after"] == 3
    assert report.max_risk_change == 0.0  # same model, same conversations, same standing: same scores
    assert report.categories["before"] == report.categories["after"]
    assert pages == [(1, 7)]
    assert snapshot(rds, services["DATABASE_URL"]) == before


def test_a_plea_replays_as_it_was_screened(client, auth, rds, settings, rds_events, screener):
    """Replay tells the session layer what live screening told it, pleas included: an insult after
    its target asked the author to stop is repetition after a warning, live and in the replay."""
    t = 1_790_000_000
    events = [make_event(20, content="you are so dumb lol", channel_id="arena", author_id="troll", user_id="bob",
                         metadata={"timestamp": t}),
              make_event(21, content="please stop", channel_id="arena", author_id="bob", user_id="troll",
                         metadata={"timestamp": t + 5}),
              make_event(22, content="you are so dumb lol", channel_id="arena", author_id="troll", user_id="bob",
                         metadata={"timestamp": t + 10})]
    ingest_and_screen(client, auth, rds, settings, screener, events)
    assert "ignored_request_to_stop" in rds_events()["evt-22"]["risk_prediction"]["flags"]
    report, _ = replay(rds, screener, settings)
    assert report.compared == 3 and report.flipped == [] and report.max_risk_change == 0.0


def test_a_lower_threshold_reports_the_events_that_flip(client, auth, rds, settings, services, screener):
    ingest_and_screen(client, auth, rds, settings, screener, traffic())
    before = snapshot(rds, services["DATABASE_URL"])
    report, _ = replay(rds, screener, settings, threshold=0.0)
    flipped = {f["event_id"] for f in report.flipped}
    assert flipped == {f"evt-{i}" for i in range(len(FRIENDLY))}
    assert all(f["before"]["flagged"] is False and f["after"]["flagged"] is True for f in report.flipped)
    assert report.flagged["after"] == 7
    # No reasoning ran: the insults await a decision, which is not compared.
    assert report.actions["before"] == {"none": 4, "undecided": 3}
    assert sum(report.actions["after"].values()) == 7
    assert snapshot(rds, services["DATABASE_URL"]) == before


def test_a_window_by_channel_author_and_time(client, auth, rds, settings, screener):
    ingest_and_screen(client, auth, rds, settings, screener, traffic())
    assert replay(rds, screener, settings, Window(channel_id="arena"))[0].events == 3
    assert replay(rds, screener, settings, Window(author_id="u1"))[0].events == 1
    assert replay(rds, screener, settings, Window(session_id="web:lobby"))[0].events == 4
    assert replay(rds, screener, settings, Window(limit=2))[0].events == 2
    future = int(time.time() * 1000) + 60_000
    assert replay(rds, screener, settings, Window(since_ms=future))[0].events == 0


def test_an_event_not_yet_screened_is_counted_apart(client, auth, rds, settings, screener):
    reply = client.post("/v1/events/ingest", json=make_event("late", content=INSULT), headers=auth)
    assert reply.status_code == 202
    report, _ = replay(rds, screener, settings)
    assert (report.events, report.unscreened, report.compared) == (1, 1, 0)


def test_the_cli_reports_and_refuses_an_unknown_model(app, client, auth, rds, settings, screener, tmp_path):
    ingest_and_screen(client, auth, rds, settings, screener, traffic())
    out = tmp_path / "report.json"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["replay", "--model", "ngram-v1", "--threshold", "0", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "replayed 7 events with ngram-v1" in result.output
    assert len(json.loads(out.read_text())["flipped"]) == len(FRIENDLY)
    assert main(["--model", "no-such-model"], settings) == 2


def test_redrive_moves_screening_dead_letters_back_and_leaves_the_rest(rds, settings):
    event = {"event_id": "dead-1", "platform": "web", "content": "hi"}
    streams.dead_letter(rds, stage="screen", error="boom", maxlen=1000,
                        items=[{"event": event, "received_at": 123, "stream_id": "1-0"}])
    streams.dead_letter(rds, stage="act", error="gone", maxlen=1000,
                        items=[{"event_id": "", "platform": None, "action_id": "a1"}])
    assert redrive(rds, stage=None, dry_run=True).redriven == ["dead-1"]
    assert rds.xlen(streams.RAW) == 0
    done = redrive(rds, stage=None)
    assert done.redriven == ["dead-1"] and [e["stage"] for e in done.left] == ["act"]
    (_, fields), = rds.xrange(streams.RAW)
    assert json.loads(fields["data"]) == event and fields["received_at"] == "123"
    assert [streams.decode(f)["data"]["stage"] for _, f in rds.xrange(streams.DLQ_ERRORS)] == ["act"]
    assert redrive(rds).redriven == []


def test_redrive_lists_an_unreadable_dead_letter_and_leaves_it(rds):
    rds.xadd(streams.DLQ_ERRORS, {"event_id": "x", "platform": "web", "data": "not json"})
    done = redrive(rds, stage=None)
    assert done.redriven == [] and [e["event_id"] for e in done.left] == ["x"]
    assert rds.xlen(streams.DLQ_ERRORS) == 1


def test_a_candidate_model_is_compared_with_the_one_that_decided(client, auth, rds, settings, services, screener):
    from ml.screening import DEFAULT_MODEL, get_screener

    ingest_and_screen(client, auth, rds, settings, screener, traffic())
    before = snapshot(rds, services["DATABASE_URL"])
    report, _ = replay(rds, get_screener(DEFAULT_MODEL), settings)
    assert report.model.startswith(DEFAULT_MODEL) and set(report.baseline_models) == {screener.model_version}
    assert report.compared == 7 and report.flagged["after"] >= 3  # the insults stay flagged
    for flip in report.flipped:  # a flip is a change of flag, category or decided action
        b, a = flip["before"], flip["after"]
        assert (b["flagged"], b["risk_category"]) != (a["flagged"], a["risk_category"]) or b["action"] != a["action"]
    assert snapshot(rds, services["DATABASE_URL"]) == before


def test_replay_tells_what_the_transformer_would_have_said_of_what_was_shed(client, auth, rds, settings):
    """Screened while behind (shedding), replayed with the same model at leisure: --shed-only reports just
    those events, with the transformer's reading of them, and the conversation around them still replays."""
    from app.replay import render
    from ml.screening import DEFAULT_MODEL, Screener

    transformer = Screener.load(DEFAULT_MODEL)
    lines = ["who wants to duo", "that was a great game", "you are such a noob lol", "gg ez",
             "why would you even pick that hero", "report this guy", "uninstall the game you are trash", INSULT]
    events = [make_event(30 + i, content=text, author_id=f"p{i}", user_id=f"q{i}") for i, text in enumerate(lines)]
    assert client.post("/v1/events/ingest", json={"events": events}, headers=auth).status_code == 202
    items = [{"event": json.loads(f["data"]), "received_at": int(f["received_at"])} for _, f in rds.xrange(streams.RAW)]
    with session_scope() as db:
        result = screen.screen_batch(items, screener=transformer, db=db, client=rds, settings=settings, shed_below=0.45)
    screen.publish(rds, result, settings.STREAM_MAXLEN, settings.EMBEDDING_TTL_S)
    shed = {s.event["event_id"] for s in result.screened if "shed_under_load" in s.prediction["flags"]}
    assert shed and len(shed) < len(lines)

    everything, _ = replay(rds, transformer, settings)
    assert everything.compared == len(lines) and everything.shed["decided"] == len(shed)
    only, _ = replay(rds, transformer, settings, Window(shed_only=True))
    assert only.compared == only.shed["decided"] == len(shed)
    assert only.max_risk_change > 0  # the transformer's reading, not the n-gram model's again
    assert {f["event_id"] for f in only.flipped} <= shed
    assert all(f["shed_under_load"] for f in only.flipped)
    assert f"{len(shed)} were decided while screening shed load" in render(only)
