"""API-key authentication for the REST API (X-API-Key, compared in constant time)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, g, request


def _matches(candidate: str, keys: tuple[str, ...]) -> bool:
    # Compare against every key, without stopping early, so timing reveals nothing.
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate.encode(), key.encode())
    return found


def require_api_key(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        candidate = request.headers.get("X-API-Key", "")
        keys = current_app.config["SETTINGS"].API_KEYS
        if not candidate:
            abort(401, description="Missing X-API-Key header.")
        if not keys or not _matches(candidate, keys):
            abort(401, description="Invalid API key.")
        g.api_key = candidate
        return view(*args, **kwargs)

    return wrapper
