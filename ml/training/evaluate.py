"""Evaluate the screening models and the baselines on the held-out split and the hard-case suite.

    python -m ml.training.evaluate [--model NAME ...] [--threshold 0.7] [--no-baselines] [--no-speed] [--only-challenge]

First, side by side in one table, every screening model under ml/models (model+rules) and the
baselines (ml.training.baselines: alt-profanity-check, hatesonar): precision, recall, F1, false-positive
rate and ROC AUC at the threshold, per source and per category (a category's rows against all
benign rows), and hard cases passed per group. Then the speed of each (ml.training.speed). Then, per
screening model, the detailed report: model+rules and model alone, category-exact metrics, and
every hard case that failed. The held-out split (ml/data/splits/heldout.jsonl.gz) is written by
``python -m ml.training.train_ngram`` and shares no conversation, thread, author or template with training.

After the side-by-side table, the challenge suite (ml.training.hard_cases.CHALLENGE_CASES: a larger set of
functional tests never trained on, for estimating generalisation) per group and scorer, with recall
on its flagged cases and false-positive rate on the others. ``--only-challenge`` skips the held-out
split and the speed measurement and prints that table alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.screening import Screener, Screening, available_models
from ml.training import speed
from ml.training.baselines import load_baselines
from ml.training.datasets import BENIGN, CATEGORIES, DATA_DIR, Example
from ml.training.hard_cases import CHALLENGE_CASES, HARD_CASES, HardCase
from ml.training.metrics import binary_metrics

THRESHOLD = 0.7
HELDOUT_PATH = DATA_DIR / "splits" / "heldout.jsonl.gz"
BATCH = 256
# A scorer's challenge-suite outcome: risk per case, and category per case (None for a baseline).
ChallengeScores = tuple[np.ndarray, list[str | None]]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate the screening models and the baselines.")
    parser.add_argument("--model", action="append", help="model under ml/models (repeatable; default: all)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--only-challenge", action="store_true",
                        help="skip the held-out split and speed; print only the challenge suite")
    args = parser.parse_args(argv)
    if args.only_challenge:
        print(format_challenge(_challenge_only(args.model or available_models(), args.threshold,
                                               baselines=not args.no_baselines), args.threshold))
        return
    rows = load_heldout(HELDOUT_PATH)
    screeners = {name: Screener.load(name) for name in args.model or available_models()}
    scorers: dict[str, Scored] = {}
    speeds: dict[str, speed.Speed] = {}
    texts = [row.text for row in rows]
    for name, screener in screeners.items():
        _note(f"scoring {len(rows)} held-out messages with {name}")
        scorers[name] = score_screener(screener, rows)
        if not args.no_speed:
            speeds[name] = speed.measure(screener.screen, texts, model_name=name)
    if not args.no_baselines:
        baselines, missing = load_baselines()
        for line in missing:
            print(f"baseline not available: {line}")
        for baseline in baselines:
            _note(f"scoring {len(rows)} held-out messages with {baseline.name}")
            scorers[baseline.name] = score_baseline(baseline.risk, rows)
            if not args.no_speed:
                speeds[baseline.name] = speed.measure(baseline.risk, texts)
    print(f"{len(rows)} held-out messages, threshold {args.threshold}; our models are scored with their rules\n")
    print(format_side_by_side(rows, scorers, args.threshold))
    print(format_challenge({name: scored.challenge for name, scored in scorers.items() if scored.challenge},
                           args.threshold))
    if speeds:
        print("speed (one onnxruntime thread, this machine, shared; not a timed test)")
        print("\n".join(result.line(name) for name, result in speeds.items()) + "\n")
    for name, scored in scorers.items():
        if scored.report is not None:
            print(f"=== {name}: model+rules and model alone\n")
            print(format_report(scored.report))
            print(format_hard_cases(scored.hard_cases))


def load_heldout(path: Path) -> list[Example]:
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python -m ml.training.train_ngram` first")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [Example(**{**row, "context": tuple(row["context"])}) for row in map(json.loads, handle)]


@dataclass(frozen=True)
class Scored:
    risk: np.ndarray  # per held-out row
    hard_case_risk: np.ndarray  # per hard case
    hard_case_category: list[str | None]  # None for a baseline: it names no category
    report: dict[str, Any] | None = None  # the detailed report of a screening model
    hard_cases: list[tuple[HardCase, Screening, bool]] = field(default_factory=list)
    challenge: ChallengeScores | None = None


def score_screener(screener: Screener, rows: Sequence[Example], threshold: float = THRESHOLD) -> Scored:
    results, model_risk = _screen_all(screener, rows)
    report = _report(results, model_risk, rows, threshold)
    hard = run_hard_cases(screener, threshold)
    return Scored(np.array([result.risk_score for result in results]),
                  np.array([result.risk_score for _, result, _ in hard]),
                  [result.risk_category for _, result, _ in hard], report, hard,
                  _challenge_scores(run_challenge_cases(screener, threshold)))


def score_baseline(risk: Callable[[Sequence[str]], np.ndarray], rows: Sequence[Example]) -> Scored:
    texts = [row.text for row in rows]
    scores = np.concatenate([risk(texts[start:start + BATCH]) for start in range(0, len(texts), BATCH)])
    return Scored(scores, risk([case.text for case in HARD_CASES]), [None] * len(HARD_CASES),
                  challenge=_baseline_challenge_scores(risk))


def format_side_by_side(rows: Sequence[Example], scorers: dict[str, Scored], threshold: float) -> str:
    """One table: every scorer per source, per category, and on the hard cases."""
    labels = np.array([row.label for row in rows])
    sources = np.array([row.source for row in rows])
    truth = ~np.isin(labels, list(BENIGN))
    slices = {name: sources == name for name in sorted(set(sources))}
    slices["all real sources"] = sources != "synthetic"
    benign = ~truth
    for category in CATEGORIES:
        if category not in BENIGN:
            slices[f"cat {category}"] = (labels == category) | benign
    header = (f"{'slice':24} {'scorer':20} {'n':>6} {'pos':>5} "
              f"{'prec':>6} {'recall':>6} {'f1':>6} {'fpr':>6} {'auc':>6}")
    lines = [f"side by side (binary: needs a moderator), threshold {threshold}; "
             "'cat X' = rows of X against all benign rows", header]
    for slice_name, mask in slices.items():
        for name, scored in scorers.items():
            m = binary_metrics(truth[mask], scored.risk[mask], threshold)
            lines.append(f"{slice_name:24} {name:20} {m.n:6d} {m.positives:5d} {m.precision:6.3f} "
                         f"{m.recall:6.3f} {m.f1:6.3f} {m.fpr:6.3f} {m.auc:6.3f}")
    lines += ["", "hard cases passed per group (baselines: flag decision only, they name no category)",
              f"{'group':26} " + " ".join(f"{name:>20}" for name in scorers)]
    groups = sorted({case.group for case in HARD_CASES}, key=[case.group for case in HARD_CASES].index)
    for group in [*groups, "total"]:
        cells = []
        for scored in scorers.values():
            passed = [_hard_case_passes(case, float(scored.hard_case_risk[index]), scored.hard_case_category[index],
                                        threshold)
                      for index, case in enumerate(HARD_CASES) if group in (case.group, "total")]
            cells.append(f"{sum(passed)}/{len(passed)}")
        lines.append(f"{group:26} " + " ".join(f"{cell:>20}" for cell in cells))
    return "\n".join(lines) + "\n"


def evaluate_rows(screener: Screener, rows: Sequence[Example], threshold: float = THRESHOLD) -> dict[str, Any]:
    """Metrics of model+rules and of the model alone, per source and per category."""
    results, model_risk = _screen_all(screener, rows)
    return _report(results, model_risk, rows, threshold)


def _report(results: Sequence[Screening], model_risk: np.ndarray, rows: Sequence[Example],
            threshold: float) -> dict[str, Any]:
    risk = np.array([result.risk_score for result in results])
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


def run_challenge_cases(screener: Screener, threshold: float = THRESHOLD) -> list[tuple[HardCase, Screening, bool]]:
    """Screen every challenge case (ml.training.hard_cases.CHALLENGE_CASES); each comes back with its
    result and whether it passed, on the same rule as the hard cases."""
    texts = [case.text for case in CHALLENGE_CASES]
    results = [result for start in range(0, len(texts), BATCH)
               for result in screener.screen(texts[start:start + BATCH],
                                             [case.context for case in CHALLENGE_CASES[start:start + BATCH]])]
    return [(case, result, _passes(case, result, threshold))
            for case, result in zip(CHALLENGE_CASES, results, strict=True)]


def _challenge_scores(outcomes: list[tuple[HardCase, Screening, bool]]) -> ChallengeScores:
    return (np.array([result.risk_score for _, result, _ in outcomes]),
            [result.risk_category for _, result, _ in outcomes])


def _baseline_challenge_scores(risk: Callable[[Sequence[str]], np.ndarray]) -> ChallengeScores:
    return np.asarray(risk([case.text for case in CHALLENGE_CASES])), [None] * len(CHALLENGE_CASES)


def _challenge_only(models: Sequence[str], threshold: float, baselines: bool) -> dict[str, ChallengeScores]:
    """The challenge suite alone, for each screening model and (unless told not to) each baseline."""
    scores: dict[str, ChallengeScores] = {}
    for name in models:
        _note(f"screening {len(CHALLENGE_CASES)} challenge cases with {name}")
        scores[name] = _challenge_scores(run_challenge_cases(Screener.load(name), threshold))
    if baselines:
        loaded, missing = load_baselines()
        for line in missing:
            print(f"baseline not available: {line}")
        for baseline in loaded:
            _note(f"scoring {len(CHALLENGE_CASES)} challenge cases with {baseline.name}")
            scores[baseline.name] = _baseline_challenge_scores(baseline.risk)
    return scores


def format_challenge(scores: dict[str, ChallengeScores], threshold: float) -> str:
    """Per group and scorer: passed/n and pass rate; then recall on the flagged cases, false-positive
    rate on the others and ROC AUC over the whole suite (binary: needs a moderator)."""
    groups = list(dict.fromkeys(case.group for case in CHALLENGE_CASES))
    truth = np.array([case.flagged for case in CHALLENGE_CASES])
    lines = [f"challenge suite: {len(CHALLENGE_CASES)} cases in {len(groups)} groups, never trained on, "
             f"threshold {threshold}",
             "passed/n (pass rate) per group; a case with a category passes only with that category "
             "(baselines: flag decision only, they name no category)",
             f"{'group':32} {'want':>4} {'n':>4} " + " ".join(f"{name:>20}" for name in scores)]
    passed = {name: [_hard_case_passes(case, float(risk[index]), category[index], threshold)
                     for index, case in enumerate(CHALLENGE_CASES)]
              for name, (risk, category) in scores.items()}
    for group in [*groups, "total"]:
        members = [index for index, case in enumerate(CHALLENGE_CASES) if group in (case.group, "total")]
        want = "" if group == "total" else ("flag" if CHALLENGE_CASES[members[0]].flagged else "pass")
        cells = []
        for name in scores:
            hits = sum(passed[name][index] for index in members)
            cells.append(f"{hits}/{len(members)} ({hits / len(members):.0%})")
        lines.append(f"{group:32} {want:>4} {len(members):4d} " + " ".join(f"{cell:>20}" for cell in cells))
    metrics = {name: binary_metrics(truth, np.asarray(risk, dtype=np.float64), threshold)
               for name, (risk, _) in scores.items()}
    for label, n, value in (("recall (flagged cases)", int(truth.sum()), "recall"),
                            ("fpr (not-flagged cases)", int((~truth).sum()), "fpr"),
                            ("roc auc (all cases)", len(truth), "auc")):
        lines.append(f"{label:32} {'':>4} {n:4d} "
                     + " ".join(f"{getattr(m, value):20.3f}" for m in metrics.values()))
    return "\n".join(lines) + "\n"


def _passes(case: HardCase, result: Screening, threshold: float) -> bool:
    return _hard_case_passes(case, result.risk_score, result.risk_category, threshold)


def _hard_case_passes(case: HardCase, risk: float, category: str | None, threshold: float) -> bool:
    """``category`` None (a baseline) checks the flag decision only."""
    if (risk >= threshold) != case.flagged:
        return False
    return case.category is None or category is None or category == case.category


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


def _screen_all(screener: Screener, rows: Sequence[Example]) -> tuple[list[Screening], np.ndarray]:
    """Results with rules, and the model-alone risk, from one forward pass per batch."""
    results: list[Screening] = []
    model_risk: list[np.ndarray] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        screened, risk = screener.screen_with_model_risk([row.text for row in chunk], [row.context for row in chunk])
        results += screened
        model_risk.append(risk)
    return results, np.concatenate(model_risk)


def _note(message: str) -> None:
    print(f"[evaluate] {message}", file=sys.stderr, flush=True)


def _rate(hits: np.ndarray, base: np.ndarray) -> float:
    total = int(base.sum())
    return round(int(hits.sum()) / total, 4) if total else float("nan")


if __name__ == "__main__":
    main()
