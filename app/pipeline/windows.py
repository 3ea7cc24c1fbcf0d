"""Long messages are screened whole: in overlapping windows the model can read, scored in the same
batched call as the rest of the batch, each message taking its riskiest window.

A transformer reads a fixed number of tokens (minilm-v5: 64, with the turn before) and the screener
cuts what is longer, so an insult at the end of a long message would never be read. Slack allows
40,000 characters. A message longer than one window is split on word boundaries into windows of
``window_words`` words overlapping by ``overlap_words`` (so a phrase cut by one boundary is whole
in the next window); every window goes through the model's public ``screen`` with the message's
own context, and the message gets the result of its riskiest window, with every window's flags.
The stored and mirrored event keeps the whole text; only the model's input is windowed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import is_dataclass, replace
from typing import Any

# ~1.3 tokens per English word: 40 words fill most of 64 tokens and leave room for the turn before.
WINDOW_WORDS = 40
OVERLAP_WORDS = 10
# A screener without a token window (the n-gram model) still cuts its input at this many characters.
MAX_WINDOW_CHARS = 8_000

_WORD = re.compile(r"\S+")


def reads_tokens(screener: Any) -> bool:
    """Whether the screener reads a fixed token window (a transformer), from its model metadata."""
    meta = getattr(screener, "meta", None) or {}
    return bool((meta.get("transformer") or {}).get("max_length"))


def windows(text: str, window_words: int = WINDOW_WORDS, overlap_words: int = OVERLAP_WORDS,
            max_chars: int = MAX_WINDOW_CHARS) -> list[str]:
    """The text itself when it fits one window, else overlapping windows covering all of it."""
    words = [m.span() for m in _WORD.finditer(text)]
    if len(words) <= window_words and len(text) <= max_chars:
        return [text]
    out, step, start = [], max(1, window_words - overlap_words), 0
    while start < len(words):
        end = min(len(words), start + window_words)
        piece = text[words[start][0]:words[end - 1][1]]
        out += [piece[i:i + max_chars] for i in range(0, len(piece), max_chars)]  # one unbroken 8,000-char "word"
        if end == len(words):
            break
        start += step
    return out or [text[:max_chars]]


def screen_whole(screener: Any, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None,
                 **options: Any) -> list[Any]:
    """``screener.screen`` for messages of any length: one call for every window of the batch
    (``options``, such as ``shed_below``, go to every call)."""
    if reads_tokens(screener):
        pieces = [windows(text) for text in texts]
    else:
        pieces = [windows(text, window_words=10**9) for text in texts]
    if all(len(p) == 1 for p in pieces):
        return list(screener.screen(texts, contexts, **options))
    flat = [w for p in pieces for w in p]
    flat_contexts = [contexts[i] for i, p in enumerate(pieces) for _ in p] if contexts is not None else None
    results = list(screener.screen(flat, flat_contexts, **options))
    out, at = [], 0
    for p in pieces:
        chunk, at = results[at:at + len(p)], at + len(p)
        worst = max(chunk, key=lambda r: float(r.risk_score))
        flags = list(dict.fromkeys(f for r in [worst, *chunk] for f in r.flags))
        out.append(replace(worst, flags=flags) if len(chunk) > 1 and is_dataclass(worst) else worst)
    return out
