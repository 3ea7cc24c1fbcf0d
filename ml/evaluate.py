"""Evaluate a screening model on the held-out split and on the hard-case suite.

    python -m ml.evaluate [--model NAME] [--threshold 0.7]

Prints precision, recall, F1, false-positive rate (and ROC AUC) at the screening threshold per
source and per category, model+rules and model alone, then every hard case that failed. The
held-out split (ml/data/splits/heldout.jsonl.gz) is written by ``python -m ml.train_ngram`` and
shares no conversation, thread, author or template with training.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.datasets import BENIGN, CATEGORIES, DATA_DIR, Example
from ml.hard_cases import HARD_CASES, HardCase
from ml.metrics import binary_metrics
from ml.normalise import normalise
from ml.screening import Screener, Screening

THRESHOLD = 0.7
HELDOUT_PATH = DATA_DIR / "splits" / "heldout.jsonl.gz"
BATCH = 256


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate a screening model.")
    parser.add_argument("--model", default=None, help="model name under ml/models (default ngram-v1)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    args = parser.parse_args(argv)
    screener = Screener.load(args.model)
    rows = load_heldout(HELDOUT_PATH)
    print(f"model {screener.model_version}, {len(rows)} held-out messages, threshold {args.threshold}\n")
    print(format_report(evaluate_rows(screener, rows, args.threshold)))
    print(format_hard_cases(run_hard_cases(screener, args.threshold)))


def load_heldout(path: Path) -> list[Example]:
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python -m ml.train_ngram` first")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [Example(**{**row, "context": tuple(row["context"])}) for row in map(json.loads, handle)]


def evaluate_rows(screener: Screener, rows: Sequence[Example], threshold: float = THRESHOLD) -> dict[str, Any]:
    """Metrics of model+rules and of the model alone, per source and per category."""
    results = _screen_all(screener, rows)
    risk = np.array([result.risk_score for result in results])
    model_risk = _model_only(screener, rows)
    predicted = np.array([result.risk_category for result in results])
    labels = np.array([row.label for row in rows])
    sources = np.array([row.source for row in rows])
    truth = ~np.isin(labels, list(BENIGN))
    real = sources != "synthetic"
    slices = {name: sources == name for name in sorted(set(sources))}
    slices["all real sources"] = real
    return {
        "threshold": threshold,
        "per_source": {
            name: {"model+rules": binary_metrics(truth[mask], risk[mask], threshold).as_dict(),
                   "model only": binary_metrics(truth[mask], model_risk[mask], threshold).as_dict()}
            for name, mask in slices.items()
        },
        "per_category": _per_category(labels, predicted, risk, threshold),
    }


def _per_category(labels: np.ndarray, predicted: np.ndarray, risk: np.ndarray, threshold: float) -> dict[str, Any]:
    """For a harmful category: flagged with that category vs truly that category. For none and
    profanity: how often they are flagged at all (their false-positive rate)."""
    flagged = risk >= threshold
    benign_truth = np.isin(labels, list(BENIGN))
    report: dict[str, Any] = {}
    for category in CATEGORIES:
        is_true = labels == category
        if category in BENIGN:
            report[category] = {"n": int(is_true.sum()), "flag_rate": _rate(flagged & is_true, is_true)}
            continue
        hit = flagged & (predicted == category)
        precision, recall = _rate(hit & is_true, hit), _rate(hit & is_true, is_true)
        report[category] = {
            "n": int(is_true.sum()),
            "flagged": _rate(flagged & is_true, is_true),
            "precision": precision,
            "recall": recall,
            "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall > 0 else 0.0,
            "fpr": _rate(hit & benign_truth, benign_truth),
        }
    return report


def run_hard_cases(screener: Screener, threshold: float = THRESHOLD) -> list[tuple[HardCase, Screening, bool]]:
    """Screen every hard case; each comes back with its result and whether it passed."""
    results = screener.screen([case.text for case in HARD_CASES], [case.context for case in HARD_CASES])
    return [(case, result, _passes(case, result, threshold)) for case, result in zip(HARD_CASES, results, strict=True)]


def _passes(case: HardCase, result: Screening, threshold: float) -> bool:
    if (result.risk_score >= threshold) != case.flagged:
        return False
    return case.category is None or result.risk_category == case.category


def format_report(report: dict[str, Any]) -> str:
    lines = [f"per source (binary: needs a moderator), threshold {report['threshold']}",
             f"{'source':18} {'scorer':12} {'n':>6} {'pos':>5} "
             f"{'prec':>6} {'recall':>6} {'f1':>6} {'fpr':>6} {'auc':>6}"]
    for source, scorers in report["per_source"].items():
        for scorer, m in scorers.items():
            lines.append(f"{source:18} {scorer:12} {m['n']:6d} {m['positives']:5d} {m['precision']:6.3f} "
                         f"{m['recall']:6.3f} {m['f1']:6.3f} {m['fpr']:6.3f} {m['auc']:6.3f}")
    lines += ["", "per category (all held-out sources, model+rules; threat, self_harm and spam rows are templated)",
              f"{'category':20} {'n':>6} {'flagged':>8} {'prec':>6} {'recall':>6} {'f1':>6} {'fpr':>6}"]
    for category, m in report["per_category"].items():
        if "flag_rate" in m:
            lines.append(f"{category:20} {m['n']:6d} {m['flag_rate']:8.3f}   (flag rate = false-positive rate)")
        else:
            lines.append(f"{category:20} {m['n']:6d} {m['flagged']:8.3f} {m['precision']:6.3f} "
                         f"{m['recall']:6.3f} {m['f1']:6.3f} {m['fpr']:6.3f}")
    return "\n".join(lines) + "\n"


def format_hard_cases(outcomes: list[tuple[HardCase, Screening, bool]]) -> str:
    groups: dict[str, list[bool]] = {}
    for case, _, passed in outcomes:
        groups.setdefault(case.group, []).append(passed)
    lines = ["hard cases (passed/total per group)"]
    lines += [f"  {group:26} {sum(passed)}/{len(passed)}" for group, passed in groups.items()]
    total = sum(passed for *_, passed in outcomes)
    lines.append(f"  {'total':26} {total}/{len(outcomes)}")
    for case, result, passed in outcomes:
        if not passed:
            want = f"flagged as {case.category or 'anything'}" if case.flagged else "not flagged"
            lines.append(f"  FAIL [{case.group}] {case.text!r}: wanted {want}, got {result.risk_score:.2f} "
                         f"{result.risk_category} {result.flags}")
    return "\n".join(lines) + "\n"


def _screen_all(screener: Screener, rows: Sequence[Example]) -> list[Screening]:
    results: list[Screening] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        results += screener.screen([row.text for row in chunk], [row.context for row in chunk])
    return results


def _model_only(screener: Screener, rows: Sequence[Example]) -> np.ndarray:
    scores = [screener.calibrate(screener.predict_proba([normalise(row.text) for row in rows[start : start + BATCH]]))
              for start in range(0, len(rows), BATCH)]
    return np.concatenate(scores)


def _rate(hits: np.ndarray, base: np.ndarray) -> float:
    total = int(base.sum())
    return round(int(hits.sum()) / total, 4) if total else float("nan")


if __name__ == "__main__":
    main()
