"""The ``openai`` and ``local`` providers: the openai client against api.openai.com or any
OpenAI-compatible server (Ollama ``http://ollama:11434/v1``, vLLM, llama.cpp).

The client's own retries are off (``max_retries=0``): the reasoning stage owns the one retry, so
it can keep the whole path inside its time budget.
"""

from __future__ import annotations

from typing import Any

import openai
from openai import OpenAI

from app.llm.base import LLMInvalidAnswer, LLMRefused, LLMRejectedRequest, LLMTimeout, LLMUnavailable
from app.llm.schema import RESPONSE_FORMAT

MAX_ANSWER_TOKENS = 400


class OpenAICompatible:
    def __init__(self, name: str, model: str, base_url: str | None, api_key: str) -> None:
        self.name, self.model = name, model
        self.client = OpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    def close(self) -> None:
        """Close the client's pooled connections (a worker keeps one provider for its life; tests don't)."""
        self.client.close()

    def complete(self, messages: list[dict[str, Any]], *, timeout_s: float) -> str:
        limit: dict[str, Any] = ({"max_completion_tokens": MAX_ANSWER_TOKENS} if self.name == "openai"
                                 else {"max_tokens": MAX_ANSWER_TOKENS})
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, response_format=RESPONSE_FORMAT,  # type: ignore[arg-type]
                temperature=0, timeout=timeout_s, **limit)
        except openai.APITimeoutError as exc:
            raise LLMTimeout(f"no answer within {timeout_s:.2f} s") from exc
        except openai.APIConnectionError as exc:
            raise LLMUnavailable(f"connection failed: {exc}") from exc
        except openai.APIStatusError as exc:
            if exc.status_code == 429 or exc.status_code >= 500:
                raise LLMUnavailable(f"HTTP {exc.status_code}") from exc
            raise LLMRejectedRequest(f"HTTP {exc.status_code}: {str(exc)[:200]}") from exc
        except openai.APIResponseValidationError as exc:
            raise LLMInvalidAnswer(f"unreadable response: {exc}") from exc
        if not response.choices:
            raise LLMInvalidAnswer("no choices in the response")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            raise LLMRefused(str(message.refusal)[:200])
        if response.choices[0].finish_reason == "content_filter":
            raise LLMRefused("content filter")
        if not message.content:
            raise LLMInvalidAnswer("empty answer")
        return message.content
