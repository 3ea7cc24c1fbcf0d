"""Every provider a test builds is closed after it: a dropped openai client leaves its pooled
connection to the fake server open until garbage collection, whose ResourceWarning (an error here)
then fails whichever test happens to be running."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.llm.openai_compat import OpenAICompatible


@pytest.fixture(autouse=True)
def close_providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    built: list[OpenAICompatible] = []
    original = OpenAICompatible.__init__

    def tracked(self: OpenAICompatible, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(OpenAICompatible, "__init__", tracked)
    yield
    for provider in built:
        provider.close()
