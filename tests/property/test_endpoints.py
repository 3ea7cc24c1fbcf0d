"""Every endpoint under /v1 (and health) fed bad bodies on real Redis and PostgreSQL: oversized,
deeply nested, invalid UTF-8, wrong types, missing fields, awkward path and query values. Each
gets a clear 4xx JSON error, writes nothing (no row, no Redis key, no stream entry) and is never
a 500. Webhook bodies are signed with the configured keys, so the bad body reaches the parser."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from app.platforms import slack, standard_webhooks, twitch
from tests.conftest import TABLES, _psycopg_dsn, make_event
from tests.property import AWKWARD_VALUES, JSON

BRIDGE_SECRET = "whsec_" + base64.b64encode(b"bridge-secret-32-bytes-long!!!!!").decode()
WEB_SECRET = "whsec_" + base64.b64encode(b"web-chat-secret-32-bytes-long!!!").decode()
DISCORD_KEY = SigningKey(bytes(range(32)))
SECRETS = {"TWITCH_EVENTSUB_SECRET": "twitch-secret", "SLACK_SIGNING_SECRET": "slack-secret",
           "DISCORD_BRIDGE_SECRET": BRIDGE_SECRET, "WEB_WEBHOOK_SECRET": WEB_SECRET,
           "DISCORD_PUBLIC_KEY": DISCORD_KEY.verify_key.encode().hex()}
MAX_BYTES = 64 * 1024
POSTS = ["/v1/events/ingest", "/v1/screen", "/v1/actions/a1/reverse", "/v1/webhooks/twitch", "/v1/webhooks/slack",
         "/v1/webhooks/discord", "/v1/webhooks/discord/interactions", "/v1/webhooks/web"]
FIXED = settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def web(settings_map):  # type: ignore[no-untyped-def]
    from web import create_app

    return create_app(settings_map | SECRETS | {"MAX_CONTENT_LENGTH": str(MAX_BYTES)}).test_client()


def signed(path: str, body: bytes) -> dict[str, str]:
    """The headers a sender holding the key would send with ``body``."""
    now = str(int(time.time()))
    if path.endswith("/twitch"):
        mid, ts = str(uuid.uuid4()), datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {"Twitch-Eventsub-Message-Id": mid, "Twitch-Eventsub-Message-Timestamp": ts,
                "Twitch-Eventsub-Message-Type": "notification",
                "Twitch-Eventsub-Message-Signature": twitch.sign(SECRETS["TWITCH_EVENTSUB_SECRET"], mid, ts, body)}
    if path.endswith("/slack"):
        return {"X-Slack-Request-Timestamp": now,
                "X-Slack-Signature": slack.sign(SECRETS["SLACK_SIGNING_SECRET"], now, body)}
    if path.endswith("/interactions"):
        signature = DISCORD_KEY.sign(now.encode() + body).signature.hex()
        return {"X-Signature-Timestamp": now, "X-Signature-Ed25519": signature}
    if path.endswith(("/discord", "/web")):
        secret = BRIDGE_SECRET if path.endswith("/discord") else WEB_SECRET
        wid = "msg_" + uuid.uuid4().hex
        return {"webhook-id": wid, "webhook-timestamp": now,
                "webhook-signature": standard_webhooks.sign(secret, wid, now, body)}
    return {"X-API-Key": "test-key-0123456789"}


class Untouched:
    """Every Redis key's value and every table's rows, before and after."""

    def __init__(self, rds: Any, database_url: str) -> None:
        self.rds, self.database_url = rds, database_url

    def state(self) -> tuple[dict[str, Any], dict[str, int]]:
        keys = {key: self.rds.dump(key) for key in self.rds.keys("*")}
        conn = psycopg2.connect(_psycopg_dsn(self.database_url))
        with conn, conn.cursor() as cur:
            counts = {}
            for table in TABLES:
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cur.fetchone()[0]
        conn.close()
        return keys, counts


@pytest.fixture
def untouched(rds, services) -> Iterator[Untouched]:  # type: ignore[no-untyped-def]
    yield Untouched(rds, services["DATABASE_URL"])


def post(web, untouched: Untouched, path: str, body: bytes,  # type: ignore[no-untyped-def]
         content_type: str = "application/json") -> int:
    """A 4xx JSON error and nothing written. A platform webhook may instead acknowledge a delivery
    it ignores (Slack's and Twitch's unknown envelope types get a 2xx so the platform does not
    disable the endpoint), provided it wrote nothing either."""
    before = untouched.state()
    reply = web.post(path, data=body, headers=signed(path, body), content_type=content_type)
    assert untouched.state() == before, f"{path} wrote something for {body[:200]!r}"
    if path.startswith("/v1/webhooks/") and reply.status_code in (200, 204):
        return int(reply.status_code)
    assert 400 <= reply.status_code < 500, (path, body[:200], reply.status_code, reply.get_data()[:300])
    error = reply.get_json(silent=True)
    assert error is not None and error["status"] == reply.status_code and error["error"], reply.get_data()[:300]
    return int(reply.status_code)


BAD_BODIES = {
    "oversized": b'{"content": "' + b"x" * MAX_BYTES + b'"}',
    "nested_lists": b"[" * 20_000 + b"]" * 20_000,
    "nested_objects": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "nested_past_recursion": b"[" * 60_000,
    "invalid_utf8": b'{"event_id": "\xff\xfe", "content": "\xc3\x28"}',
    "utf16": json.dumps({"x": 1}).encode("utf-16"),
    "empty": b"",
    "not_json": b"event_id=1&content=hi",
    "json_null": b"null",
    "json_list": b"[]",
    "nan": b'{"event_id": NaN, "content": Infinity}',
    "huge_number": b'{"event_id": ' + b"9" * 5000 + b"}",
    "lone_surrogate_key": b'{"\\ud800": 1}',
    "nul": b'{"event_id": "a\\u0000b"}',
}


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_a_bad_body_is_a_4xx_json_error_and_writes_nothing(web, untouched, path: str, kind: str) -> None:
    status = post(web, untouched, path, BAD_BODIES[kind])
    if kind == "oversized":
        assert status == 413


@pytest.mark.parametrize("path", ["/v1/events/ingest", "/v1/screen", "/v1/actions/a1/reverse"])
def test_the_api_wants_json(web, untouched, path: str) -> None:
    assert post(web, untouched, path, b'{"text": "hi"}', content_type="text/plain") == 415


EVENT = make_event("e1", metadata={"timestamp": "2026-11-25T16:00:00Z", "thread_id": "t1"})


@pytest.mark.parametrize("field", ["event_id", "platform", "author_id", "channel_id", "content"])
def test_an_event_missing_a_required_field_is_refused_whole(web, untouched, field: str) -> None:
    good = make_event("ok")
    body = json.dumps({"events": [good, {k: v for k, v in EVENT.items() if k != field}]}).encode()
    assert post(web, untouched, "/v1/events/ingest", body) == 400


@FIXED
@given(field=st.sampled_from([*EVENT, "metadata.timestamp", "metadata.thread_id", "metadata.mentions",
                              "metadata.user_reputation", "metadata.extra"]),
       value=st.sampled_from(AWKWARD_VALUES) | JSON)
def test_an_event_with_any_field_of_any_type_is_accepted_or_refused_never_a_500(web, rds, field: str,
                                                                               value: Any) -> None:
    event = json.loads(json.dumps(EVENT))
    if field.startswith("metadata."):
        event["metadata"][field.split(".", 1)[1]] = value
    else:
        event[field] = value
    body = json.dumps(event).encode()
    reply = web.post("/v1/events/ingest", data=body, headers=signed("/v1/events/ingest", body),
                     content_type="application/json")
    assert reply.status_code in (202, 400), reply.get_data()[:300]
    if reply.status_code == 202:  # what was accepted can be stored: see test_event_schema
        assert reply.get_json()["accepted"] or reply.get_json()["duplicates"]
    else:
        assert reply.get_json()["errors"]


@FIXED
@given(body=JSON)
def test_any_json_document_to_any_post_is_never_a_500(web, untouched, body: Any) -> None:
    for path in POSTS:
        raw = json.dumps(body).encode()
        reply = web.post(path, data=raw, headers=signed(path, raw), content_type="application/json")
        assert reply.status_code < 500, (path, raw[:200], reply.get_data()[:300])
        assert reply.get_json(silent=True) is not None or reply.status_code in (200, 202, 204)


AWKWARD_PATHS = ["%00", "%ff%fe", "%ed%a0%80", "x" * 5000, "..%2F..", "²", "%20"]


@pytest.mark.parametrize("value", AWKWARD_PATHS)
@pytest.mark.parametrize("template", ["/v1/events/{}", "/v1/events/e1?platform={}", "/v1/actions/{}",
                                      "/v1/sessions/{}", "/v1/sessions/{}/chart.svg", "/v1/users/web/{}",
                                      "/v1/users/{}/u1", "/v1/alerts?session_id={}", "/v1/alerts?limit={}"])
def test_an_awkward_id_or_query_is_a_4xx_or_an_answer_never_a_500(web, untouched, template: str, value: str) -> None:
    before = untouched.state()
    reply = web.get(template.format(value), headers=signed("", b""))
    assert reply.status_code in (200, 400, 404), (template, value, reply.status_code, reply.get_data()[:300])
    if reply.status_code != 200:
        assert reply.get_json()["status"] == reply.status_code
    assert untouched.state() == before


def test_whatever_ingest_accepts_is_screened_and_stored(web, rds, settings) -> None:  # type: ignore[no-untyped-def]
    """Accepted and then lost is worse than refused: every awkward value in every field, and the
    events that got a 202 go through screening into PostgreSQL without one failing."""
    from app.db import session_scope
    from app.pipeline import screen
    from app.streams import RAW
    from ml.screening import get_screener

    fields = [*EVENT, "metadata.timestamp", "metadata.thread_id", "metadata.mentions", "metadata.extra"]
    accepted = []
    for n, (field, value) in enumerate((f, v) for f in fields for v in [*AWKWARD_VALUES, "x\ud800y", "a\x00b"]):
        event = json.loads(json.dumps(EVENT)) | {"event_id": f"awk-{n}"}
        target = event["metadata"] if field.startswith("metadata.") else event
        target[field.removeprefix("metadata.")] = value
        body = json.dumps(event).encode()
        reply = web.post("/v1/events/ingest", data=body, headers=signed("", body), content_type="application/json")
        assert reply.status_code in (202, 400), (field, value, reply.get_data()[:300])
        accepted += reply.get_json().get("accepted", [])
    assert len(accepted) > 20
    items = [{"event": json.loads(f["data"]), "received_at": int(f["received_at"])} for _, f in rds.xrange(RAW)]
    with session_scope() as db:
        result = screen.screen_batch(items, screener=get_screener("ngram-v1"), db=db, client=rds, settings=settings)
    assert sorted(s.event["event_id"] for s in result.screened) == sorted(set(accepted))
