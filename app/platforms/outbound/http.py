"""What every outbound client shares: one HTTP send, a rate-limit memory in Redis, retries with jitter.

Retries happen at two levels. Here, in the worker, a few quick ones (a 5xx blip, a 429 asking
for under ``ACTION_MAX_INLINE_WAIT_S``) so a typical action lands within the design's 5 s. A
longer wait is not slept through: it is raised as ``TransientError`` carrying the wait, and the
Celery task retries after it without holding a worker or the action's row lock.

Rate-limit state lives in Redis, not in the process, because every ``actions`` worker shares the
platform's buckets: a 429 learned by one worker makes the others wait too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import redis

from app.platforms.outbound import Outcome, PermanentError, PlatformError, TransientError

T = TypeVar("T")
INLINE_ATTEMPTS = 3
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 300.0
RESPONSE_CHARS = 1_000


def backoff(attempt: int, *, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S) -> float:
    """Exponential backoff with "equal jitter": half the ceiling fixed, half random, so retries spread out."""
    ceiling = min(cap, base * 2 ** attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def after(retry_after: float) -> float:
    """A platform's own wait, never shortened, with a little jitter so waiting workers do not stampede."""
    return retry_after + random.uniform(0, min(1.0, 0.1 * retry_after + 0.01))


class RateLimiter:
    """Per-key waits shared by all workers: a key holding "0" blocks callers until it expires."""

    def __init__(self, client: redis.Redis, prefix: str = "ratelimit") -> None:
        self.client, self.prefix = client, prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def wait_for(self, *keys: str) -> float:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(self._key(key))
            pipe.pttl(self._key(key))
        values = pipe.execute()
        waits = [pttl / 1000 for value, pttl in zip(values[::2], values[1::2], strict=True)
                 if value == "0" and pttl > 0]
        return max(waits, default=0.0)

    def block(self, key: str, seconds: float) -> None:
        if seconds > 0:
            self.client.set(self._key(key), "0", px=max(1, int(seconds * 1000)))

    def observe(self, key: str, remaining: int, reset_after: float) -> None:
        """Remember a bucket's remaining requests until its reset; only 0 makes anyone wait."""
        if reset_after > 0:
            self.client.set(self._key(key), str(max(0, remaining)), px=max(1, int(reset_after * 1000)))

    def get(self, key: str) -> str | None:
        return self.client.get(self._key(key))  # type: ignore[return-value]

    def remember(self, key: str, value: str, ttl_s: int) -> None:
        self.client.set(self._key(key), value, ex=ttl_s)


class Transport:
    """Sends requests for the clients and runs their retry loop."""

    def __init__(self, http: httpx.Client, limiter: RateLimiter, *, timeout_s: float, max_inline_wait_s: float,
                 attempts: int = INLINE_ATTEMPTS, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.http, self.limiter, self.timeout_s = http, limiter, timeout_s
        self.max_inline_wait_s, self.attempts, self.sleep, self.clock = max_inline_wait_s, attempts, sleep, clock

    def pause(self, *keys: str) -> None:
        """Wait out a known exhausted bucket before calling, or hand the wait to Celery if it is long."""
        wait = self.limiter.wait_for(*keys)
        if wait <= 0:
            return
        if wait > self.max_inline_wait_s:
            raise TransientError("rate limit bucket exhausted", retry_after=wait, code="local_rate_limit")
        self.sleep(wait)

    def send(self, method: str, url: str, *, headers: dict[str, str], request: str, json: Any = None,
             content: bytes | None = None, params: dict[str, str] | None = None) -> httpx.Response:
        try:
            return self.http.request(method, url, headers=headers, json=json, content=content, params=params,
                                     timeout=self.timeout_s)
        except httpx.TransportError as exc:
            raise TransientError(f"network error: {type(exc).__name__}", request=request,
                                 code=type(exc).__name__) from None

    def retrying(self, call: Callable[[int], Outcome]) -> Outcome:
        """Run ``call(attempt)`` until it succeeds, fails for good, or the next wait is too long to sleep."""
        history: list[int | str] = []
        for attempt in range(self.attempts):
            try:
                outcome = call(attempt)
            except TransientError as exc:
                history.append(_label(exc))
                wait = after(exc.retry_after) if exc.retry_after is not None else backoff(attempt)
                if attempt + 1 >= self.attempts or wait > self.max_inline_wait_s:
                    exc.retry_after, exc.attempts = wait, history
                    raise
                self.sleep(wait)
            except PlatformError as exc:
                exc.attempts = [*history, _label(exc)]
                raise
            else:
                outcome.attempts = [*history, *(outcome.attempts or [outcome.status or "ok"])]
                return outcome
        raise AssertionError("unreachable: the last attempt raises or returns")


def _label(exc: PlatformError) -> int | str:
    """An attempt in the audit trail: the HTTP status, or the platform's error code when HTTP said 200."""
    if exc.status and exc.status >= 300:
        return exc.status
    return str(exc.code or exc.status or "error")


def body_of(response: httpx.Response) -> Any:
    """The response's JSON (or text), cut short for the audit log."""
    if not response.content:
        return None
    try:
        data = response.json()
    except ValueError:
        return response.text[:RESPONSE_CHARS]
    text = str(data)
    return data if len(text) <= RESPONSE_CHARS else text[:RESPONSE_CHARS]


def retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP-date: rare from these platforms; fall back to our backoff
        return None


def error_for(response: httpx.Response, request: str, *, code: Any = None, retry_after: float | None = None,
              transient: tuple[int, ...] = ()) -> PlatformError:
    """429, 408 and 5xx (plus a platform's own ``transient`` statuses) retry; any other 3xx/4xx is final."""
    status = response.status_code
    reason = f"HTTP {status}" + (f" (code {code})" if code not in (None, "") else "") + f" on {request}"
    if status in (408, 429) or status >= 500 or status in transient:
        return TransientError(reason, retry_after=retry_after, status=status, code=code, request=request)
    return PermanentError(reason, status=status, code=code, request=request)
