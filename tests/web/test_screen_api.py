"""POST /v1/screen: synchronous screening with the worker's model and rules, no session."""

from __future__ import annotations


def test_screen_returns_a_risk_prediction(client, auth):
    resp = client.post("/v1/screen", json={"text": "you are a worthless idiot, nobody wants you here"}, headers=auth)
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) >= {"event_id", "risk_score", "risk_category", "confidence", "flags", "screening_time_ms",
                         "model_version"}
    assert body["risk_score"] >= 0.7 and body["risk_category"] == "targeted_harassment"


def test_banter_stays_below_the_threshold(client, auth):
    body = client.post("/v1/screen", json={"text": "gg ez", "context": ["nice match"]}, headers=auth).get_json()
    assert body["risk_score"] < 0.7


def test_screen_validates_and_authenticates(client, auth):
    assert client.post("/v1/screen", json={"text": "hi"}).status_code == 401
    resp = client.post("/v1/screen", json={"context": "nope"}, headers=auth)
    assert resp.status_code == 400 and set(resp.get_json()["errors"]) == {"text", "context"}


def test_a_long_text_is_screened_whole_up_to_the_ingest_limit(client, auth, settings):
    """Slack allows 40,000 characters: an insult at the end of a long message is still read."""
    filler = "we talked about the patch notes and the new map rotation for the weekend tournament. " * 340
    text = filler + "and you are a worthless idiot, nobody wants you here"
    assert 8_000 < len(text) <= settings.MAX_MESSAGE_CHARS
    resp = client.post("/v1/screen", json={"text": text}, headers=auth)
    assert resp.status_code == 200 and resp.get_json()["risk_score"] >= 0.7
    assert client.post("/v1/screen", json={"text": filler}, headers=auth).get_json()["risk_score"] < 0.7


def test_a_text_over_the_ingest_limit_is_refused_with_the_limit(client, auth, settings):
    resp = client.post("/v1/screen", json={"text": "a" * (settings.MAX_MESSAGE_CHARS + 1)}, headers=auth)
    assert resp.status_code == 400
    assert str(settings.MAX_MESSAGE_CHARS) in str(resp.get_json()["errors"]["text"])  # says what the limit is
