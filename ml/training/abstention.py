"""Set the abstention knobs of ml.screening on the calibration split, and report what they cost.

    python -m ml.training.abstention [--model minilm-v5]

A flagged message (risk >= 0.7) whose confidence falls under UNCERTAIN_BELOW is flagged
model_uncertain and goes to a person, never to an automatic sanction. This script screens the
real sources' calibration split once, keeps what the confidence is made of (the model's own
confidence, the share of words the vocabulary could not read, the length, the n-gram model's
risk, a rule's floor), and replays every setting of the grid below on them: for each it prints
the share of automatic actions that would land on non-abusive messages (autoFP), the share of
abusive messages still acted on automatically (autoR) and the share of flagged messages sent to
review. It chooses the setting with the lowest autoFP that keeps autoR at or above
MIN_AUTO_RECALL_SHARE of the recall at the threshold. The held-out split is never read.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml import rules, screening
from ml.normalise import normalise
from ml.training.datasets import BENIGN, Example

THRESHOLD = 0.7
MIN_AUTO_RECALL_SHARE = 0.6
GRID = {
    "uncertain_below": (0.35, 0.45, 0.55, 0.65),
    "disagree_from": (0.25, 0.35),
    "unfamiliar_weight": (0.3, 0.6),
    "short_factor": (0.6, 0.8, 1.0),
    "auto_min_risk": (0.7, 0.8, 0.9),
}


@dataclass(frozen=True)
class Parts:
    risk: np.ndarray  # final risk (rules applied)
    confidence: np.ndarray  # the model's confidence before any trust factor
    floor: np.ndarray  # a rule's floor (0 where none): it restores confidence on its own
    unfamiliar: np.ndarray
    words: np.ndarray
    gap: np.ndarray  # |transformer risk - n-gram risk|
    truth: np.ndarray


def parts(screener: screening.Screener, rows: Sequence[Example]) -> Parts:
    """What each row's confidence is made of, from one pass of the runtime's own steps."""
    risk, confidence, floors, unfamiliar, model_risk = [], [], [], [], []
    for start in range(0, len(rows), 256):
        chunk = rows[start:start + 256]
        normalised = [normalise(r.text[:screening.MAX_SCREEN_CHARS]) for r in chunk]
        before = [screener._context(r.context, i) if r.context else None for i, r in enumerate(chunk)]
        probabilities, _ = screener.forward(normalised, before)
        unfamiliar += list(screener._unfamiliar if screener._unfamiliar is not None else np.zeros(len(chunk)))
        for row, text, verdict in zip(chunk, normalised, screener._model_verdicts(probabilities), strict=True):
            rule = rules.check(row.text, row.context, text)
            decided = screener._decide(verdict, rule)  # no trust factor: the raw confidence
            risk.append(decided.risk_score)
            confidence.append(verdict.confidence)
            floors.append(rule.floor or 0.0)
            model_risk.append(verdict.risk)
    normalised_all = [normalise(r.text) for r in rows]
    companion = screener.companion
    second = companion.calibrate(companion.forward(normalised_all)[0]) if companion else np.array(model_risk)
    return Parts(np.array(risk), np.array(confidence), np.array(floors), np.array(unfamiliar),
                 np.array([len(n.split()) for n in normalised_all]), np.abs(np.array(model_risk) - second),
                 np.array([r.label not in BENIGN for r in rows]))


def replay(p: Parts, uncertain_below: float, disagree_from: float, unfamiliar_weight: float,
           short_factor: float, auto_min_risk: float = THRESHOLD) -> dict[str, float]:
    factor = 1.0 - unfamiliar_weight * p.unfamiliar
    factor = factor * np.where(p.words <= 3, np.where(p.words <= 2, short_factor, (1 + short_factor) / 2), 1.0)
    factor = factor * np.maximum(screening.DISAGREE_FLOOR,
                                 1.0 - screening.DISAGREE_SLOPE * np.maximum(0.0, p.gap - disagree_from))
    confidence = np.maximum(p.confidence * factor, p.floor)
    flagged = p.risk >= THRESHOLD
    auto = flagged & (confidence >= uncertain_below) & (p.risk >= auto_min_risk)
    return {"autoFP": float(np.mean(~p.truth[auto])) if auto.any() else float("nan"),
            "autoR": float(np.mean(auto[p.truth])), "recall": float(np.mean(flagged[p.truth])),
            "review": float(np.mean(~auto[flagged])) if flagged.any() else 0.0,
            "flaggedFP": float(np.mean(~p.truth[flagged])) if flagged.any() else float("nan")}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    from ml.training.train_finetune import load_splits

    screener = screening.get_screener(args.model)
    rows = [row for row in load_splits()["calibration"] if row.source != "synthetic"]
    print(f"{screener.model_version}: {len(rows)} calibration messages of the real sources")
    p = parts(screener, rows)
    settings = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    results = [(setting, replay(p, **setting)) for setting in settings]
    now = {"uncertain_below": screening.UNCERTAIN_BELOW, "disagree_from": screening.DISAGREE_FROM,
           "unfamiliar_weight": screening.UNFAMILIAR_WEIGHT, "short_factor": screening.SHORT_WORDS[2],
           "auto_min_risk": screening.AUTO_MIN_RISK}
    print(f"no abstention: flagged messages that are not abusive {results[0][1]['flaggedFP']:.3f}, "
          f"recall {results[0][1]['recall']:.3f}")
    print(f"{'setting':70} autoFP  autoR  review")
    ok = [(s, r) for s, r in results if r["autoR"] >= MIN_AUTO_RECALL_SHARE * r["recall"]]
    for setting, result in [*sorted(ok, key=lambda item: item[1]["autoFP"])[:10], (now, replay(p, **now))]:
        print(f"{setting!s:70} {result['autoFP']:.3f}  {result['autoR']:.3f}  {result['review']:.3f}")
    print("(the last line is the setting shipped in ml.screening)")


if __name__ == "__main__":
    main()
