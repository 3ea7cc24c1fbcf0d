"""How long act.apply keeps trying a platform that answers 429/5xx: long enough for an outage of
minutes. Before, a 429 with a 5 s Retry-After (or a 503, whose inline retries leave a sub-second
hint) set every Celery countdown, so the 8 retries were used up in about 40 s and a 90 s outage
failed 53 of 127 actions for good (bench.faults platform-outage --outage-s 90)."""

from __future__ import annotations

import random

import pytest

from app.platforms.outbound import TransientError
from tasks import act


def worst_case_total(retry_after: float | None) -> float:
    """The shortest time all retries can take (every jitter at its minimum)."""
    random.seed(0)
    total = 0.0
    for retries in range(act.MAX_RETRIES):
        exc = TransientError("HTTP 429 on POST /hooks", retry_after=retry_after, status=429)
        total += min(act.countdown(exc, retries) for _ in range(200))
    return total


@pytest.mark.parametrize("retry_after", [None, 0.0, 0.4, 5.0])
def test_retries_outlast_a_platform_outage_of_ten_minutes(retry_after):
    assert worst_case_total(retry_after) > 600


def test_a_platform_wait_is_never_shortened():
    for retries in range(act.MAX_RETRIES):
        exc = TransientError("HTTP 429", retry_after=120.0, status=429)
        assert act.countdown(exc, retries) >= 120.0


def test_the_first_retries_stay_quick_for_a_blip():
    exc = TransientError("HTTP 503", retry_after=0.5, status=503)
    assert act.countdown(exc, 0) <= 1.1 and act.countdown(exc, 1) <= 2.1


def test_later_retries_grow_even_with_a_short_retry_after():
    exc = TransientError("HTTP 429", retry_after=5.0, status=429)
    assert act.countdown(exc, 8) >= 128
