"""GET /v1/sessions, /v1/users and /v1/alerts after real screening."""

from __future__ import annotations

import time

import pytest

from app.charts import session_risk_svg
from app.db import session_scope
from app.pipeline import screen
from app.schemas import EventSchema
from tests.conftest import make_event

INSULT = "you are pathetic and stupid, everyone here hates you"


@pytest.fixture
def screened(settings, rds):  # type: ignore[no-untyped-def]
    from ml.screening import get_screener

    def run(*events: dict) -> None:
        items = [{"event": EventSchema().load(e), "received_at": int(time.time() * 1000)} for e in events]
        with session_scope() as db:
            result = screen.screen_batch(items, screener=get_screener(), db=db, client=rds, settings=settings)
        screen.publish(rds, result, settings.STREAM_MAXLEN, settings.EMBEDDING_TTL_S)

    return run


def test_session_contract_with_participants_and_targets(client, auth, screened):
    base = 1_790_000_000
    screened(make_event(1, author_id="a", user_id="v", content=INSULT, metadata={"timestamp": base}),
             make_event(2, author_id="b", user_id="v", content="gg all", metadata={"timestamp": base + 30}))
    body = client.get("/v1/sessions/web:lobby", headers=auth).get_json()
    assert body["session_id"] == "web:lobby" and body["live"] is True
    assert body["message_count"] == 2 and body["time_span_minutes"] == 0.5
    assert body["temporal_features"]["intervals"] == [30.0]
    by_user = {p["user_id"]: p for p in body["participants"]}
    assert by_user["a"]["flagged_count"] == 1 and by_user["a"]["targets"] == ["v"]
    assert by_user["b"]["flagged_count"] == 0
    assert body["targets"] == [{"user_id": "v", "distinct_authors": 1, "flagged_count": 1}]


def test_session_risk_over_time_as_a_chart(client, auth, screened):
    base = 1_790_000_000
    screened(make_event(1, author_id="b", user_id="v", content="gg all", metadata={"timestamp": base}),
             make_event(2, author_id="a", user_id="v", content=INSULT, metadata={"timestamp": base + 60}),
             make_event(3, author_id="a", user_id="v", content=INSULT + "!", metadata={"timestamp": base + 90}))
    resp = client.get("/v1/sessions/web:lobby/chart.svg", headers=auth)
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    svg = resp.get_data(as_text=True)
    assert svg.count('class="message"') == 3 and svg.count('r="4" fill="#d7263d"') == 2  # two over the line
    assert 'class="threshold"' in svg and "threshold 0.70" in svg and "web:lobby: 3 messages" in svg
    assert client.get("/v1/sessions/web:lobby/chart.svg").status_code == 401
    assert client.get("/v1/sessions/web:nowhere/chart.svg", headers=auth).status_code == 404
    hostile = session_risk_svg({"session_id": "web:<script>alert(1)</script>", "temporal_features": {}}, 0.7)
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile  # a channel name is text, never markup


def test_session_falls_back_to_the_snapshot_when_the_live_key_expired(client, auth, screened, rds):
    screened(make_event(1, content=INSULT, author_id="a", user_id="v"))
    rds.delete("session:web:lobby")
    body = client.get("/v1/sessions/web:lobby", headers=auth).get_json()
    assert body["live"] is False and body["message_count"] == 1
    assert body["participants"][0]["user_id"] == "a"
    assert body["targets"][0]["user_id"] == "v"


def test_user_standing_across_sessions(client, auth, screened):
    screened(make_event(1, author_id="t", content=INSULT),
             make_event(2, author_id="t", channel_id="c2", content=INSULT))
    body = client.get("/v1/users/web/t", headers=auth).get_json()
    assert body["message_count"] == 2 and body["flagged_count"] == 2
    assert body["reputation"] < 1 and {s["session_id"] for s in body["sessions"]} == {"web:lobby", "web:c2"}


def test_unknown_session_user_and_platform(client, auth):
    assert client.get("/v1/sessions/web:nope", headers=auth).status_code == 404
    assert client.get("/v1/users/web/nobody", headers=auth).status_code == 404
    assert client.get("/v1/users/myspace/x", headers=auth).status_code == 400


def test_alerts_list_pile_ons(client, auth, screened):
    base = 1_790_000_000
    for i in range(4):
        screened(make_event(i, author_id=f"r{i}", user_id="streamer", content="go away you weirdo",
                            metadata={"timestamp": base + i * 10}))
    alerts = client.get("/v1/alerts", headers=auth).get_json()["alerts"]
    assert any(a["kind"] == "pile_on" and a["target_user_id"] == "streamer" for a in alerts)
