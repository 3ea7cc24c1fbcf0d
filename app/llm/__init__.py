"""LLM providers for the reasoning stage, behind one small interface (``base.Provider``).

``LLM_PROVIDER`` picks one: ``openai`` (the OpenAI API with ``OPENAI_API_KEY``), ``local`` (any
OpenAI-compatible server at ``LOCAL_LLM_ENDPOINT``: Ollama, vLLM, llama.cpp) or ``none`` (the
deterministic fallback alone). Both real providers are the same ``openai`` client pointed at a
different base URL. ``prompt`` builds the messages (chat content quoted and delimited as untrusted
data) and ``schema`` validates the answer; ``embeddings`` holds the sentence embedders.
"""

from __future__ import annotations

import logging

from app.config import Settings
from app.llm.base import Provider

log = logging.getLogger(__name__)


def provider_for(settings: Settings) -> Provider | None:
    """The configured provider, or None for the fallback alone (also when its key or endpoint is missing)."""
    from app.llm.openai_compat import OpenAICompatible

    name = settings.LLM_PROVIDER.strip().lower()
    if name == "openai" and settings.OPENAI_API_KEY:
        return OpenAICompatible("openai", settings.LLM_MODEL, settings.OPENAI_BASE_URL or None,
                                settings.OPENAI_API_KEY)
    if name == "local" and settings.LOCAL_LLM_ENDPOINT:
        # Local servers ignore the key, but the client insists on one.
        return OpenAICompatible("local", settings.LLM_MODEL, settings.LOCAL_LLM_ENDPOINT,
                                settings.OPENAI_API_KEY or "local")
    if name not in {"", "none"}:
        log.warning("LLM_PROVIDER=%s has no key or endpoint configured: using the fallback alone", name)
    return None
