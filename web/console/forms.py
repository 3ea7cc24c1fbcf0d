"""Small helpers for query strings and forms, each answering bad input with a 400."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import abort, request

MAX_PAGE = 10_000


def page_number() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        abort(400, description=f"page is a whole number from 1 to {MAX_PAGE}.")
    return int(raw)


def date_range(default_days: int = 1) -> tuple[datetime, datetime]:
    """``from`` / ``to`` as dates (YYYY-MM-DD) or ISO times in UTC; ``to`` is exclusive, a date means its end."""
    now = datetime.now(UTC)
    end = _parse("to", now, end_of_day=True)
    start = _parse("from", end - timedelta(days=default_days), end_of_day=False)
    if start >= end:
        abort(400, description="'from' must be before 'to'.")
    if end - start > timedelta(days=366):
        abort(400, description="Choose a range of at most a year.")
    return start, end


def _parse(name: str, default: datetime, *, end_of_day: bool) -> datetime:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        abort(400, description=f"'{name}' is a date like 2026-12-05 or a time like 2026-12-05T08:00.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if end_of_day and len(raw) == 10:
        value += timedelta(days=1)
    return value
