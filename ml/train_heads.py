"""Train minilm-v1: classification heads on frozen all-MiniLM-L6-v2 embeddings, stacked with ngram-v1.

    python -m ml.train_heads            # writes ml/models/minilm-v1/{model.onnx,meta.json}

Steps: load the same splits as ngram-v1 (``ml.train_ngram.load_splits``; Davidson's profanity
rows in train are subsampled, they are a third of all rows and teach little), normalise every
message the way the screener will, embed it with ``ml.encoder`` (one onnxruntime thread; the
embeddings are cached under /tmp, keyed by the texts, so a rerun skips this), fit a small MLP
head (one hidden ReLU layer) on the 384-d embeddings of train, then fit the stacker on the
calibration split: a multinomial logistic regression over [log p(head), log p(ngram-v1)].
ngram-v1 was trained on the same train split, so the calibration split is unseen by both.
Platt scaling of "needs a moderator" uses out-of-fold stacker predictions on that split. Head and
stacker become one small ONNX graph (inputs: the embedding and ngram-v1's probabilities), checked
against scikit-learn, and the held-out split is scored through the real runtime.
Needs requirements-train.txt and a committed ngram-v1; about 5-10 minutes on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from ml.datasets import CATEGORIES, Example
from ml.encoder import Encoder
from ml.evaluate import evaluate_rows, format_report
from ml.normalise import normalise
from ml.rules import RULES_VERSION
from ml.screening import MODELS_DIR, Screener
from ml.train_ngram import SOURCE_SHARE, _summary, fit_calibration, load_splits, sample_weights

MODEL_NAME = "minilm-v1"
STACKED_ON = "ngram-v1"
ENCODER = "minilm-encoder"
CACHE_DIR = Path(os.environ.get("MINILM_CACHE_DIR", "/tmp/minilm-embeddings"))
DAVIDSON_PROFANITY_KEEP = 5000  # of ~13,500 in train
# Chosen on the calibration split (pooled ROC AUC of the real sources, stacked, out of fold):
# MLP 256 alpha 0.1: 0.821; logistic regression C 0.5-8: 0.816; ngram-v1 alone: 0.802.
HIDDEN = 256
HEAD_ALPHA = 0.1
STACK_C = 1.0
OPSET = 18
LOG_FLOOR = 1e-6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=MODEL_NAME)
    parser.add_argument("--alpha", type=float, default=HEAD_ALPHA, help="L2 penalty of the MLP head")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    splits = load_splits()
    splits["train"] = subsample_davidson(splits["train"])
    encoder = Encoder.load(MODELS_DIR / ENCODER, threads=1)
    ngram = Screener.load(STACKED_ON, models_dir=MODELS_DIR)
    inputs = {name: model_inputs(encoder, ngram, rows, name) for name, rows in splits.items()
              if name != "heldout"}
    head = fit_head(inputs["train"][0], _label_ids(splits["train"]), sample_weights(splits["train"]), args.alpha)
    stacker, calibration = fit_stacker(head, inputs["calibration"], splits["calibration"])
    out_dir = MODELS_DIR / args.name
    meta = write_model(out_dir, args.name, head, stacker, calibration, splits, args.alpha)
    check_onnx_parity(out_dir / "model.onnx", head, stacker, *inputs["calibration"])
    _progress(f"scoring {len(splits['heldout'])} held-out messages through ml.screening")
    heldout_texts = [normalise(row.text) for row in splits["heldout"]]
    known = dict(zip(heldout_texts, embed_cached(encoder, heldout_texts, "heldout"), strict=True))
    lookup = _LookupEncoder(encoder.session, encoder.tokenizer, encoder.meta, known)
    report = evaluate_rows(Screener.load(args.name, models_dir=MODELS_DIR, encoder=lookup), splits["heldout"])
    meta["heldout"] = report
    meta["training"]["seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(format_report(report))
    _progress(f"done in {time.perf_counter() - started:.0f} s -> {out_dir}")


def subsample_davidson(rows: list[Example]) -> list[Example]:
    """Keep DAVIDSON_PROFANITY_KEEP of Davidson's profanity rows (a fixed random choice)."""
    profane = [index for index, row in enumerate(rows) if row.source == "davidson" and row.label == "profanity"]
    drop = set(random.Random(0).sample(profane, max(0, len(profane) - DAVIDSON_PROFANITY_KEEP)))
    kept = [row for index, row in enumerate(rows) if index not in drop]
    _progress(f"train: {len(kept)} messages after keeping {DAVIDSON_PROFANITY_KEEP} Davidson profanity rows")
    return kept


