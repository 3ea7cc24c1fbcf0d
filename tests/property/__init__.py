"""Property-based tests (hypothesis) of what comes in from outside: normalisers, signature checks,
the event schema and every endpoint. Example counts are modest so the suite stays quick on two
cores; no example database is written (``database=None``) and no deadline is timed."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile("safety", max_examples=60, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("safety")

# Any text Python can hold, lone surrogates and NUL included: what json.loads makes of "\ud800" or "\u0000".
ANY_TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF,
                                 categories=None), max_size=60)
# Values that broke parsers elsewhere: digits int() refuses, ids past 64 bits, times out of range.
AWKWARD_VALUES = ["", " ", "0", "-1", "²", "٣", "9" * 40, "1" * 19, "1e999", "NaN", "\x00", "\ud800",
                           "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-06-01T12:00:00",
                           "1717243199.000100", "99999999999999999999.1", 2**64, -1, 1e308, None, True, [], {}]
AWKWARD = st.sampled_from(AWKWARD_VALUES)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | ANY_TEXT
           | AWKWARD)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
                    max_leaves=20)


def storable(value: Any, depth: int = 0) -> bool:
    """What PostgreSQL accepts in a text or JSONB column: UTF-8 without NUL, finite numbers."""
    if depth > 64:
        return False
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(storable(k, depth + 1) and storable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(v, depth + 1) for v in value)
    return value is None or isinstance(value, bool | int)
