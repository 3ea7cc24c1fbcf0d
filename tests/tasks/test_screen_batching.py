"""How many events a screening task takes: what its process screens in about half a second."""

from __future__ import annotations

import pytest

from tasks import screen


@pytest.mark.parametrize(("per_event_s", "expected"), [(0.0025, 200), (0.0002, 512), (0.5, 16)])
def test_a_batch_holds_half_a_second_of_work_within_bounds(monkeypatch, per_event_s, expected):
    monkeypatch.setitem(screen._state, "per_event_s", per_event_s)
    assert screen.batch_limit(512) == expected
