"""Binary screening metrics in plain numpy (no scikit-learn), shared by training and evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class BinaryMetrics:
    n: int
    positives: int
    precision: float
    recall: float
    f1: float
    fpr: float
    auc: float

    def as_dict(self) -> dict[str, float | int]:
        return {key: (round(value, 4) if isinstance(value, float) else value)
                for key, value in asdict(self).items()}


def binary_metrics(truth: np.ndarray, scores: np.ndarray, threshold: float) -> BinaryMetrics:
    """Precision, recall, F1 and false-positive rate at ``threshold``, plus ROC AUC.

    An undefined ratio (no positives, nothing flagged) is reported as NaN, not as 0, so a table
    never shows a perfect-looking number that was never measured.
    """
    truth = truth.astype(bool)
    flagged = scores >= threshold
    true_pos = int(np.sum(flagged & truth))
    precision = _ratio(true_pos, int(flagged.sum()))
    recall = _ratio(true_pos, int(truth.sum()))
    f1 = _f1(precision, recall)
    fpr = _ratio(int(np.sum(flagged & ~truth)), int((~truth).sum()))
    return BinaryMetrics(len(truth), int(truth.sum()), precision, recall, f1, fpr, roc_auc(truth, scores))


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    truth = truth.astype(bool)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1  # tied scores share their mean rank
    ranks[order] = np.repeat(average, counts)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _f1(precision: float, recall: float) -> float:
    if np.isnan(precision) or np.isnan(recall):
        return float("nan")
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else float("nan")
