"""The Discord gateway bridge: holds the bot's gateway connection and forwards dispatches to us.

Discord delivers guild chat (``MESSAGE_CREATE``, edits as ``MESSAGE_UPDATE``) and AutoMod
executions (``AUTO_MODERATION_ACTION_EXECUTION``) only over the gateway WebSocket. This process
receives them with discord.py and POSTs them, batched, to ``/v1/webhooks/discord`` signed with
Standard Webhooks (``DISCORD_BRIDGE_SECRET``); ``app.platforms.discord.parse_bridge`` is the
receiver. Of ``MESSAGE_UPDATE`` only edits are forwarded (``is_edit``), not embed or pin updates.

The gateway ``d`` objects are forwarded verbatim (platform reference §1.2.4): they are taken
from the raw frames (``on_socket_raw_receive``), not rebuilt from discord.py's models, so the
receiver sees exactly what Discord sent. Body, always the batch form::

    {"type": "discord.gateway.batch", "timestamp": "<ISO 8601>", "data": {"events": [{"t", "s", "d"}, ...]}}

:class:`GatewayForwarder` (buffer, batch, sign, post, retry) knows nothing of discord.py so it can
be tested without a gateway. Message content is never logged: only counts, sequence numbers and
HTTP statuses.

Run: ``python -m app.discord_bridge`` with DISCORD_BOT_TOKEN and DISCORD_BRIDGE_SECRET set;
BRIDGE_TARGET_URL overrides the default ``http://127.0.0.1:8001/v1/webhooks/discord``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
import uuid
import warnings
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from app.platforms import standard_webhooks
from app.platforms.discord import is_edit

log = logging.getLogger("app.discord_bridge")

DEFAULT_TARGET_URL = "http://127.0.0.1:8001/v1/webhooks/discord"
FORWARDED = frozenset({"MESSAGE_CREATE", "MESSAGE_UPDATE", "AUTO_MODERATION_ACTION_EXECUTION"})
BATCH_TYPE = "discord.gateway.batch"
DISPATCH_OP = 0
# A 400 means the receiver cannot parse the batch: retrying forever would stall every later
# event behind it, so such a batch is dropped (logged) after a few tries. Everything else
# (401 from a secret mismatch, 429, 5xx, network errors) is retried until it gets through.
PERMANENT_STATUSES = frozenset({400, 413, 422})
PERMANENT_ATTEMPTS = 3


def iso_now(epoch: float) -> str:
    """``2024-06-01T12:00:00.123Z``: the envelope time, millisecond precision like the fixtures."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class GatewayForwarder:
    """Buffers gateway dispatches and delivers them in signed batches, retrying until accepted.

    A batch is sent when ``max_batch`` dispatches are waiting or the oldest has waited
    ``flush_interval`` seconds. One batch is in flight at a time; while it is retried, new
    dispatches keep buffering up to ``max_buffer``, beyond which the oldest are dropped with a
    warning. A batch keeps its ``webhook-id`` across retries (the receiver's dedup key for the
    delivery) and is signed afresh with a current ``webhook-timestamp`` on every attempt.

    All methods must be called on the event loop that runs :meth:`run`.
    """

    def __init__(
        self,
        target_url: str,
        secret: str,
        *,
        max_batch: int = 100,
        flush_interval: float = 0.5,
        max_buffer: int = 10_000,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        request_timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not secret:
            raise ValueError("DISCORD_BRIDGE_SECRET is not set")
        standard_webhooks.decode_secret(secret, "DISCORD_BRIDGE_SECRET")  # fail at start, not at first post
        self.target_url = target_url
        self._secret = secret
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._client = client or httpx.AsyncClient(timeout=request_timeout)
        self._owns_client = client is None
        self._buffer: deque[tuple[float, dict[str, Any]]] = deque()
        self._signal = asyncio.Event()
        self._closing = False
        self._deadline: float | None = None
        self.delivered = 0  # dispatches accepted by the receiver
        self.dropped = 0  # dispatches lost to buffer overflow, a rejected batch or the shutdown deadline
        self.requests = 0  # POST attempts, retries included

    # --- input --------------------------------------------------------------------------------

    def add(self, dispatch: Mapping[str, Any], *, received_at: float | None = None) -> bool:
        """Queue one dispatch (``{"t", "s", "d"}`` or a whole ``op: 0`` frame); False if not forwarded."""
        name = dispatch.get("t")
        if name not in FORWARDED or not isinstance(dispatch.get("d"), dict):
            return False
        if dispatch.get("op", DISPATCH_OP) != DISPATCH_OP:
            return False
        if name == "MESSAGE_UPDATE" and not is_edit(dispatch["d"]):
            return False  # embeds resolving, pins: most updates are not edits, and not worth a POST
        if self._closing:
            self.dropped += 1
            log.warning("dispatch %s s=%s arrived after shutdown began; not forwarded", name, dispatch.get("s"))
            return False
        if len(self._buffer) >= self.max_buffer:
            self._buffer.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("buffer full (%d dispatches, receiver unreachable?): dropped the oldest; %d dropped so far",
                            self.max_buffer, self.dropped)
        self._buffer.append((time.time() if received_at is None else received_at,
                             {"t": name, "s": dispatch.get("s"), "d": dispatch["d"]}))
        if len(self._buffer) == 1 or len(self._buffer) >= self.max_batch:
            self._signal.set()
        return True

    def add_raw(self, frame: str | bytes) -> bool:
        """Queue a raw gateway frame as received (JSON text); frames of other types are ignored.

        A substring check skips the JSON parse for heartbeats, presence and the like.
        """
        text = frame.decode() if isinstance(frame, bytes) else frame
        if not any(name in text for name in FORWARDED):
            return False
        try:
            parsed = json.loads(text)
        except ValueError:
            log.warning("unparseable gateway frame of %d characters skipped", len(text))
            return False
        return isinstance(parsed, dict) and self.add(parsed)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    # --- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver batches until :meth:`close` is called and the buffer is drained (or the deadline passes)."""
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._signal.clear()
                await self._signal.wait()
                continue
            if len(self._buffer) < self.max_batch and not self._closing:
                wait = self.flush_interval - (time.time() - self._buffer[0][0])
                if wait > 0:
                    self._signal.clear()
                    try:
                        await asyncio.wait_for(self._signal.wait(), wait)
                    except TimeoutError:
                        pass
                    continue
            if self._past_deadline():
                self._give_up(len(self._buffer), "shutdown deadline passed")
                self._buffer.clear()
                return
            count = min(self.max_batch, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(count)]
            await self.deliver(batch)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, let :meth:`run` flush what is buffered within ``timeout`` seconds."""
        self._closing = True
        self._deadline = time.monotonic() + timeout
        self._signal.set()

    async def aclose(self) -> None:
        """Release the HTTP client (after :meth:`run` has returned)."""
        if self._owns_client:
            await self._client.aclose()

    # --- delivery -----------------------------------------------------------------------------

    def body(self, batch: Iterable[tuple[float, dict[str, Any]]]) -> bytes:
        """The batch envelope; its time is the oldest dispatch's arrival (AutoMod events use it)."""
        items = list(batch)
        return json.dumps(
            {"type": BATCH_TYPE, "timestamp": iso_now(min(at for at, _ in items)),
             "data": {"events": [dispatch for _, dispatch in items]}},
            separators=(",", ":"), ensure_ascii=False,
        ).encode()

    def headers(self, webhook_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
        timestamp = str(int(time.time() if now is None else now))
        return {"content-type": "application/json", "webhook-id": webhook_id, "webhook-timestamp": timestamp,
                "webhook-signature": standard_webhooks.sign(self._secret, webhook_id, timestamp, body)}

    async def deliver(self, batch: list[tuple[float, dict[str, Any]]]) -> bool:
        """POST one batch until a 2xx; False if it was given up (rejected as malformed, or shutdown)."""
        body = self.body(batch)
        webhook_id = "msg_" + uuid.uuid4().hex
        first_s, last_s = batch[0][1].get("s"), batch[-1][1].get("s")
        attempt = permanent = 0
        while True:
            attempt += 1
            self.requests += 1
            retry_after: float | None = None
            try:
                response = await self._client.post(self.target_url, content=body,
                                                   headers=self.headers(webhook_id, body))
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            else:
                if 200 <= response.status_code < 300:
                    self.delivered += len(batch)
                    log.info("delivered %d dispatches (s=%s..%s) as %s in %d attempt(s)",
                             len(batch), first_s, last_s, webhook_id, attempt)
                    return True
                reason = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
                if response.status_code in PERMANENT_STATUSES:
                    permanent += 1
                    if permanent >= PERMANENT_ATTEMPTS:
                        self._give_up(len(batch), f"receiver rejected the batch ({reason})", webhook_id)
                        return False
            delay = self._backoff(attempt, retry_after)
            if self._past_deadline(delay):
                self._give_up(len(batch), f"shutdown deadline passed ({reason})", webhook_id)
                return False
            log.warning("delivery of %d dispatches (s=%s..%s) as %s failed (%s), attempt %d; retrying in %.1fs",
                        len(batch), first_s, last_s, webhook_id, reason, attempt, delay)
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential with "equal jitter" (half fixed, half random), capped; Retry-After is a floor."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        return max(delay, min(retry_after, self.backoff_max)) if retry_after else delay

    def _past_deadline(self, extra: float = 0.0) -> bool:
        return self._deadline is not None and time.monotonic() + extra > self._deadline

    def _give_up(self, count: int, reason: str, webhook_id: str = "") -> None:
        if count:
            self.dropped += count
            log.error("dropped %d dispatches%s: %s", count, f" ({webhook_id})" if webhook_id else "", reason)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


# --- discord.py side ----------------------------------------------------------------------------


def _discord() -> Any:
    """discord.py, imported on first use (the forwarder needs none of it); its voice player imports
    the deprecated ``audioop`` on 3.11, a warning that is not ours to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*audioop.*", category=DeprecationWarning)
        import discord
    return discord


def intents() -> Any:
    """GUILDS, GUILD_MESSAGES, MESSAGE_CONTENT (privileged: enable it in the developer portal),
    AUTO_MODERATION_EXECUTION."""
    discord = _discord()
    flags = discord.Intents.none()
    flags.guilds = True
    flags.guild_messages = True
    flags.message_content = True
    flags.auto_moderation_execution = True
    return flags


def make_client(forwarder: GatewayForwarder) -> Any:
    """A discord.py client that hands every raw frame to the forwarder and caches no messages."""
    discord = _discord()

    class BridgeClient(discord.Client):
        async def on_socket_raw_receive(self, frame: str) -> None:
            try:
                forwarder.add_raw(frame)
            except Exception:  # never let a frame's content reach discord.py's traceback logging
                log.error("failed to queue a gateway frame (%s)", sys.exc_info()[0].__name__)

        async def on_ready(self) -> None:
            log.info("gateway ready as user %s in %d guild(s)", self.user.id if self.user else "?", len(self.guilds))

    return BridgeClient(intents=intents(), enable_debug_events=True, max_messages=None,
                        chunk_guilds_at_startup=False, member_cache_flags=discord.MemberCacheFlags.none())


async def serve(token: str, forwarder: GatewayForwarder, *, shutdown_timeout: float = 10.0) -> int:
    """Run gateway and forwarder until SIGINT/SIGTERM or the gateway fails; flush, then return an exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = make_client(forwarder)
    forwarding = asyncio.create_task(forwarder.run(), name="forwarder")
    gateway = asyncio.create_task(client.start(token), name="gateway")
    stopping = asyncio.create_task(stop.wait(), name="signal")
    await asyncio.wait({forwarding, gateway, stopping}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if gateway.done() and not stopping.done():
        exc = gateway.exception()
        log.error("gateway connection ended: %s", type(exc).__name__ if exc else "closed")
        code = 1
    log.info("shutting down: flushing %d buffered dispatches", forwarder.pending)
    await client.close()
    await forwarder.close(shutdown_timeout)
    try:
        await asyncio.wait_for(forwarding, shutdown_timeout + 5)
    except TimeoutError:
        log.error("forwarder did not finish flushing in time")
    await forwarder.aclose()
    for task in (gateway, stopping):
        task.cancel()
    log.info("stopped: %d delivered, %d dropped", forwarder.delivered, forwarder.dropped)
    return code


def main() -> int:
    from app.config import Settings

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # discord.py logs whole gateway frames, message content included, at DEBUG.
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
    settings = Settings.from_env()
    if not settings.DISCORD_BOT_TOKEN or not settings.DISCORD_BRIDGE_SECRET:
        log.error("DISCORD_BOT_TOKEN and DISCORD_BRIDGE_SECRET must both be set")
        return 2
    target = os.environ.get("BRIDGE_TARGET_URL") or DEFAULT_TARGET_URL

    async def _main() -> int:
        forwarder = GatewayForwarder(target, settings.DISCORD_BRIDGE_SECRET)
        log.info("forwarding gateway dispatches to %s", target)
        return await serve(settings.DISCORD_BOT_TOKEN, forwarder)

    return asyncio.run(_main())


if __name__ == "__main__":
    sys.exit(main())
