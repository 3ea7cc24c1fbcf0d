"""The cascade on sources held out of training: does clearing with the n-gram model cost recall there?

    python -m ml.training.cascade_heldout [--source convabuse ...] [--samples 4000] [--max-test 2000]

For each real source, a fine-tuned model (the shipped v5 recipe) and an n-gram model (ngram-v1's
recipe) are both trained without it (``ml.training.source_heldout``); the n-gram model is the
fine-tuned one's companion, as ngram-v1 is minilm-v5's, and the source's rows are screened with the
cascade off and at ``ml.screening.CASCADE_BELOW`` (or at each ``--below``: the shedding setting,
``SCREENING_SHED_BELOW``, is judged the same way). Prints, per source, the share that skipped the
transformer and the source-held-out metrics each way. About five minutes a source on two fast cores.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence

import numpy as np

from ml import screening
from ml.training import source_heldout as heldout
from ml.training.datasets import REAL_SOURCES, load_all


def run_source(source: str, samples: int, max_test: int, seed: int,
               settings: Sequence[float] = (0.0, screening.CASCADE_BELOW)) -> dict[str, dict[str, float]]:
    from ml.training import train_finetune, train_ngram

    everything = load_all()
    [fold] = heldout.folds(train_finetune.load_splits(), everything, [source])
    fold = heldout.Fold(fold.source, fold.train, fold.calibration,
                        random.Random(seed).sample(fold.test, min(max_test, len(fold.test))))
    [ngram] = heldout.folds(train_ngram.load_splits(), everything, [source])
    screener = heldout.minilm_fold(fold, "v5", samples, seed)
    screener.companion = heldout.ngram_fold(ngram)
    out = {}
    for below in settings:
        screener.cascade_below = below
        results = [r for start in range(0, len(fold.test), 256)
                   for r in screener.screen([row.text for row in fold.test[start:start + 256]],
                                            [row.context for row in fold.test[start:start + 256]])]
        risk = [r.risk_score for r in results]
        uncertain = ["model_uncertain" in r.flags for r in results]
        figures = heldout.metrics(fold.test, np.array(risk), np.array(uncertain, dtype=bool))
        figures["skips_transformer"] = round(sum("cascade_cleared" in r.flags for r in results) / len(results), 4)
        out[f"cascade {below}"] = figures
        print(f"{source} cascade {below}: {json.dumps(figures)}", flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", choices=REAL_SOURCES, help="repeatable; default all four")
    parser.add_argument("--samples", type=int, default=4000, help="fine-tuning draws per fold")
    parser.add_argument("--max-test", type=int, default=2000, help="rows of the held-out source screened")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--below", action="append", type=float,
                        help=f"repeatable cascade setting to screen at; default 0 and {screening.CASCADE_BELOW}")
    args = parser.parse_args(argv)
    for source in args.source or REAL_SOURCES:
        run_source(source, args.samples, args.max_test, args.seed, args.below or (0.0, screening.CASCADE_BELOW))


if __name__ == "__main__":
    main()
