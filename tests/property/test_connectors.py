"""The connectors' normalisers (``parse`` of app/platforms) on recorded payloads with one part
replaced by anything JSON can hold, and on arbitrary bytes: a delivery is normalised into events
the event schema accepts or refused with a 4xx, and nothing else ever escapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.platforms import ENDPOINTS, WebhookRejected, discord, slack
from app.schemas import EventSchema
from tests.platforms import FIXTURES
from tests.property import AWKWARD_VALUES, JSON, storable

TWITCH_TYPES = {"webhook_callback_verification": "webhook_callback_verification", "revocation": "revocation"}
PAYLOADS = [(endpoint, path.stem) for endpoint, folder in (("twitch", "twitch"), ("slack", "slack"), ("web", "web"))
            for path in sorted((FIXTURES / "webhooks" / folder).glob("*.json"))]
PAYLOADS += [("discord" if path.stem.startswith("bridge") else "discord_interactions", path.stem)
             for path in sorted((FIXTURES / "webhooks" / "discord").glob("*.json"))]
HEADERS = {"Twitch-Eventsub-Message-Id": "m-1", "Twitch-Eventsub-Message-Timestamp": "2024-06-01T12:00:00Z",
           "webhook-id": "msg_1", "webhook-timestamp": "1717243200", "X-Slack-Retry-Num": "1"}


def headers_for(endpoint: str, name: str) -> dict[str, str]:
    kind = TWITCH_TYPES.get(name, "notification")
    return HEADERS | {"Twitch-Eventsub-Message-Type": kind} if endpoint == "twitch" else HEADERS


def mutate(doc: Any, data: st.DataObject) -> Any:
    """``doc`` with one value somewhere inside replaced by an arbitrary JSON value."""
    if not isinstance(doc, dict | list) or not doc or data.draw(st.integers(0, 3)) == 0:
        return data.draw(JSON)
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = data.draw(st.sampled_from(keys))
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[key] = mutate(doc[key], data)
    return copy


def normalise(endpoint: str, headers: dict[str, str], body: bytes) -> int:
    """200 when parsed into valid events (or none), the connector's status when refused, 400 for
    events the schema refuses (what web/webhooks.py answers); anything else propagates."""
    try:
        inbound = ENDPOINTS[endpoint].parse(headers, body)
    except WebhookRejected as exc:
        assert 400 <= exc.status < 500, exc
        return exc.status
    try:
        events = EventSchema(many=True).load(inbound.events)
    except ValidationError:
        return 400
    assert all(storable(e) for e in events)
    return 200


@pytest.mark.parametrize(("endpoint", "name"), PAYLOADS)
def test_the_recorded_payload_normalises(endpoint: str, name: str) -> None:
    body = (FIXTURES / "webhooks" / endpoint.split("_")[0] / f"{name}.json").read_bytes()
    assert normalise(endpoint, headers_for(endpoint, name), body) == 200


@pytest.mark.parametrize(("endpoint", "name"), PAYLOADS)
@given(data=st.data())
def test_a_payload_with_any_part_replaced_is_normalised_or_refused(endpoint: str, name: str,
                                                                    data: st.DataObject) -> None:
    doc = json.loads((FIXTURES / "webhooks" / endpoint.split("_")[0] / f"{name}.json").read_bytes())
    body = json.dumps(mutate(doc, data)).encode()
    assert normalise(endpoint, headers_for(endpoint, name), body) in (200, 400, 413)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@given(body=st.binary(max_size=200) | st.sampled_from([b"[" * 50_000, b'{"a":' * 30_000, b"\xff\xfe{}", b"",
                                                         b'{"type": 1e999}', b"NaN"]))
def test_any_bytes_are_normalised_or_refused(endpoint: str, body: bytes) -> None:
    assert normalise(endpoint, headers_for(endpoint, ""), body) in (200, 400, 413)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document, containers and leaves."""
    out = [prefix]
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        out += paths(value, (*prefix, key))
    return out


def replaced(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = replaced(doc[path[0]], path[1:], value)
    return copy


@pytest.mark.parametrize(("endpoint", "name"), PAYLOADS)
def test_every_place_of_a_recorded_payload_takes_every_awkward_value(endpoint: str, name: str) -> None:
    """Exhaustive where random draws are too thin: each field (ids, Slack ts, snowflakes, times)
    with each value that broke a parser somewhere."""
    doc = json.loads((FIXTURES / "webhooks" / endpoint.split("_")[0] / f"{name}.json").read_bytes())
    statuses = {normalise(endpoint, headers_for(endpoint, name), json.dumps(replaced(doc, path, value)).encode())
                for path in paths(doc)[1:] for value in AWKWARD_VALUES}
    assert statuses <= {200, 400, 413}


@pytest.mark.parametrize("parse_time", [lambda: discord.snowflake_time("9" * 40),
                                        lambda: slack._ts_to_iso("99999999999999999999.1", "ts")])
def test_a_time_past_what_datetime_holds_is_a_400(parse_time: Any) -> None:
    with pytest.raises(WebhookRejected) as refused:
        parse_time()
    assert refused.value.status == 400