def model_inputs(encoder: Encoder, ngram: Screener, rows: list[Example], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, ngram-v1 probabilities) of the normalised texts, as the runtime computes them."""
    texts = [normalise(row.text) for row in rows]
    probabilities = np.concatenate([ngram.predict_proba(texts[start:start + 512])
                                    for start in range(0, len(texts), 512)])
    return embed_cached(encoder, texts, name), probabilities


def embed_cached(encoder: Encoder, texts: list[str], name: str) -> np.ndarray:
    """Embeddings of ``texts``, from /tmp when the same encoder has embedded the same texts before."""
    key = hashlib.sha1("\n".join([encoder.version, *texts]).encode()).hexdigest()[:16]
    path = CACHE_DIR / f"{name}-{key}.npy"
    if path.exists():
        _progress(f"{name}: {len(texts)} embeddings from {path}")
        return np.load(path)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    started, chunk, parts = time.perf_counter(), 2048, []
    for start in range(0, len(texts), chunk):
        parts.append(encoder.encode(texts[start:start + chunk]))
        done = min(start + chunk, len(texts))
        rate = done / (time.perf_counter() - started)
        _progress(f"{name}: embedded {done}/{len(texts)} ({rate:.0f}/s, {(len(texts) - done) / rate:.0f} s left)")
    embeddings = np.concatenate(parts)
    np.save(path, embeddings)
    return embeddings


def fit_head(x: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float) -> MLPClassifier:
    _progress(f"fitting the head: MLP {x.shape[1]}-{HIDDEN}-{len(CATEGORIES)} on {x.shape[0]} messages, alpha={alpha}")
    started = time.perf_counter()
    head = MLPClassifier(hidden_layer_sizes=(HIDDEN,), alpha=alpha, batch_size=256, max_iter=60,
                         early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        head.fit(x, y, sample_weight=weights)
    _progress(f"fitted in {time.perf_counter() - started:.0f} s ({head.n_iter_} epochs)")
    return head


def stack_features(head: MLPClassifier, embeddings: np.ndarray, ngram_probabilities: np.ndarray) -> np.ndarray:
    """The stacker's input, exactly as the ONNX graph builds it: [log p(head), log p(ngram)]."""
    head_log = np.log(np.maximum(head.predict_proba(embeddings), LOG_FLOOR))
    return np.concatenate([head_log, np.log(np.maximum(ngram_probabilities, LOG_FLOOR))], axis=1)


def fit_stacker(head: MLPClassifier, inputs: tuple[np.ndarray, np.ndarray],
                rows: list[Example]) -> tuple[LogisticRegression, dict[str, Any]]:
    """Stacker on the calibration split; Platt scaling on its out-of-fold (2-fold by group) output."""
    x, y = stack_features(head, *inputs), _label_ids(rows)
    weights = sample_weights(rows)
    fold = np.array([hash_fold(row.group) for row in rows])
    out_of_fold = np.empty((len(rows), len(CATEGORIES)))
    for k in (0, 1):
        part = _fit_stack_lr(x[fold != k], y[fold != k], weights[fold != k])
        out_of_fold[fold == k] = _full_proba(part, x[fold == k])
    calibration = fit_calibration(_Fixed(out_of_fold), np.arange(len(rows)), rows)
    calibration["fitted_on"] += "; out-of-fold (2 folds by group) predictions of the stacker"
    stacker = _fit_stack_lr(x, y, weights)
    _progress(f"stacker fitted on {len(rows)} calibration messages")
    return stacker, calibration


def hash_fold(group: str) -> int:
    return hashlib.sha1(group.encode()).digest()[0] % 2


def _fit_stack_lr(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=STACK_C, max_iter=2000).fit(x, y, sample_weight=weights)


def _full_proba(model: LogisticRegression, x: np.ndarray) -> np.ndarray:
    """Probabilities over all CATEGORIES even when a fold lacked some class."""
    out = np.zeros((len(x), len(CATEGORIES)))
    out[:, model.classes_] = model.predict_proba(x)
    return out


@dataclass(frozen=True)
class _LookupEncoder(Encoder):
    """The encoder, answering from embeddings computed (and cached) earlier where it can: the
    held-out split is scored through the real runtime without embedding it a second time."""

    known: dict[str, np.ndarray] = field(default_factory=dict)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        if all(text in self.known for text in texts):
            return np.array([self.known[text] for text in texts], dtype=np.float32).reshape(len(texts), self.dim)
        return super().encode(texts, batch_size=batch_size)


class _Fixed:
    """Stands in for a classifier whose predictions are already known (fit_calibration's input)."""

    def __init__(self, probabilities: np.ndarray) -> None:
        self._probabilities = probabilities

    def predict_proba(self, index: np.ndarray) -> np.ndarray:
        return self._probabilities[index]


