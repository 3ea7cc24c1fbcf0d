"""The provider interface and the failures the reasoning stage tells apart.

Every failure means "use the fallback"; ``retryable`` says whether one more try inside the time
budget can help (a timeout, 429, 5xx or a malformed answer may; a 401 or an unknown model will not).
"""

from __future__ import annotations

from typing import Any, Protocol


class Provider(Protocol):
    name: str  # "openai" | "local": recorded as the decision's provider
    model: str

    def complete(self, messages: list[dict[str, Any]], *, timeout_s: float) -> str:
        """The model's raw answer text; raises an ``LLMError``."""
        ...


class LLMError(Exception):
    retryable = True
    reason = "error"


class LLMTimeout(LLMError):
    reason = "timeout"


class LLMUnavailable(LLMError):
    """429, 5xx or a broken connection."""

    reason = "unavailable"


class LLMRefused(LLMError):
    reason = "refused"


class LLMInvalidAnswer(LLMError):
    """Not JSON, or JSON outside the decision schema: rejected, never applied."""

    reason = "invalid_answer"


class LLMRejectedRequest(LLMError):
    """The server refused the request itself (401, 403, 404, 400): retrying cannot help."""

    retryable = False
    reason = "rejected_request"
