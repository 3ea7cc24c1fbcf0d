"""POST /v1/events/ingest on real Redis: acceptance, dedup, and every way a request can be refused."""

from __future__ import annotations

import json

import pytest

from app import streams
from tests.conftest import make_event


def post(client, body, headers, **kw):  # type: ignore[no-untyped-def]
    return client.post("/v1/events/ingest", data=json.dumps(body), headers=headers,
                       content_type=kw.pop("content_type", "application/json"), **kw)


def test_single_event_is_accepted_mirrored_and_queued(client, auth, rds):
    resp = post(client, make_event(1), auth)
    assert resp.status_code == 202
    assert resp.get_json() == {"accepted": ["evt-1"], "duplicates": [], "queued": True}
    [(_, fields)] = rds.xrange(streams.RAW)
    assert fields["event_id"] == "evt-1" and fields["platform"] == "web"
    data = json.loads(fields["data"])
    assert data["session_id"] == "web:lobby"
    assert data["metadata"]["timestamp"].endswith("+00:00")
    assert rds.llen("screening") == 1  # one Celery message to wake a reader
    assert [g["name"] for g in rds.xinfo_groups(streams.RAW)] == [streams.SCREENING_GROUP]


def test_batch_is_one_queue_message_and_duplicates_are_reported(client, auth, rds):
    events = [make_event(i) for i in range(5)] + [make_event(2)]
    resp = post(client, {"events": events}, auth)
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["accepted"] == [f"evt-{i}" for i in range(5)]
    assert body["duplicates"] == ["evt-2"]
    assert rds.xlen(streams.RAW) == 5
    assert rds.llen("screening") == 1
    again = post(client, {"events": events[:2]}, auth).get_json()
    assert again["accepted"] == [] and again["duplicates"] == ["evt-0", "evt-1"]
    assert rds.xlen(streams.RAW) == 5 and rds.llen("screening") == 1  # a duplicate is never queued again
    more = post(client, {"events": [make_event(7)]}, auth).get_json()
    assert more["accepted"] == ["evt-7"] and rds.llen("screening") == 1  # a reader is woken already


def test_a_wake_is_sent_again_once_a_reader_has_started(client, auth, rds):
    from app.pipeline.ingest import WAKE_KEY

    post(client, make_event(1), auth)
    rds.delete(WAKE_KEY)  # what screen.batch does when it starts
    post(client, make_event(2), auth)
    assert rds.llen("screening") == 2


def test_same_id_on_another_platform_is_a_different_event(client, auth):
    body = post(client, {"events": [make_event(1), make_event(1, platform="twitch")]}, auth).get_json()
    assert body["accepted"] == ["evt-1", "evt-1"]


def test_invalid_event_gets_per_field_errors_and_nothing_is_written(client, auth, rds):
    bad = make_event(3, platform="myspace", author_id="")
    del bad["channel_id"]
    resp = post(client, {"events": [make_event(1), bad]}, auth)
    assert resp.status_code == 400
    errors = resp.get_json()["errors"]
    assert set(errors["1"]) == {"platform", "author_id", "channel_id"}
    assert "0" not in errors
    assert rds.xlen(streams.RAW) == 0 and rds.llen("screening") == 0
    assert rds.keys("dedup:*") == []


@pytest.mark.parametrize("body, field", [
    ({"events": []}, "events"),
    ({"events": "nope"}, "events"),
    ([1, 2], "_schema"),
    (make_event(1, metadata={"timestamp": "2026-01-01T00:00:00"}), "metadata"),
    (make_event(1, content="x" * 40_001), "content"),  # Slack allows 40,000
])
def test_shape_errors_name_the_field(client, auth, body, field):
    resp = post(client, body, auth)
    assert resp.status_code == 400
    assert field in resp.get_json()["errors"]


def test_too_many_events_is_400(client, auth):
    resp = post(client, {"events": [make_event(i) for i in range(501)]}, auth)
    assert resp.status_code == 400
    assert "At most 500" in resp.get_json()["errors"]["events"][0]


def test_missing_and_wrong_key_are_401(client, rds):
    assert post(client, make_event(1), {}).status_code == 401
    resp = post(client, make_event(1), {"X-API-Key": "wrong"})
    assert resp.status_code == 401 and "X-API-Key" in resp.get_json()["hint"]
    assert rds.xlen(streams.RAW) == 0


def test_non_json_body_is_415(client, auth):
    resp = client.post("/v1/events/ingest", data="event_id=1", headers=auth,
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415
    assert "application/json" in resp.get_json()["error"]


def test_malformed_json_is_400(client, auth):
    resp = client.post("/v1/events/ingest", data="{not json", headers=auth, content_type="application/json")
    assert resp.status_code == 400
    assert "not valid JSON" in resp.get_json()["error"]


def test_oversized_body_is_413(settings_map, auth):
    from web import create_app

    small = create_app(settings_map | {"MAX_CONTENT_LENGTH": "2000"}).test_client()
    resp = post(small, {"events": [make_event(i) for i in range(40)]}, auth)
    assert resp.status_code == 413
    assert resp.is_json


def test_rate_limit_is_429_with_retry_after_and_writes_nothing(settings_map, auth, rds):
    from web import create_app

    limited = create_app(settings_map | {"INGEST_RATE_PER_S": "1", "INGEST_BURST": "3"}).test_client()
    assert post(limited, {"events": [make_event(i) for i in range(3)]}, auth).status_code == 202
    resp = post(limited, make_event(9), auth)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert rds.xlen(streams.RAW) == 3


def test_dead_redis_is_503_not_a_crash(settings_map, auth):
    from web import create_app

    dead = create_app(settings_map | {"REDIS_URL": "redis://127.0.0.1:1/0"}).test_client()
    resp = post(dead, make_event(1), auth)
    assert resp.status_code == 503
    assert "nothing was accepted" in resp.get_json()["error"]


def test_received_event_is_readable_before_screening(client, auth):
    post(client, make_event(7, content="hi"), auth)
    resp = client.get("/v1/events/evt-7", headers=auth)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "received"
    assert body["event"]["session_id"] == "web:lobby"
    assert body["risk_prediction"] is None and body["action"] is None


def test_unknown_event_is_404(client, auth):
    assert client.get("/v1/events/nope", headers=auth).status_code == 404


def test_a_message_as_long_as_slack_allows_is_accepted_and_kept_whole(client, auth, rds):
    content = ("a long post about the patch notes " * 1200)[:40_000]
    resp = post(client, make_event(40, content=content), auth)
    assert resp.status_code == 202
    [(_, fields)] = rds.xrange(streams.RAW)
    assert json.loads(fields["data"])["content"] == content
    too_long = post(client, make_event(41, content=content + "!"), auth)
    assert too_long.status_code == 400 and "content" in too_long.get_json()["errors"]