def build_graph(head: MLPClassifier, stacker: LogisticRegression, dim: int) -> onnx.ModelProto:
    """embedding [B, dim], ngram_probabilities [B, 8] -> probabilities [B, 8]."""
    node = helper.make_node
    stack_w = np.zeros((2 * len(CATEGORIES), len(CATEGORIES)), dtype=np.float32)
    stack_b = np.full(len(CATEGORIES), -30.0, dtype=np.float32)  # a class the stacker never saw
    stack_w[:, stacker.classes_] = stacker.coef_.T
    stack_b[stacker.classes_] = stacker.intercept_
    constants = {"hidden_w": head.coefs_[0].astype(np.float32), "hidden_b": head.intercepts_[0].astype(np.float32),
                 "head_w": head.coefs_[1].astype(np.float32), "head_b": head.intercepts_[1].astype(np.float32),
                 "stack_w": stack_w, "stack_b": stack_b, "floor": np.array(LOG_FLOOR, dtype=np.float32)}
    nodes = [
        node("Gemm", ["embedding", "hidden_w", "hidden_b"], ["hidden_in"]),
        node("Relu", ["hidden_in"], ["hidden"]),
        node("Gemm", ["hidden", "head_w", "head_b"], ["head_logits"]),
        node("Softmax", ["head_logits"], ["head_p"], axis=1),
        node("Max", ["head_p", "floor"], ["head_p_safe"]),
        node("Log", ["head_p_safe"], ["head_log"]),
        node("Max", ["ngram_probabilities", "floor"], ["ngram_safe"]),
        node("Log", ["ngram_safe"], ["ngram_log"]),
        node("Concat", ["head_log", "ngram_log"], ["stack_in"], axis=1),
        node("Gemm", ["stack_in", "stack_w", "stack_b"], ["logits"]),
        node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    n = len(CATEGORIES)
    graph = helper.make_graph(
        nodes, "minilm_heads",
        inputs=[helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["B", dim]),
                helper.make_tensor_value_info("ngram_probabilities", TensorProto.FLOAT, ["B", n])],
        outputs=[helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["B", n])],
        initializer=[numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ml.train_heads")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_model(out_dir: Path, name: str, head: MLPClassifier, stacker: LogisticRegression,
                calibration: dict[str, Any], splits: dict[str, list[Example]], c: float) -> dict[str, Any]:
    if [CATEGORIES[index] for index in head.classes_] != list(CATEGORIES):
        raise RuntimeError(f"training data lacks some categories: {head.classes_}")
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_meta = json.loads((MODELS_DIR / ENCODER / "meta.json").read_text())
    onnx.save(build_graph(head, stacker, int(encoder_meta["dim"])), out_dir / "model.onnx")
    meta = {
        "kind": "screening",
        "version": name,
        "model_version": f"{name}+{RULES_VERSION}",
        "categories": list(CATEGORIES),
        "benign_categories": ["none", "profanity"],
        "calibration": calibration,
        "encoder": {"name": ENCODER, "version": encoder_meta["version"], "dim": encoder_meta["dim"],
                    "text": "ml.normalise.normalise(text)"},
        "stacked_on": STACKED_ON,
        "training": {
            "head": f"MLPClassifier({HIDDEN} ReLU, alpha={c}, early stopping) on frozen embeddings, train split",
            "stacker": f"LogisticRegression(multinomial, C={STACK_C}) on [log p(head), log p({STACKED_ON})], "
                       "calibration split",
            "source_share": SOURCE_SHARE, "davidson_profanity_kept": DAVIDSON_PROFANITY_KEEP,
            "rows": _summary(splits)},
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    _progress(f"wrote {out_dir / 'model.onnx'} ({(out_dir / 'model.onnx').stat().st_size / 1e3:.0f} kB)")
    return meta


def check_onnx_parity(path: Path, head: MLPClassifier, stacker: LogisticRegression,
                      embeddings: np.ndarray, ngram_probabilities: np.ndarray) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"embedding": embeddings[:500],
                             "ngram_probabilities": ngram_probabilities[:500].astype(np.float32)})[0]
    want = _full_proba(stacker, stack_features(head, embeddings[:500], ngram_probabilities[:500]))
    gap = float(np.abs(got - want).max())
    if gap > 1e-4:
        raise RuntimeError(f"ONNX and scikit-learn disagree by {gap}")
    _progress(f"onnx parity: max |difference| {gap:.2e} on 500 messages")


def _label_ids(rows: list[Example]) -> np.ndarray:
    return np.array([CATEGORIES.index(row.label) for row in rows])


def _progress(message: str) -> None:
    print(f"[train_heads] {message}", flush=True)


if __name__ == "__main__":
    main()
