"""The screening runtime: normalise, model in onnxruntime, calibration, rules.

The screening worker calls ``get_screener().screen(texts, contexts)`` on batches of messages.
Only numpy, onnxruntime and tokenizers are needed here (no scikit-learn); the model files live
under ml/models/<name>/ (model.onnx + meta.json). Two kinds of model folder exist:

- a fine-tuned transformer (``python -m ml.training.train_finetune``, meta.json ``"architecture":
  "transformer"``, tokenizer.json beside model.onnx), the default ``minilm-v5``: one graph gives
  both the probabilities and the unit-length embedding of the normalised text, in one forward
  pass. ``Screening.embedding`` is that vector, so the context stage reuses it instead of
  encoding the message again;
- an n-gram model (``python -m ml.training.train_ngram``, ``ngram-v1``): hashed n-grams -> probabilities,
  ten times faster and without embeddings, for a deployment that needs raw throughput.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from ml import features, rules
from ml.normalise import normalise

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "minilm-v5"
# Where embeddings come from when the screening model makes none (ngram-v1): the default model.
EMBEDDING_MODEL = DEFAULT_MODEL
DEFAULT_THREADS = 1
MAX_SCREEN_CHARS = 8000  # the ingest edge's MAX_MESSAGE_CHARS; longer input is cut, not refused
# A message the model calls risky is flagged model_uncertain, and a person decides what happens to
# it, when its confidence is under UNCERTAIN_BELOW or its risk under AUTO_MIN_RISK. Chosen on the
# calibration split by ``python -m ml.training.abstention`` (minilm-v5, real sources): of what was
# left to automatic sanctions, the non-abusive share fell from 0.57 to 0.45, with half of the
# flagged messages sent to review. The held-out figures were not read to choose.
UNCERTAIN_BELOW = 0.55
AUTO_MIN_RISK = 0.8
# The transformer's second opinion: the n-gram model reads the same message (about 0.1 ms), and
# when the two disagree the confidence drops. ``None`` where the folder is missing.
COMPANION_MODEL = "ngram-v1"
# The cascade: a message the companion (ngram-v1, read anyway) scores under CASCADE_BELOW
# (calibrated risk), and on which no rule sets a floor, is decided by the companion and the rules
# alone and flagged ``cascade_cleared``; the transformer reads the rest. Chosen on the calibration
# split by ``python -m ml.training.cascade`` (the largest setting that costs at most 0.005 of
# recall there, false-positive rate no higher); $SCREENING_CASCADE_BELOW overrides it, 0 turns the
# cascade off. An n-gram gate distilled from the transformer was tried and cleared no more for the
# recall it cost (see ml/training/cascade.py).
CASCADE_BELOW = 0.15
# Shedding: while screening is behind (app.config SCREENING_SHED_AFTER_MS), the screening worker asks
# for the cascade at a higher setting (SCREENING_SHED_BELOW), so the transformer reads only what the
# companion finds suspect; a message cleared only because of it is also flagged ``shed_under_load``.
# How far the familiarity of a message (see ``familiarity``) takes its confidence down. Set on the
# calibration split (python -m ml.training.abstention), never on the held-out figures.
DISAGREE_FROM, DISAGREE_SLOPE, DISAGREE_FLOOR = 0.25, 2.5, 0.1
UNFAMILIAR_WEIGHT, UNFAMILIAR_FLAG = 0.6, 0.34
# Flags about how well the model read a message, not about what the message says: never severity.
TRUST_FLAGS = frozenset({"model_uncertain", "unfamiliar_wording", "short_message", "models_disagree",
                         "borderline_risk", "cascade_cleared", "shed_under_load"})
SHORT_WORDS = {1: 0.8, 2: 0.8, 3: 0.9}
# Messages per run of the transformer. One at a time: measured on 1,500 held-out messages on one
# thread, batches of 1 -> 330-360 msg/s, 4 -> 335, 16 -> 223 (padding costs more than batching
# saves), and the int8 graph quantises its activations per run, so a message scored alone gets
# exactly the score it gets in any batch.
TRANSFORMER_BATCH = 1

_MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class Screening:
    risk_score: float  # 0-1, calibrated probability that a moderator is needed
    risk_category: str  # one of the 8 categories
    confidence: float  # 0-1, how sure the model is about the category/score
    flags: list[str]  # rule hits and model explanations, e.g. ["targeting_behavior"]
    model_version: str  # e.g. "ngram-v1+rules-1"
    embedding: list[float] | None = None  # the sentence embedding; None for the n-gram model
    embedding_model: str | None = None  # the vector space of ``embedding`` (see Screener.embedding_model)


class Screener:
    """One loaded model plus the rules; safe to share between threads (onnxruntime sessions are)."""

    model_version: str

    def __init__(self, session: ort.InferenceSession, meta: dict[str, Any],
                 tokenizer: Tokenizer | None = None) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.meta = meta
        self.model_version = str(meta["model_version"])
        self.categories: tuple[str, ...] = tuple(meta["categories"])
        benign = set(meta["benign_categories"])
        self._benign = np.array([name in benign for name in self.categories])
        self._slope = float(meta["calibration"]["slope"])
        self._intercept = float(meta["calibration"]["intercept"])
        self.companion: Screener | None = None  # a second opinion, set by ``load`` for a transformer
        self.cascade_below = cascade_below()  # with a companion: what it clears without the transformer
        self._unfamiliar: np.ndarray | None = None  # per message of the last forward pass

    @classmethod
    def load(cls, name: str | None = None, models_dir: Path = MODELS_DIR) -> Screener:
        """Load ml/models/<name>/; ``name`` defaults to $SCREENING_MODEL, then DEFAULT_MODEL."""
        name = name or os.environ.get("SCREENING_MODEL") or DEFAULT_MODEL
        available = available_models(models_dir)
        if name not in available or not _MODEL_NAME.match(name):
            raise ValueError(f"unknown screening model {name!r}; available: {', '.join(available) or 'none'}")
        folder = models_dir / name
        meta = json.loads((folder / "meta.json").read_text())
        session = _open_session(folder / "model.onnx")
        if meta.get("architecture") == "transformer":
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tokenizer.enable_truncation(int(meta["transformer"]["max_length"]))
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            screener = cls(session, meta, tokenizer)
            if COMPANION_MODEL in available and COMPANION_MODEL != name:
                screener.companion = Screener.load(COMPANION_MODEL, models_dir)
            return screener
        _check_features(meta, name)
        return cls(session, meta)

    def screen(self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None, *,
               shed_below: float = 0.0) -> list[Screening]:
        """Screen a batch; one result per text, in order. ``contexts[i]`` are the messages
        before ``texts[i]``, oldest first. ``shed_below`` raises the cascade for this call only
        (screening is behind): what the companion scores under it skips the transformer."""
        return self.screen_with_model_risk(texts, contexts, shed_below=shed_below)[0]

    def screen_with_model_risk(
        self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None, *, shed_below: float = 0.0
    ) -> tuple[list[Screening], np.ndarray]:
        """``screen``, plus the calibrated risk of the model alone (before rules), from the same
        forward pass: evaluation compares the two without encoding every message twice."""
        if contexts is not None and len(contexts) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(contexts)} contexts")
        if not texts:
            return [], np.zeros(0)
        clipped = [_as_text(text, index)[:MAX_SCREEN_CHARS] for index, text in enumerate(texts)]
        normalised = [normalise(text) for text in clipped]
        checks = [rules.check(text, contexts[index] if contexts else (), normalised[index])
                  for index, text in enumerate(clipped)]
        second = second_probabilities = None
        if self.companion is not None:
            second_probabilities = self.companion.forward(normalised)[0]
            second = self.companion.calibrate(second_probabilities)
        cleared = shed = np.zeros(len(texts), dtype=bool)
        below = max(self.cascade_below, shed_below)
        if second is not None and below > 0:
            # The cascade: what the companion calls clearly fine (and no rule raises) skips the transformer.
            cleared = (second < below) & np.array([check.floor is None for check in checks])
            shed = cleared & (second >= self.cascade_below)  # the transformer would have read these
        # Each message's verdict and trust come from the transformer, or from the companion where cleared.
        verdicts: list[_ModelVerdict] = [None] * len(texts)  # type: ignore[list-item]
        trust: list[Trust] = [None] * len(texts)  # type: ignore[list-item]
        vectors: dict[int, list[float]] = {}
        read = np.flatnonzero(~cleared)
        if len(read):
            before = [self._context(contexts[index], index) if contexts else None for index in read]
            probabilities, embeddings = self.forward([normalised[index] for index in read], before)
            part = self._model_verdicts(probabilities)
            part_trust = familiarity([normalised[index] for index in read], self._unfamiliar,
                                     np.array([verdict.risk for verdict in part]),
                                     second[read] if second is not None else None)
            for place, index in enumerate(read):
                verdicts[index], trust[index] = part[place], part_trust[place]
                if embeddings is not None:
                    vectors[index] = embeddings[place].tolist()
        done = np.flatnonzero(cleared)
        if len(done):
            assert self.companion is not None and second_probabilities is not None
            part = self.companion._model_verdicts(second_probabilities[done])
            part_trust = familiarity([normalised[index] for index in done], None,
                                     np.array([verdict.risk for verdict in part]), None)
            for place, index in enumerate(done):
                verdicts[index], trust[index] = part[place], part_trust[place]
        results = []
        for index, (verdict, check) in enumerate(zip(verdicts, checks, strict=True)):
            result = self._decide(verdict, check, trust[index])
            if cleared[index]:
                shed_flag = ("shed_under_load",) if shed[index] else ()
                result = replace(result, flags=[*result.flags, "cascade_cleared", *shed_flag])
            elif index in vectors:
                result = replace(result, embedding=vectors[index], embedding_model=self.embedding_model)
            results.append(result)
        return results, np.array([verdict.risk for verdict in verdicts])

    def predict_proba(self, normalised: Sequence[str]) -> np.ndarray:
        """Model probabilities [batch, categories] for already normalised texts."""
        return self.forward(normalised)[0]

    @property
    def embedding_model(self) -> str | None:
        """The name of the vector space ``Screening.embedding`` lives in; None without embeddings."""
        return str(self.meta["transformer"]["embedding_version"]) if self._tokenizer is not None else None

    @property
    def embedding_dim(self) -> int | None:
        return int(self.meta["transformer"]["dim"]) if self._tokenizer is not None else None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of raw texts (normalised here, as screening does)."""
        embeddings = self.forward([normalise(_as_text(text, i)[:MAX_SCREEN_CHARS]) for i, text in enumerate(texts)])[1]
        if embeddings is None:
            raise ValueError(f"model {self.model_version} has no embeddings")
        return embeddings

    @property
    def reads_context(self) -> bool:
        """Whether the model reads the turn before a message (a second segment after [SEP])."""
        return self._tokenizer is not None and "context" in self.meta["transformer"]

    def _context(self, turns: Sequence[str], index: int) -> str | None:
        if not self.reads_context or not turns:
            return None
        last = turns[-1]
        if not isinstance(last, str):
            raise TypeError(f"contexts[{index}][-1] is {type(last).__name__}, expected str")
        return normalise(last[:MAX_SCREEN_CHARS]) or None

    def forward(self, normalised: Sequence[str], before: Sequence[str | None] | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities [batch, categories] and, for a transformer, embeddings [batch, dim].
        ``before[i]`` is the normalised turn before ``normalised[i]``, read by a model that reads
        context (``reads_context``) and ignored by one that does not."""
        if self._tokenizer is None:
            batch = features.hash_batch([features.model_text(text) for text in normalised])
            return self._session.run(None, {"ids": batch.ids, "offsets": batch.offsets})[0], None
        inputs: list[str | tuple[str, str]] = list(normalised)
        if before is not None and self.reads_context:
            inputs = [(text, turn) if turn else text for text, turn in zip(normalised, before, strict=True)]
        return self._transformer(self._tokenizer, inputs)

    def _transformer(self, tokenizer: Tokenizer, inputs: Sequence[str | tuple[str, str]]
                     ) -> tuple[np.ndarray, np.ndarray]:
        probabilities = np.empty((len(inputs), len(self.categories)), dtype=np.float32)
        embeddings = np.empty((len(inputs), int(self.meta["transformer"]["dim"])), dtype=np.float32)
        unfamiliar = np.zeros(len(inputs), dtype=np.float32)
        order = sorted(range(len(inputs)), key=lambda i: input_length(inputs[i]))
        for start in range(0, len(order), TRANSFORMER_BATCH):
            chunk = order[start:start + TRANSFORMER_BATCH]
            encodings = tokenizer.encode_batch([inputs[i] for i in chunk])
            feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                     "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}
            probabilities[chunk], embeddings[chunk] = self._session.run(None, feeds)
            unfamiliar[chunk] = [unfamiliar_share(e.word_ids, e.sequence_ids, e.ids) for e in encodings]
        self._unfamiliar = unfamiliar
        return probabilities, embeddings

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probability that a moderator is needed (any non-benign category)."""
        score = np.clip(1.0 - probabilities[:, self._benign].sum(axis=1), 1e-6, 1 - 1e-6)
        return 1.0 / (1.0 + np.exp(-(self._slope * np.log(score / (1 - score)) + self._intercept)))

    def _model_verdicts(self, probabilities: np.ndarray) -> list[_ModelVerdict]:
        """Risk, category and confidence of the model alone, for a whole batch at once.

        The category is the likeliest one on the side of 0.5 the risk falls on; the confidence is
        the geometric mean of how far the risk is from a coin flip and how dominant that category
        is among the categories on its side (benign, or needing a moderator).
        """
        risks = self.calibrate(probabilities)
        attention = np.argmax(np.where(self._benign, -1.0, probabilities), axis=1)
        benign = np.argmax(np.where(self._benign, probabilities, -1.0), axis=1)
        flagged = risks >= 0.5
        chosen = np.where(flagged, attention, benign)
        benign_total = probabilities[:, self._benign].sum(axis=1)
        side_total = np.where(flagged, 1.0 - benign_total, benign_total)
        share = probabilities[np.arange(len(chosen)), chosen] / np.maximum(side_total, 1e-9)
        confidence = np.sqrt(np.abs(2.0 * risks - 1.0) * share)
        names = self.categories
        return [_ModelVerdict(float(risk), names[int(top)], names[int(safe)], float(conf))
                for risk, top, safe, conf in zip(risks, attention, benign, confidence, strict=True)]

    def _decide(self, model: _ModelVerdict, rule: rules.RuleResult, trust: Trust | None = None) -> Screening:
        """Combine the model's verdict with the rules' floor, ceiling and flags, and with how well
        the model could read the message (``trust``): a rule's floor is evidence of its own, so
        it restores confidence; the model's own verdict on a message it cannot read does not."""
        risk, confidence = model.risk, model.confidence
        category = model.attention if risk >= 0.5 else model.benign
        flags = list(rule.flags)
        if trust is not None:
            confidence *= trust.factor
            flags.extend(trust.flags)
        if rule.floor is not None and rule.floor_category is not None:
            # The rule names the category unless the model is at least as sure of a worse one.
            worse = _more_severe(model.attention, rule.floor_category) == model.attention
            model_overrides = risk >= rule.floor and worse
            category = model.attention if model_overrides else rule.floor_category
            risk, confidence = max(risk, rule.floor), max(confidence, rule.floor)
        elif rule.ceiling is not None and risk > rule.ceiling:
            risk = rule.ceiling
            if risk < 0.5:
                category, confidence = model.benign, max(confidence, 1.0 - rule.ceiling)
        if risk >= 0.5 and (confidence < UNCERTAIN_BELOW or risk < AUTO_MIN_RISK):
            if risk < AUTO_MIN_RISK:
                flags.append("borderline_risk")
            flags.append("model_uncertain")
        return Screening(round(risk, 4), category, round(confidence, 4), flags, self.model_version)


@dataclass(frozen=True)
class Trust:
    factor: float  # 0-1, multiplies the model's confidence
    flags: tuple[str, ...]  # why: unfamiliar_wording, short_message, models_disagree


def familiarity(normalised: Sequence[str], unfamiliar: np.ndarray | None, risk: np.ndarray,
                second: np.ndarray | None) -> list[Trust]:
    """How far to trust the model's verdict on each message, from what is cheap to see:

    - the share of its words the tokenizer had to cut into pieces or could not read at all
      (misspellings, abbreviations, game slang the model has not learnt: "nise", "afk");
    - very short messages (one to three words), which carry too little to judge alone;
    - the n-gram model's calibrated risk, when it is far from the transformer's.
    """
    out = []
    for index, text in enumerate(normalised):
        factor, why = 1.0, []
        share = float(unfamiliar[index]) if unfamiliar is not None and len(unfamiliar) > index else 0.0
        if share > 0:
            factor *= 1.0 - UNFAMILIAR_WEIGHT * share
            if share >= UNFAMILIAR_FLAG:
                why.append("unfamiliar_wording")
        words = len(text.split())
        if words in SHORT_WORDS:
            factor *= SHORT_WORDS[words]
            why.append("short_message")
        if second is not None:
            gap = abs(float(risk[index]) - float(second[index]))
            if gap > DISAGREE_FROM:
                factor *= max(DISAGREE_FLOOR, 1.0 - DISAGREE_SLOPE * (gap - DISAGREE_FROM))
                why.append("models_disagree")
        out.append(Trust(factor, tuple(why)))
    return out


def unfamiliar_share(word_ids: Sequence[int | None], sequence_ids: Sequence[int | None], ids: Sequence[int]) -> float:
    """Share of the first segment's words that the WordPiece vocabulary splits into several
    pieces or maps to [UNK] (id 100). Punctuation counts as a word of its own, as BERT splits it."""
    pieces: dict[int, int] = {}
    unknown: set[int] = set()
    for word, sequence, token in zip(word_ids, sequence_ids, ids, strict=True):
        if word is None or sequence != 0:
            continue
        pieces[word] = pieces.get(word, 0) + 1
        if token == UNK_ID:
            unknown.add(word)
    if not pieces:
        return 0.0
    return sum(1 for word, count in pieces.items() if count > 1 or word in unknown) / len(pieces)


UNK_ID = 100


@dataclass(frozen=True)
class _ModelVerdict:
    risk: float  # calibrated
    attention: str  # likeliest category that needs a moderator
    benign: str  # likeliest of none / profanity
    confidence: float


def cascade_below() -> float:
    """The cascade's setting: $SCREENING_CASCADE_BELOW when set (0 turns it off), else CASCADE_BELOW."""
    value = os.environ.get("SCREENING_CASCADE_BELOW", "").strip()
    if not value:
        return CASCADE_BELOW
    try:
        below = float(value)
    except ValueError:
        raise ValueError(f"SCREENING_CASCADE_BELOW={value!r} is not a number; use 0 to turn the cascade off, "
                         "or a calibrated risk such as 0.05") from None
    if not 0.0 <= below < 0.5:
        raise ValueError(f"SCREENING_CASCADE_BELOW={below} is outside [0, 0.5): the n-gram model would clear "
                         "messages it calls risky")
    return below


def available_models(models_dir: Path = MODELS_DIR) -> list[str]:
    """Names of the screening models under ``models_dir``: folders holding model.onnx and a
    meta.json of kind "screening"."""
    if not models_dir.is_dir():
        return []
    return sorted(path.name for path in models_dir.iterdir()
                  if (path / "model.onnx").is_file() and _kind(path / "meta.json") == "screening")


def _kind(meta_path: Path) -> str | None:
    try:
        kind = json.loads(meta_path.read_text()).get("kind")
    except (OSError, ValueError):
        return None
    return kind if isinstance(kind, str) else None


_cache: dict[str, Screener] = {}
_cache_lock = threading.Lock()


def get_screener(name: str | None = None) -> Screener:
    """The process-wide screener for ``name``: loaded on first use, then kept warm."""
    name = name or os.environ.get("SCREENING_MODEL") or DEFAULT_MODEL
    with _cache_lock:
        if name not in _cache:
            _cache[name] = Screener.load(name)
        return _cache[name]


def get_embedder() -> Screener:
    """The model whose embeddings retrieval uses: the screening model when it makes them, else
    EMBEDDING_MODEL, so screening's cached vectors and the context stage's share one space."""
    screener = get_screener()
    return screener if screener.embedding_model is not None else get_screener(EMBEDDING_MODEL)


def _open_session(path: Path) -> ort.InferenceSession:
    """One intra-op thread by default: screening runs many small batches on a shared box, and
    more threads only add contention there. SCREENING_THREADS overrides it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _threads() -> int:
    return int(os.environ.get("SCREENING_THREADS", DEFAULT_THREADS))


def _check_features(meta: dict[str, Any], name: str) -> None:
    """Refuse a model hashed with other feature settings: it would load fine and score nonsense."""
    expected = {"bucket_bits": features.BUCKET_BITS, "char_ngrams": list(features.CHAR_NGRAMS),
                "max_chars": features.MAX_CHARS}
    actual = {key: meta.get("features", {}).get(key) for key in expected}
    if actual != expected:
        raise ValueError(f"model {name!r} was trained with features {actual}, this code hashes {expected}")


def _as_text(text: object, index: int) -> str:
    if not isinstance(text, str):
        raise TypeError(f"texts[{index}] is {type(text).__name__}, expected str")
    return text


def input_length(item: str | tuple[str, str]) -> int:
    """Characters in a model input (a text, or a text and the turn before it): batches sort by it."""
    return len(item) if isinstance(item, str) else len(item[0]) + len(item[1])


def _more_severe(first: str, second: str) -> str:
    return min(first, second, key=rules.SEVERITY.index)
