"""The gateway bridge's forwarder against the real Flask receiver on a local port.

Gateway dispatches are taken from the receiver's own fixtures (what it is known to accept), fed
to ``GatewayForwarder`` as the gateway would hand them over, and must come out of the other end
as the events ``parse_bridge`` makes of those fixtures, in the ``events:raw`` stream.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from app import streams
from app.config import Settings, set_settings
from app.discord_bridge import BATCH_TYPE, GatewayForwarder, intents, make_client
from app.platforms import discord, standard_webhooks
from tests.platforms import payload

SECRET = "whsec_" + base64.b64encode(b"bridge-secret-32-bytes-long!!!!!").decode()
FORWARDED = ("MESSAGE_CREATE", "AUTO_MODERATION_ACTION_EXECUTION")


def fixture(name: str) -> dict[str, Any]:
    return json.loads(payload("discord", name))


def gateway_frames() -> list[dict[str, Any]]:
    """Every dispatch in the three bridge fixtures, as ``op: 0`` gateway frames (TYPING_START included)."""
    dispatches = fixture("bridge_batch")["data"]["events"] + [
        fixture("bridge_message_create")["data"], fixture("bridge_automod")["data"]]
    return [{"op": 0, **d} for d in dispatches]


class Receiver:
    """A WSGI front for the real app on a local port: records requests, can fail the first few."""

    def __init__(self, app: Callable[..., Any] | None, fail_first: int = 0, status: str = "503 Service Unavailable"):
        self.app, self.fail_first, self.status = app, fail_first, status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        with self.lock:
            self.requests.append((headers, body))
            failing = len(self.requests) <= self.fail_first
        if failing or self.app is None:
            status = self.status if failing else "202 Accepted"
            start_response(status, [("Content-Type", "application/json")])
            return [b"{}"]
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


@pytest.fixture
def web_app(settings_map: dict[str, Any], settings: Settings) -> Iterator[Any]:
    from web import create_app

    yield create_app(settings_map | {"DISCORD_BRIDGE_SECRET": SECRET})
    set_settings(settings)


@pytest.fixture
def serve() -> Iterator[Callable[[Receiver], str]]:
    servers = []

    def start(receiver: Receiver) -> str:
        server = make_server("127.0.0.1", 0, receiver, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/v1/webhooks/discord"

    yield start
    for server in servers:
        server.shutdown()


def forward(url: str, frames: list[dict[str, Any]], *, secret: str = SECRET, close_after: float = 0.0,
            shutdown_timeout: float = 10.0, **options: Any) -> GatewayForwarder:
    """Feed frames to a running forwarder, optionally let it idle, then shut it down (flushing)."""
    options = {"flush_interval": 0.05, "backoff_base": 0.01, "backoff_max": 0.05} | options

    async def scenario() -> GatewayForwarder:
        forwarder = GatewayForwarder(url, secret, **options)
        task = asyncio.create_task(forwarder.run())
        for frame in frames:
            forwarder.add(frame)
        await asyncio.sleep(close_after)
        await forwarder.close(shutdown_timeout)
        await asyncio.wait_for(task, shutdown_timeout + 5)
        await forwarder.aclose()
        return forwarder

    return asyncio.run(scenario())


def raw_events(rds: Any) -> list[dict[str, Any]]:
    return [json.loads(f["data"]) for _, f in rds.xrange(streams.RAW)]


def expected_events() -> list[dict[str, Any]]:
    """What the receiver itself makes of the three fixture bodies."""
    events = []
    for name in ("bridge_batch", "bridge_message_create", "bridge_automod"):
        events += discord.parse_bridge({}, payload("discord", name)).events
    return events


KEYS = ("event_id", "platform", "author_id", "user_id", "channel_id", "content")


def test_fixture_dispatches_land_in_the_raw_stream_in_one_signed_request(web_app, serve, rds):
    receiver = Receiver(web_app)
    forwarder = forward(serve(receiver), gateway_frames())
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    standard_webhooks.verify(headers, body, secret=SECRET, now=time.time())
    sent = json.loads(body)
    assert sent["type"] == BATCH_TYPE
    assert sent["data"]["events"] == [
        {k: f[k] for k in ("t", "s", "d")} for f in gateway_frames() if f["t"] in FORWARDED]  # d verbatim
    landed = raw_events(rds)
    assert [{k: e.get(k) for k in KEYS} for e in landed] == [{k: e.get(k) for k in KEYS} for e in expected_events()]
    assert [e["metadata"]["gateway_seq"] for e in landed] == [43, 44, 48, 42, 77]
    assert forwarder.delivered == 7 and forwarder.dropped == 0


def test_an_edit_lands_beside_the_original_and_other_updates_stay_behind(web_app, serve, rds):
    create = {"op": 0, **fixture("bridge_message_create")["data"]}
    edit = {"op": 0, **fixture("bridge_message_update")["data"]}
    not_edits = [{"op": 0, **d} for d in fixture("bridge_message_update_not_edits")["data"]["events"]]
    receiver = Receiver(web_app)
    forwarder = forward(serve(receiver), [create, *not_edits, edit, edit])  # the same edit twice: one event
    [(_, body)] = receiver.requests
    sent = [d["t"] for d in json.loads(body)["data"]["events"]]
    assert sent == ["MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_UPDATE"]
    landed = raw_events(rds)
    assert [e["event_id"] for e in landed] == [
        "1234567890123456789", "1234567890123456789:edit:2024-06-01T12:05:00.456000+00:00"]
    assert landed[1]["metadata"]["original_event_id"] == landed[0]["event_id"]
    assert landed[1]["session_id"] == landed[0]["session_id"]
    assert forwarder.delivered == 3 and forwarder.dropped == 0


def test_503_is_retried_with_the_same_delivery_id_then_delivered_once(web_app, serve, rds, caplog):
    caplog.set_level(logging.DEBUG)
    receiver = Receiver(web_app, fail_first=2)
    forwarder = forward(serve(receiver), gateway_frames()[:2])
    assert len(receiver.requests) == 3
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 1
    assert len({b for _, b in receiver.requests}) == 1
    assert len(raw_events(rds)) == 2 and forwarder.delivered == 2 and forwarder.requests == 3
    assert "HTTP 503" in caplog.text
    for frame in gateway_frames():
        content = frame["d"].get("content")
        assert not content or content not in caplog.text


def test_network_errors_are_retried_until_the_receiver_is_up(web_app, serve, rds):
    receiver = Receiver(web_app)
    url = serve(receiver)
    server_port = url.split(":")[2].split("/")[0]
    dead = url.replace(server_port, "1")  # nothing listens on port 1

    async def scenario() -> GatewayForwarder:
        forwarder = GatewayForwarder(dead, SECRET, flush_interval=0.01, backoff_base=0.01, backoff_max=0.02)
        task = asyncio.create_task(forwarder.run())
        forwarder.add(gateway_frames()[0])
        await asyncio.sleep(0.2)
        assert forwarder.requests >= 2 and forwarder.delivered == 0
        forwarder.target_url = url  # the API comes back
        await forwarder.close(5)
        await asyncio.wait_for(task, 10)
        await forwarder.aclose()
        return forwarder

    forwarder = asyncio.run(scenario())
    assert forwarder.delivered == 1 and len(raw_events(rds)) == 1


def test_a_wrong_secret_is_refused_by_the_receiver(web_app, serve, rds):
    receiver = Receiver(web_app)
    wrong = "whsec_" + base64.b64encode(b"another-secret-32-bytes-long!!!!").decode()
    forwarder = forward(serve(receiver), gateway_frames()[:1], secret=wrong, close_after=0.15,
                        shutdown_timeout=0.1)
    assert len(receiver.requests) >= 2  # 401 is retried (a secret being rotated), never accepted
    assert forwarder.delivered == 0 and forwarder.dropped == 1 and rds.xlen(streams.RAW) == 0


def test_a_full_batch_is_sent_at_once_without_waiting_for_the_interval(serve):
    receiver = Receiver(None)
    url = serve(receiver)
    template = fixture("bridge_message_create")["data"]
    frames = [{"op": 0, "t": "MESSAGE_CREATE", "s": i, "d": {**template["d"], "id": str(10**18 + i)}}
              for i in range(250)]

    async def scenario() -> tuple[int, GatewayForwarder]:
        forwarder = GatewayForwarder(url, SECRET, flush_interval=60)
        task = asyncio.create_task(forwarder.run())
        for frame in frames:
            forwarder.add(frame)
            await asyncio.sleep(0)
        for _ in range(200):
            if forwarder.delivered == 200:
                break
            await asyncio.sleep(0.01)
        sent_before_close = len(receiver.requests)
        await forwarder.close(5)
        await asyncio.wait_for(task, 10)
        await forwarder.aclose()
        return sent_before_close, forwarder

    sent_before_close, forwarder = asyncio.run(scenario())
    assert sent_before_close == 2  # two full batches; the remaining 50 wait for the interval or shutdown
    sizes = [len(json.loads(b)["data"]["events"]) for _, b in receiver.requests]
    assert sizes == [100, 100, 50] and forwarder.delivered == 250
    seqs = [e["s"] for _, b in receiver.requests for e in json.loads(b)["data"]["events"]]
    assert seqs == list(range(250))


def test_the_buffer_is_bounded_and_drops_the_oldest(caplog):
    async def scenario() -> GatewayForwarder:
        forwarder = GatewayForwarder("http://127.0.0.1:1/", SECRET, max_buffer=3)
        for s in range(5):
            forwarder.add({"t": "MESSAGE_CREATE", "s": s, "d": {"content": "secret words"}})
        await forwarder.aclose()
        return forwarder

    forwarder = asyncio.run(scenario())
    assert forwarder.pending == 3 and forwarder.dropped == 2
    assert [d["s"] for _, d in forwarder._buffer] == [2, 3, 4]
    assert "dropped the oldest" in caplog.text and "secret words" not in caplog.text


def test_other_dispatches_and_raw_frames():
    async def scenario() -> GatewayForwarder:
        forwarder = GatewayForwarder("http://127.0.0.1:1/", SECRET)
        assert not forwarder.add({"op": 0, "t": "TYPING_START", "s": 1, "d": {}})
        assert not forwarder.add({"op": 11, "t": None, "s": None, "d": None})
        assert not forwarder.add_raw('{"op":11,"d":null}')
        assert not forwarder.add_raw('{"op":0,"t":"MESSAGE_UPDATE","s":3,"d":{"content":"MESSAGE_CREATE"}}')
        assert not forwarder.add_raw('{"op":0,"t":"MESSAGE_DELETE","s":4,"d":{"id":"1","channel_id":"2"}}')
        assert forwarder.add_raw(json.dumps({"op": 0, **fixture("bridge_message_update")["data"]}))
        assert forwarder.add_raw(json.dumps(gateway_frames()[0]))
        await forwarder.aclose()
        return forwarder

    assert asyncio.run(scenario()).pending == 2


def test_a_malformed_batch_is_dropped_after_a_few_400s_rather_than_blocking(serve):
    receiver = Receiver(None, fail_first=100, status="400 Bad Request")
    forwarder = forward(serve(receiver), gateway_frames()[:1])
    assert len(receiver.requests) == 3 and forwarder.dropped == 1 and forwarder.delivered == 0


def test_shutdown_gives_up_after_its_deadline_when_the_api_stays_down(serve):
    receiver = Receiver(None, fail_first=10**6)
    started = time.monotonic()
    forwarder = forward(serve(receiver), gateway_frames(), shutdown_timeout=0.3)
    assert time.monotonic() - started < 3
    assert forwarder.delivered == 0 and forwarder.dropped == 7


def test_the_discord_client_asks_for_the_intents_and_queues_raw_frames():
    assert intents().value == 1 | 1 << 9 | 1 << 15 | 1 << 21

    async def scenario() -> GatewayForwarder:
        forwarder = GatewayForwarder("http://127.0.0.1:1/", SECRET)
        client = make_client(forwarder)
        await client.on_socket_raw_receive(json.dumps(gateway_frames()[-1]))
        await client.on_socket_raw_receive('{"op":0,"t":"PRESENCE_UPDATE","s":9,"d":{}}')
        await client.close()
        await forwarder.aclose()
        return forwarder

    forwarder = asyncio.run(scenario())
    assert [d["t"] for _, d in forwarder._buffer] == ["AUTO_MODERATION_ACTION_EXECUTION"]
