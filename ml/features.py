"""Hashed character and word n-grams for a whole batch at once, in numpy.

Why hashing rather than a fitted vocabulary: skl2onnx cannot convert ``char_wb`` and turns
``char`` into a dense [batch, vocabulary] tensor, and a Python dict lookup per n-gram costs more
than the model. Here every n-gram of every message in a batch is hashed with a handful of
vectorised numpy operations (polynomial prefix hashes, so any substring hashes in O(1)), and the
ONNX model only gathers weights for the resulting bucket ids. Training calls the same function,
so the features at run time are exactly the features the model was fitted on.

Features: character 2-5-grams of " <text> " (they may cross word boundaries, which keeps short
phrases such as "u suck" together) and word 1-2-grams, each block L2-normalised after IDF.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BUCKET_BITS = 18
N_BUCKETS = 1 << BUCKET_BITS
CHAR_NGRAMS = (2, 3, 4, 5)
MAX_CHARS = 1000
CHAR_BLOCK, WORD_BLOCK = 0, 1
N_BLOCKS = 2

_BASE = 0x100000001B3  # odd, so it has an inverse modulo 2**64
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_SALT_WORD = 101

_URL_SCHEME = re.compile(r"(?:https?://|www\.)\S+")
_URL_DOMAIN = re.compile(r"\S+\.(?:com|net|org|gg|io|ru|xyz|ly|tv)\b(?:/\S*)?")
_TOP_LEVEL_DOMAIN = re.compile(r"\.(?:com|net|org|gg|io|ru|xyz|ly|tv)\b")
_MENTION = re.compile(r"(?<!\w)@[a-z0-9_.]{2,32}")
_DIGIT = re.compile(r"\d")
_NON_ASCII_PUNCT = re.compile(r"([^\w\s'@])")
# ASCII punctuation (not ' @ _) gets spaces around it; str.translate beats a regex here.
_ASCII_PUNCT = str.maketrans({ch: f" {ch} " for ch in "!\"#$%&()*+,-./:;<=>?[\\]^`{|}~"})


@dataclass(frozen=True)
class HashedBatch:
    """Every n-gram occurrence of a batch: its bucket id and its segment (row * N_BLOCKS + block),
    sorted by segment; ``offsets[s]`` is where segment s starts (length n_rows * N_BLOCKS + 1)."""

    ids: np.ndarray
    segments: np.ndarray
    offsets: np.ndarray
    n_rows: int


def model_text(normalised: str) -> str:
    """Reduce a normalised message to what the n-gram model should see.

    Links, @handles and digits carry no meaning as spelled (a handle is a random string), so they
    become fixed tokens; punctuation is split off so "idiot!" and "idiot" share word features.
    """
    text = normalised
    if "http" in text or "www." in text:
        text = _URL_SCHEME.sub(" httpurl ", text)
    if _TOP_LEVEL_DOMAIN.search(text):
        text = _URL_DOMAIN.sub(" httpurl ", text)
    if "@" in text:
        text = _MENTION.sub(" @user ", text)
    text = _DIGIT.sub("0", text).translate(_ASCII_PUNCT)
    if not text.isascii():
        text = _NON_ASCII_PUNCT.sub(r" \1 ", text)
    return " ".join(text.split())[:MAX_CHARS]


def hash_batch(texts: Sequence[str]) -> HashedBatch:
    """Hash the n-grams of already prepared texts (see ``model_text``)."""
    encoded = [f" {text} ".encode() for text in texts]
    lengths = np.fromiter((len(item) for item in encoded), dtype=np.int64, count=len(encoded))
    codes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    row_of = np.repeat(np.arange(len(encoded), dtype=np.int64), lengths)
    prefix, inverse_powers = _prefix_hashes(codes)
    ids, segments = [], []
    for n in CHAR_NGRAMS:
        starts = np.arange(max(len(codes) - n + 1, 0), dtype=np.int64)
        starts = starts[row_of[starts] == row_of[starts + n - 1]]
        hashes = (prefix[starts + n] - prefix[starts]) * inverse_powers[starts]
        ids.append(_bucket(hashes, n))
        segments.append(row_of[starts] * N_BLOCKS + CHAR_BLOCK)
    word_starts, word_ends = _word_spans(codes)
    for order in (1, 2):
        starts, ends = word_starts[: len(word_starts) - order + 1], word_ends[order - 1 :]
        keep = row_of[starts] == row_of[ends - 1]
        starts, ends = starts[keep], ends[keep]
        hashes = (prefix[ends] - prefix[starts]) * inverse_powers[starts]
        ids.append(_bucket(hashes, _SALT_WORD + order))
        segments.append(row_of[starts] * N_BLOCKS + WORD_BLOCK)
    all_segments = np.concatenate(segments)
    order = np.argsort(all_segments, kind="stable")
    all_segments = all_segments[order]
    n_segments = len(encoded) * N_BLOCKS
    offsets = np.searchsorted(all_segments, np.arange(n_segments + 1, dtype=np.int64)).astype(np.int64)
    return HashedBatch(np.concatenate(ids)[order], all_segments, offsets, len(encoded))


def _prefix_hashes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """prefix[j] = sum(c[k] * B**k for k < j) and B**-i, all modulo 2**64 (uint64 wraps).

    The hash of codes[i:j] is then (prefix[j] - prefix[i]) * B**-i, independent of i.
    """
    length = len(codes)
    powers = np.ones(length, dtype=np.uint64)
    inverse_powers = np.ones(length, dtype=np.uint64)
    if length > 1:
        powers[1:] = np.cumprod(np.full(length - 1, _BASE, dtype=np.uint64))
        inverse_powers[1:] = np.cumprod(np.full(length - 1, _BASE_INVERSE, dtype=np.uint64))
    prefix = np.zeros(length + 1, dtype=np.uint64)
    np.cumsum((codes.astype(np.uint64) + np.uint64(1)) * powers, out=prefix[1:])
    return prefix, np.append(inverse_powers, np.uint64(1))


def _word_spans(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every word: the non-empty stretches between consecutive spaces."""
    spaces = np.flatnonzero(codes == ord(" "))
    starts, ends = spaces[:-1] + 1, spaces[1:]
    keep = ends > starts
    return starts[keep], ends[keep]


def _bucket(hashes: np.ndarray, salt: int) -> np.ndarray:
    """Mix a polynomial hash with a salt (n-gram kind) and keep the top BUCKET_BITS bits."""
    mixed = hashes ^ np.uint64((salt * _GOLDEN) & _MASK64)
    mixed ^= mixed >> np.uint64(33)
    mixed *= _MIX1
    mixed ^= mixed >> np.uint64(33)
    mixed *= _MIX2
    mixed ^= mixed >> np.uint64(33)
    return (mixed >> np.uint64(64 - BUCKET_BITS)).astype(np.int64)
