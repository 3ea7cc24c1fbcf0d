"""app.schemas.EventSchema: whatever comes in is either refused with a ValidationError or loaded
into a canonical event that PostgreSQL and the streams can hold; nothing else escapes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.config import PLATFORMS
from app.schemas import ScreenRequestSchema, load_events
from tests.property import ANY_TEXT, JSON, storable

IDS = st.text(min_size=1, max_size=40) | st.integers(0, 2**64) | ANY_TEXT
TIMESTAMPS = (st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.integers(-(2**63), 2**63)
              | st.floats() | ANY_TEXT | st.none())
EVENTS = st.fixed_dictionaries(
    {"event_id": IDS, "platform": st.sampled_from(PLATFORMS) | ANY_TEXT, "author_id": IDS,
     "channel_id": IDS, "content": ANY_TEXT},
    optional={"user_id": IDS | st.none(), "metadata": st.fixed_dictionaries(
        {}, optional={"timestamp": TIMESTAMPS, "thread_id": IDS | st.none(), "user_reputation": st.floats(),
                      "mentions": st.lists(IDS, max_size=3), "extra": JSON})})


def load(payload: object) -> list[dict] | None:
    try:
        return load_events(payload, max_events=5, max_chars=100)
    except ValidationError as exc:
        assert exc.messages  # a refusal always says what was wrong
        return None


@given(EVENTS)
def test_an_event_either_is_refused_or_loads_into_something_postgresql_can_store(event: dict) -> None:
    loaded = load(event)
    if loaded is None:
        return
    [out] = loaded
    assert storable(out), out
    assert out["session_id"].startswith(f"{out['platform']}:{out['channel_id']}")
    assert set(out) == {"event_id", "platform", "user_id", "author_id", "content", "channel_id", "metadata",
                        "session_id"}
    json.dumps(out, allow_nan=False)  # the events:raw entry, strict JSON


@given(JSON)
def test_any_json_document_is_refused_cleanly_or_loads(payload: object) -> None:
    loaded = load(payload)
    assert loaded is None or all(storable(e) for e in loaded)


@given(st.lists(EVENTS | JSON, max_size=7))
def test_a_batch_is_loaded_whole_or_refused_whole(items: list) -> None:
    loaded = load({"events": items})
    assert loaded is None or len(loaded) == len(items)


@given(st.fixed_dictionaries({"text": ANY_TEXT | JSON},
                            optional={"context": st.lists(ANY_TEXT | JSON, max_size=3)}))
def test_a_screen_request_is_refused_or_holds_valid_text(body: dict) -> None:
    try:
        out = ScreenRequestSchema().load(body)
    except ValidationError:
        return
    assert storable(out["text"]) and all(storable(c) for c in out["context"])


@given(st.text(min_size=1, max_size=30).filter(str.strip))
def test_a_well_formed_event_keeps_its_ids(event_id: str) -> None:
    event = {"event_id": event_id, "platform": "web", "author_id": "a", "channel_id": "c", "content": "hi"}
    loaded = load(event)
    if "\x00" in event_id or len(event_id.strip()) > 128:
        assert loaded is None
    else:
        assert loaded is not None and loaded[0]["event_id"] == event_id.strip()


def test_a_message_with_a_lone_surrogate_keeps_its_text_with_a_replacement() -> None:
    [out] = load({"event_id": "e", "platform": "web", "author_id": "a", "channel_id": "c",
                  "content": "you \ud800 idiot\x00"})
    assert out["content"] == "you \ufffd idiot"


def test_a_timestamp_out_of_range_in_utc_is_refused() -> None:
    assert load({"event_id": "e", "platform": "web", "author_id": "a", "channel_id": "c", "content": "x",
                 "metadata": {"timestamp": "0001-01-01T00:00:00+01:00"}}) is None


def test_a_screen_request_is_cleaned_as_an_event_would_be() -> None:
    out = ScreenRequestSchema().load({"text": "hi \ud800 you\x00", "context": ["\udfff before"]})
    assert out == {"text": "hi \ufffd you", "context": ["\ufffd before"]}
