"""Source-held-out evaluation: for each real source, train on every other source, test on that one.

    python -m ml.training.source_heldout                       # n-gram family, about a minute a fold
    python -m ml.training.source_heldout --family minilm --recipe v5 --recipe v4 --samples 12000
    python -m ml.training.source_heldout --family minilm --graph --source convabuse   # + the shipped form

The held-out split of ``make eval`` shares no conversation, thread or author with training, but it
comes from the same four sources and the same templates, so it flatters every model: minilm-v4
read .59 recall / .085 false positives there and .55 / .19 on public sets it never saw. Here a
fold's model never sees a single message of the source it is tested on, which is how a new
community's chat looks to the shipped model. Models and recipes are chosen on these figures.

Each fold trains with the family's own recipe on the train split of the other sources plus the
templates, calibrates on their calibration split, and is scored through the real runtime
(``ml.screening``: normalisation, the turn before, rules, calibration) on every row of the
held-out source. Beside the folds, the shipped models and the two baselines are scored on the
source's rows of the usual held-out split (the shipped models were trained on the other splits
of that source, so their columns are in-source figures, an upper bound), and the two baselines on
every row of it (hatesonar was trained on Davidson).

Reported per source and on average: precision, recall and false-positive rate at the threshold,
ROC AUC, and the share of non-abusive messages scored >= 0.9 (a confident false alarm, which an
automatic sanction would follow). Results are written to var/eval/source_heldout-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.screening import Screener
from ml.training.datasets import BENIGN, REAL_SOURCES, Example, split_of
from ml.training.metrics import binary_metrics

THRESHOLD = 0.7
CONFIDENT = 0.9
RESULTS = Path("var/eval")
MEAN_KEYS = ("precision", "recall", "fpr", "auc", "confident_fp", "auto_fp_share", "auto_recall", "to_review")
# Recipes of the fine-tuned family, as the module settings of ml.training.train_finetune they set, and
# how many of the base encoder's six layers they keep (``train_finetune --layers``, default six).
RECIPES: dict[str, dict[str, Any]] = {
    "v4": {"SHARE": {"davidson": 0.12, "toxichat": 0.14, "diasafety": 0.12, "convabuse": 0.14, "synthetic": 0.48,
                     "convabuse_agent": 0.03}, "LABEL_SMOOTHING": 0.05},
    "v5": {},  # train_finetune's defaults
    "v5-3layers": {"layers": 3},  # the v5 recipe on the first three layers: half the multiply-adds per token
    # ... taught by the fold's own six-layer v5 model (trained without the held-out source too)
    "v5-3layers-distilled": {"layers": 3, "teacher": "v5"},
}
LAYERS_KEY = "layers"
TEACHER_KEY = "teacher"  # a recipe whose fold model teaches this one (train_finetune.train(teacher=...))
_trained: dict[tuple[str, str, int, int], Any] = {}  # (source, recipe, samples, seed) -> torch model of this run


@dataclass(frozen=True)
class Fold:
    source: str
    train: list[Example]
    calibration: list[Example]
    test: list[Example]


def folds(splits: dict[str, list[Example]], everything: Sequence[Example],
          sources: Sequence[str] = REAL_SOURCES) -> list[Fold]:
    """One fold per real source: train and calibrate on ``splits`` without it, test on every row of
    it in ``everything`` (the same rows whatever family's splits are used)."""
    return [Fold(source, [row for row in splits["train"] if not _from(row, source)],
                 [row for row in splits["calibration"] if not _from(row, source)],
                 [row for row in everything if row.source == source])
            for source in sources]


def _from(row: Example, source: str) -> bool:
    # ConvAbuse's chatbot turns come from the ConvAbuse conversations: held out with them.
    return row.source == source or (source == "convabuse" and row.source == "convabuse_agent")


def metrics(rows: Sequence[Example], risk: np.ndarray, uncertain: np.ndarray | None = None,
            threshold: float = THRESHOLD) -> dict[str, Any]:
    """Binary metrics at ``threshold``; the share of non-abusive messages scored >= CONFIDENT; and,
    for a screener that abstains (``uncertain``: flagged model_uncertain, so a person decides),
    which flagged messages could be sanctioned automatically: ``auto_fp_share`` is the share of
    those that are not abusive, ``auto_recall`` the share of abusive messages among them."""
    truth = np.array([row.label not in BENIGN for row in rows])
    out: dict[str, Any] = binary_metrics(truth, risk, threshold).as_dict()
    benign = ~truth
    out["confident_fp"] = _mean(risk[benign] >= CONFIDENT)
    if uncertain is not None:
        auto = (risk >= threshold) & ~uncertain
        out["auto_fp_share"] = _mean(benign[auto])
        out["auto_recall"] = _mean(auto[truth])
        out["to_review"] = _mean(uncertain[risk >= threshold])
    return out


def _mean(values: np.ndarray) -> float:
    return round(float(np.mean(values)), 4) if len(values) else float("nan")


# --- families ---------------------------------------------------------------------------------------

def ngram_fold(fold: Fold) -> Screener:
    """ngram-v1's recipe on the fold's rows, written to a temporary folder and loaded by the runtime."""
    from ml.training import train_ngram

    splits = {"train": fold.train, "calibration": fold.calibration}
    matrices, idf = train_ngram.featurise(splits)
    labels = train_ngram._label_ids(fold.train)
    classifier = train_ngram.fit_classifier(matrices["train"], labels, train_ngram.sample_weights(fold.train),
                                            train_ngram.REGULARISATION_C)
    calibration = train_ngram.fit_calibration(classifier, matrices["calibration"], fold.calibration)
    folder = Path(tempfile.mkdtemp(prefix=f"loso-ngram-{fold.source}-"))
    name = f"ngram-without-{fold.source}"
    train_ngram.write_model(folder / name, name, idf, classifier, calibration,
                            {**splits, "heldout": []}, train_ngram.REGULARISATION_C)
    return Screener.load(name, models_dir=folder)


def minilm_fold(fold: Fold, recipe: str, samples: int, seed: int) -> Screener:
    """The fine-tuned family with a recipe of RECIPES, scored in torch through the runtime's rules."""
    import torch

    from ml.training import train_finetune as tf

    teacher = None
    if TEACHER_KEY in RECIPES[recipe]:
        teacher_recipe = RECIPES[recipe][TEACHER_KEY]
        if (fold.source, teacher_recipe, samples, seed) not in _trained:
            minilm_fold(fold, teacher_recipe, samples, seed)
        teacher = _trained[(fold.source, teacher_recipe, samples, seed)]
    settings = {key: value for key, value in RECIPES[recipe].items() if key not in (LAYERS_KEY, TEACHER_KEY)}
    saved = {key: getattr(tf, key) for key in settings}
    for key, value in settings.items():
        setattr(tf, key, value)
    try:
        torch.manual_seed(seed)
        model = tf.build_model(RECIPES[recipe].get(LAYERS_KEY, 6))
        tf.train(model, tf._tokenizer(tf.TRAIN_TOKENS), fold.train, 1, samples, seed=seed, teacher=teacher)
        _trained[(fold.source, recipe, samples, seed)] = model
        tokenizer = tf._tokenizer(tf.RUNTIME_TOKENS)
        probabilities, _ = tf.predict(model, tokenizer, [tf.model_input(row) for row in fold.calibration])
        calibration = tf.fit_calibration(probabilities, fold.calibration)
    finally:
        for key, value in saved.items():
            setattr(tf, key, value)
    return TorchScreener(model, tokenizer, calibration, f"minilm-{recipe}-without-{fold.source}")


class TorchScreener(Screener):
    """The runtime screener (rules, calibration, decisions) over a torch model still in memory."""

    def __init__(self, model: Any, tokenizer: Any, calibration: dict[str, Any], name: str) -> None:
        from ml.training.datasets import CATEGORIES

        meta = {"model_version": name, "categories": list(CATEGORIES), "benign_categories": sorted(BENIGN),
                "calibration": calibration,
                "transformer": {"dim": 384, "context": "the turn before", "embedding_version": name}}
        super().__init__(None, meta, tokenizer)  # type: ignore[arg-type]
        self._model = model

    def forward(self, normalised: Sequence[str], before: Sequence[str | None] | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
        from ml.training import train_finetune as tf

        inputs: list[str | tuple[str, str]] = list(normalised)
        if before is not None:
            inputs = [(text, turn) if turn else text for text, turn in zip(normalised, before, strict=True)]
        return tf.predict(self._model, self._tokenizer, inputs)


# --- the run ----------------------------------------------------------------------------------------

def score(screener: Screener, rows: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Risk of every row through the runtime, and whether it came back model_uncertain."""
    risk, uncertain = [], []
    for start in range(0, len(rows), 256):
        chunk = rows[start:start + 256]
        for result in screener.screen([row.text for row in chunk], [row.context for row in chunk]):
            risk.append(result.risk_score)
            uncertain.append("model_uncertain" in result.flags)
    return np.array(risk), np.array(uncertain, dtype=bool)


def run(family: str, recipes: Sequence[str], samples: int, seed: int, shipped: Sequence[str],
        baselines: bool, sources: Sequence[str], max_test: int | None = None, graph: bool = False
        ) -> dict[str, dict[str, Any]]:
    from ml.training import train_finetune, train_ngram
    from ml.training.datasets import load_all

    started = time.perf_counter()
    # Each family trains on its own recipe's rows: ngram-v1 on the first templates only, the
    # fine-tuned models on all three template sets and the ConvAbuse chatbot's turns.
    splits = train_ngram.load_splits() if family == "ngram" else train_finetune.load_splits()
    all_folds = folds(splits, load_all(), sources)
    if max_test:
        # The same random rows of a source for every scorer, so the columns stay comparable.
        all_folds = [Fold(fold.source, fold.train, fold.calibration,
                          random.Random(seed).sample(fold.test, min(max_test, len(fold.test))))
                     for fold in all_folds]
    table: dict[str, dict[str, Any]] = {}
    candidates: dict[str, Callable[[Fold], Screener]]
    if family == "ngram":
        candidates = {"ngram (source held out)": ngram_fold}
    else:
        candidates = {f"minilm-{recipe} (source held out)": _minilm(recipe, samples, seed) for recipe in recipes}
    for index, fold in enumerate(all_folds, start=1):
        _progress(f"fold {index}/{len(all_folds)}: {fold.source} held out ({len(fold.test)} messages; "
                  f"training on {len(fold.train)}), {(time.perf_counter() - started) / 60:.1f} min so far")
        for name, build in candidates.items():
            screener = build(fold)
            table.setdefault(name, {})[fold.source] = metrics(fold.test, *score(screener, fold.test))
            if graph and isinstance(screener, TorchScreener):
                with tempfile.TemporaryDirectory(prefix="fold-graph-") as work:
                    exported = export_fold(screener, fold, Path(work))
                    table.setdefault(name.replace(" (", " as shipped (", 1), {})[fold.source] = metrics(
                        fold.test, *score(exported, fold.test))
        in_source = [row for row in fold.test if split_of(row.group) == "heldout"]
        for name in shipped:
            table.setdefault(f"{name} (in-source)", {})[fold.source] = metrics(
                in_source, *score(Screener.load(name), in_source))
        if baselines:
            from ml.training.baselines import load_baselines

            for baseline in load_baselines()[0]:
                texts = [row.text for row in fold.test]
                risk = np.concatenate([baseline.risk(texts[i:i + 256]) for i in range(0, len(texts), 256)])
                table.setdefault(baseline.name, {})[fold.source] = metrics(fold.test, risk)
        _save(table, f"partial-{family}")  # a long run keeps what it measured if it is stopped
    for per_source in table.values():
        keys = [key for key in MEAN_KEYS if all(key in m for m in per_source.values())]
        per_source["mean"] = {key: round(float(np.nanmean([m[key] for m in per_source.values()])), 4)
                              for key in keys}
    _progress(f"done in {(time.perf_counter() - started) / 60:.1f} min")
    return table


def export_fold(screener: TorchScreener, fold: Fold, work: Path) -> Screener:
    """The fold's model in the form ``make train`` ships (``train_finetune.export``: ONNX, int8 when it
    keeps the accuracy, attention fused), loaded by the runtime, so the graph is judged on the source
    its model never saw, not only the torch weights."""
    import os

    from ml.training import train_finetune as tf

    inputs = [tf.model_input(row) for row in fold.calibration]
    probabilities, _ = tf.predict(screener._model, screener._tokenizer, inputs)
    folder = work / "models" / f"fold-{fold.source}"
    kept = os.environ.get("MINILM_FP32_DIR")
    os.environ["MINILM_FP32_DIR"] = str(work / "fp32")  # the 90 MB float graph goes with the folder
    try:
        quantisation = tf.export(screener._model, folder, fold.calibration, probabilities, quantise=True)
    finally:
        if kept is None:
            del os.environ["MINILM_FP32_DIR"]
        else:
            os.environ["MINILM_FP32_DIR"] = kept
    _progress(f"exported as {quantisation['weights']} ({quantisation['method']})")
    meta = {**screener.meta, "kind": "screening", "architecture": "transformer",
            "transformer": {**screener.meta["transformer"], "max_length": tf.RUNTIME_TOKENS}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return Screener.load(folder.name, folder.parent)


def _minilm(recipe: str, samples: int, seed: int) -> Callable[[Fold], Screener]:
    return lambda fold: minilm_fold(fold, recipe, samples, seed)


def format_table(table: dict[str, dict[str, Any]], threshold: float = THRESHOLD) -> str:
    lines = [f"source-held-out, threshold {threshold}. confFP: non-abusive scored >= {CONFIDENT}; "
             "autoFP: non-abusive share of what could be sanctioned automatically (flagged, not "
             "model_uncertain); autoR: abusive messages in it; review: flagged but model_uncertain",
             f"{'scorer':36} {'source':10} {'n':>6} {'pos':>5} {'prec':>6} {'recall':>6} {'fpr':>6} "
             f"{'auc':>6} {'confFP':>6} {'autoFP':>6} {'autoR':>6} {'review':>6}"]
    for scorer, per_source in table.items():
        for source, m in per_source.items():
            extra = " ".join(f"{m[key]:6.3f}" if key in m else f"{'-':>6}"
                             for key in ("auto_fp_share", "auto_recall", "to_review"))
            lines.append(f"{scorer:36} {source:10} {m.get('n', ''):>6} {m.get('positives', ''):>5} "
                         f"{m['precision']:6.3f} {m['recall']:6.3f} {m['fpr']:6.3f} {m['auc']:6.3f} "
                         f"{m['confident_fp']:6.3f} {extra}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("ngram", "minilm"), default="ngram")
    parser.add_argument("--recipe", action="append", choices=sorted(RECIPES),
                        help="minilm recipes to compare (repeatable; default v5)")
    parser.add_argument("--samples", type=int, default=12000, help="minilm draws per fold (one epoch)")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--source", action="append", choices=REAL_SOURCES, help="only these folds")
    parser.add_argument("--shipped", action="append", help="shipped models to score beside the folds "
                        "(default: every model under ml/models)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--graph", action="store_true", help="minilm: also score each fold's model exported "
                        "as make train ships it (int8, attention fused) through the runtime")
    parser.add_argument("--max-test", type=int, help="score at most this many random rows of each source "
                        "(the fine-tuned family scores in torch on the CPU: Davidson alone is 24,783 rows)")
    args = parser.parse_args(argv)
    from ml.screening import available_models

    table = run(args.family, args.recipe or ["v5"], args.samples, args.seed,
                args.shipped if args.shipped is not None else available_models(), not args.no_baselines,
                args.source or REAL_SOURCES, args.max_test, args.graph)
    print(format_table(table))
    _progress(f"wrote {_save(table, args.family, vars(args))}")


def _save(table: dict[str, dict[str, Any]], label: str, args: dict[str, Any] | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"source_heldout-{label}.json" if label.startswith("partial") else
                      f"source_heldout-{label}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.write_text(json.dumps({"args": args, "table": table}, indent=2) + "\n")
    return path


def _progress(message: str) -> None:
    print(f"[source_heldout] {message}", flush=True)


if __name__ == "__main__":
    main()
