"""app.pipeline.screen on real PostgreSQL and Redis with the shipped model (no broker needed)."""

from __future__ import annotations

import json
import time

import pytest

from app import streams
from app.db import session_scope
from app.pipeline import screen
from app.schemas import EventSchema
from app.sessions import SessionParams
from tests.conftest import make_event

INSULT = "you are pathetic and stupid, everyone here hates you"


@pytest.fixture(scope="module")
def screener():  # type: ignore[no-untyped-def]
    from ml.screening import get_screener

    return get_screener()


def items(*events: dict) -> list[dict]:
    now = int(time.time() * 1000)
    return [{"event": EventSchema().load(e), "received_at": now} for e in events]


def run(batch, screener, rds, settings, params=None):  # type: ignore[no-untyped-def]
    with session_scope() as db:
        result = screen.screen_batch(batch, screener=screener, db=db, client=rds, settings=settings, params=params)
    screen.publish(rds, result, settings.STREAM_MAXLEN, settings.EMBEDDING_TTL_S)
    return result


class Recording:
    """The shipped screener, noting what each call was given."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.model_version, self.calls = inner, inner.model_version, []

    def screen(self, texts, contexts=None):  # type: ignore[no-untyped-def]
        self.calls.append((list(texts), [list(c) for c in contexts] if contexts is not None else None))
        return self.inner.screen(texts, contexts)


def test_each_message_is_screened_with_the_turn_it_answers(screener, rds, settings):
    recording, t = Recording(screener), 1_790_000_000
    first = items(make_event(1, author_id="troll", user_id="ann", content="you are pathetic",
                             metadata={"timestamp": t}),
                  make_event(2, author_id="ann", user_id="troll", content="stop it", metadata={"timestamp": t + 5}),
                  make_event(9, author_id="ann", user_id="troll", content="other room", channel_id="elsewhere",
                             metadata={"timestamp": t + 1}))
    run(first, recording, rds, settings)
    run(items(make_event(3, author_id="bob", user_id=None, content="brb", metadata={"timestamp": t + 6})),
        recording, rds, settings)
    run(first[:1], recording, rds, settings)  # a redelivery is not screened again, nor logged twice
    run(items(make_event(4, author_id="troll", user_id="ann", content="cry more", metadata={"timestamp": t + 9})),
        recording, rds, settings)
    assert [call[1] for call in recording.calls] == [[[], ["you are pathetic"], []], [[]], [["stop it"]]]


def test_each_event_gets_a_prediction_and_a_status(screener, rds, settings):
    result = run(items(make_event(1, content="gg well played"), make_event(2, content=INSULT)), screener, rds,
                 settings)
    by_id = {s.event["event_id"]: s for s in result.screened}
    assert by_id["evt-1"].status == "screened" and by_id["evt-2"].status == "needs_review"
    assert by_id["evt-2"].prediction["risk_category"] in screen.HOSTILE
    assert by_id["evt-2"].prediction["model_version"] == screener.model_version
    assert rds.xlen(streams.SCREENED) == 2 and rds.xlen(streams.REASONING_QUEUE) == 1


def test_only_an_event_sent_on_to_reasoning_keeps_its_embedding_cached(screener, rds, settings):
    """``embedding:{event_id}`` lives 7 days: cached for every event it would fill Redis with vectors
    nobody reads. The context stage reads it only for events that need review."""
    screener.cascade_below = 0.0  # the transformer reads both, so both have an embedding to cache
    try:
        result = run(items(make_event(1, content="anyone up for another round?"), make_event(2, content=INSULT)),
                     screener, rds, settings)
    finally:
        from ml.screening import cascade_below

        screener.cascade_below = cascade_below()
    by_id = {s.event["event_id"]: s for s in result.screened}
    assert by_id["evt-1"].embedding is not None and by_id["evt-1"].status == "screened"
    assert rds.get("embedding:evt-1") is None
    cached = json.loads(rds.get("embedding:evt-2"))
    assert cached["model"] == screener.embedding_model and len(cached["vector"]) == cached["dim"] == 384


def test_a_second_run_of_the_same_batch_does_nothing(screener, rds, settings):
    batch = items(make_event(1, content=INSULT))
    run(batch, screener, rds, settings)
    again = run(batch, screener, rds, settings)
    assert again.screened == [] and rds.xlen(streams.SCREENED) == 1


def test_a_raid_flags_insults_from_the_third_author_on(screener, rds, settings):
    base = 1_790_000_000
    raid = [make_event(i, author_id=f"fresh{i}", user_id="streamer", channel_id="stream",
                       content="go away you weirdo",
                       metadata={"timestamp": base + i * 20}) for i in range(5)]
    flagged = [run(items(event), screener, rds, settings).screened[0] for event in raid]
    assert "pile_on" in flagged[2].prediction["flags"]
    assert all(s.status == "needs_review" for s in flagged[2:])
    alerts = [streams.decode(f) for _, f in rds.xrange(streams.ALERTS)]
    assert [a["data"]["kind"] for a in alerts].count("pile_on") == 1


def test_session_signals_off_is_the_model_alone(screener, rds, settings):
    raid = [make_event(i, author_id=f"fresh{i}", user_id="streamer", content="go away you weirdo",
                       metadata={"timestamp": 1_790_000_000 + i}) for i in range(5)]
    result = run(items(*raid), screener, rds, settings, SessionParams(enabled=False))
    for s in result.screened:
        assert s.prediction["risk_score"] == s.prediction["model_risk_score"]
        assert "pile_on" not in s.prediction["flags"]


def test_standing_is_cached_and_carried_to_a_new_channel(screener, rds, settings):
    run(items(*[make_event(i, author_id="troll", content=INSULT) for i in range(4)]), screener, rds, settings)
    cached = json.loads(rds.get("user:reputation:web:troll"))
    assert cached["flagged"] >= 3 and cached["reputation"] < 0.5
    result = run(items(make_event(99, author_id="troll", channel_id="elsewhere", content=INSULT)), screener, rds,
                 settings)
    assert "repeat_offender" in result.screened[0].prediction["flags"]


def test_a_victim_answering_back_is_damped_below_review(screener, rds, settings):
    base = 1_790_000_000
    bully = [make_event(i, author_id="bully", user_id="kid", channel_id="yard", content=INSULT,
                        metadata={"timestamp": base + i * 20}) for i in range(2)]
    for event in bully:
        assert run(items(event), screener, rds, settings).screened[0].status == "needs_review"
    reply = make_event(9, author_id="kid", user_id="bully", channel_id="yard", content=INSULT,
                       metadata={"timestamp": base + 60})
    [kid] = run(items(reply), screener, rds, settings).screened
    assert kid.prediction["model_risk_score"] >= settings.SCREENING_THRESHOLD
    assert kid.prediction["risk_score"] < settings.SCREENING_THRESHOLD
    assert "answering_harasser" in kid.prediction["flags"] and kid.status == "screened"
    assert rds.xlen(streams.REASONING_QUEUE) == 2  # the bully's two messages only


def test_looking_up_a_batch_by_key_probes_the_index_before_statistics_know_the_table(settings, rds):
    """A batch's lookups by key (is it screened already? the authors' totals) are an index probe per
    key on a table nobody has analysed yet. ``(platform, event_id) IN (...)`` was planned, on a
    fresh benchmark database, as a scan of the platform's every row (3,838 rows read for 2 found)."""
    from sqlalchemy import event, text

    from app import standing
    from app.db import get_engine
    from app.pipeline import screen_store

    with session_scope() as db:
        db.execute(text(
            "INSERT INTO events (event_id, platform, session_id, channel_id, author_id, content, metadata, "
            "occurred_at, received_at, status, flags) SELECT 'e' || g, 'web', 'web:c', 'c', 'a' || (g % 500), 'hi', "
            "'{}', now(), now(), 'screened', '[]' FROM generate_series(1, 20000) g"))
        db.execute(text("INSERT INTO users (platform, user_id, message_count, flagged_count, violation_count, "
                        "reputation, first_seen, last_seen) SELECT 'web', 'a' || g, 10, 0, 0, 1.0, now(), now() "
                        "FROM generate_series(0, 19999) g"))
    executed: list[tuple[str, object]] = []
    record = lambda conn, cursor, statement, parameters, context, many: executed.append((statement, parameters))  # noqa: E731
    event.listen(get_engine(), "before_cursor_execute", record)
    try:
        with session_scope() as db:
            assert screen_store.screened_keys(db, [("web", "e7"), ("web", "e4242"), ("web", "e99999")]) == {
                ("web", "e7"), ("web", "e4242")}
            pipe = rds.pipeline(transaction=False)
            read = standing.queue_priors(pipe, [("web", "a3"), ("web", "nobody")])
            assert read(pipe.execute(), db) == {("web", "a3"): 0.0, ("web", "nobody"): 0.0}
    finally:
        event.remove(get_engine(), "before_cursor_execute", record)
    assert len(executed) == 2
    connection = get_engine().raw_connection()
    try:
        with connection.cursor() as cursor:
            plans = []
            for statement, parameters in executed:
                cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
                plans.append(cursor.fetchone()[0][0]["Plan"])
        connection.rollback()
    finally:
        connection.close()
    for plan, table in zip(plans, ("events", "users"), strict=True):
        scans = [node for node in _nodes(plan) if node.get("Relation Name") == table]
        assert scans and all(node["Node Type"] == "Index Scan" for node in scans), (table, plan)


def _nodes(node: dict) -> list[dict]:
    return [node] + [n for child in node.get("Plans", []) for n in _nodes(child)]


def test_a_threshold_changed_in_the_console_applies_to_the_next_batch(screener, rds, settings):
    from app.console import policy_store

    words = "that was a dumb move"
    [screened] = run(items(make_event(1, content=words)), screener, rds, settings).screened
    risk = screened.prediction["risk_score"]
    assert screened.status == "screened" and settings.SCREENING_SHED_BELOW < risk < settings.SCREENING_THRESHOLD
    policy_store.save(settings, rds, {"SCREENING_THRESHOLD": round(risk - 0.01, 4)}, actor="test")
    [again] = run(items(make_event(2, content=words, channel_id="elsewhere", author_id="carol")), screener, rds,
                  settings).screened
    assert again.prediction["risk_score"] == risk  # another conversation: nothing but the threshold changed
    assert again.status == "needs_review"
