"""Choose the cascade's setting on the calibration split, and report what it costs.

    python -m ml.training.cascade [--model minilm-v5] [--max-recall-loss 0.005] [--shed-recall-loss 0.02]

The screener runs the n-gram model (ngram-v1, ~0.1 ms) on every message anyway, as a second
opinion. With the cascade on, a message it scores under ``CASCADE_BELOW`` (calibrated risk), and on
which no rule sets a floor, is decided by the n-gram model and the rules alone; the transformer
reads the rest. This script screens the real sources' calibration split twice (transformer on
everything, and the n-gram model with the rules alone), replays every setting of the grid on the
two, and chooses the largest setting whose recall at the threshold is at most ``max_recall_loss``
under the transformer's and whose false-positive rate is no higher. It then prints the same
figures on the held-out split, per source, and the share of the templated chat it clears (the
nearest thing here to live chat traffic), none of which was read to choose, and checks the chosen
setting against the runtime itself (the replay must equal what ``Screener.screen`` returns).

Tried and left out: a gate distilled from the transformer (hashed n-grams fitted to minilm-v5's
soft labels on the train split; correlation with the teacher's risk 0.95 there). At the setting
the calibration split chose (0.1) it skipped the transformer on 17.7% of the held-out real
messages and lost 7 of 923 abusive ones; ngram-v1 at 0.15 skips 18.7% and loses none. The
transformer's own calibrated risk rarely falls under 0.1 even on plainly ordinary messages, so no
gate that imitates it can clear much of the traffic without costing recall.

The same replay chooses the shedding setting (``SCREENING_SHED_BELOW``, used only while screening is
behind): the largest setting of the grid that costs at most ``shed_recall_loss`` of recall on the
calibration split, false-positive rate no higher. Shedding trades a little recall for verdicts that
stay near real time, so its budget is larger than the cascade's.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml import rules, screening
from ml.normalise import normalise
from ml.training.datasets import BENIGN, Example

THRESHOLD = 0.7
GRID = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
BATCH = 256


@dataclass(frozen=True)
class Pair:
    """The two ways one set of messages can be screened, and the truth."""

    full: np.ndarray  # final risk, transformer on every message
    light: np.ndarray  # final risk, the n-gram model and the rules alone
    light_model: np.ndarray  # the n-gram model's calibrated risk (what the cascade compares)
    floor: np.ndarray  # whether a rule set a floor (the cascade never clears those)
    truth: np.ndarray  # abusive
    source: np.ndarray


def screen_pair(screener: screening.Screener, rows: Sequence[Example], label: str) -> Pair:
    companion = screener.companion
    if companion is None:
        raise SystemExit(f"{screener.model_version} has no n-gram companion (ml/models/{screening.COMPANION_MODEL}); "
                         "there is nothing to cascade")
    below, screener.cascade_below = screener.cascade_below, 0.0
    full, light, light_model, floor = [], [], [], []
    started = time.monotonic()
    try:
        for start in range(0, len(rows), BATCH):
            chunk = rows[start:start + BATCH]
            texts, contexts = [r.text for r in chunk], [r.context for r in chunk]
            full += [s.risk_score for s in screener.screen(texts, contexts)]
            results, model = companion.screen_with_model_risk(texts, contexts)
            light += [s.risk_score for s in results]
            light_model += model.tolist()
            floor += [rules.check(r.text[:screening.MAX_SCREEN_CHARS], r.context,
                                  normalise(r.text[:screening.MAX_SCREEN_CHARS])).floor is not None for r in chunk]
            done = min(start + BATCH, len(rows))
            rate = done / max(time.monotonic() - started, 1e-9)
            print(f"\r  {label}: {done}/{len(rows)} messages, {rate:.0f}/s, "
                  f"ETA {(len(rows) - done) / rate:.0f} s   ", end="", file=sys.stderr, flush=True)
    finally:
        screener.cascade_below = below
    print(file=sys.stderr)
    return Pair(np.array(full), np.array(light), np.array(light_model), np.array(floor, dtype=bool),
                np.array([r.label not in BENIGN for r in rows]), np.array([r.source for r in rows]))


def replay(pair: Pair, below: float, mask: np.ndarray | None = None) -> dict[str, float]:
    """Recall, false-positive rate and the share the transformer skips, with the cascade at ``below``."""
    mask = np.ones(len(pair.full), dtype=bool) if mask is None else mask
    cleared = (pair.light_model < below) & ~pair.floor & mask
    risk = np.where(cleared, pair.light, pair.full)[mask]
    truth = pair.truth[mask]
    flagged = risk >= THRESHOLD
    lost = (pair.full[mask] >= THRESHOLD) & ~flagged & truth
    return {"cleared": float(cleared[mask].mean()),
            "recall": float(flagged[truth].mean()) if truth.any() else float("nan"),
            "fpr": float(flagged[~truth].mean()) if (~truth).any() else float("nan"),
            "lost": int(lost.sum()), "abusive": int(truth.sum())}


def table(pair: Pair, settings: Sequence[float], title: str) -> None:
    print(f"\n{title}")
    print(f"{'cascade below':>14} {'skips transformer':>18} {'recall':>7} {'FPR':>6} {'abusive lost':>13}")
    for below in settings:
        r = replay(pair, below)
        print(f"{below:>14.3f} {r['cleared']:>18.3f} {r['recall']:>7.3f} {r['fpr']:>6.3f} "
              f"{r['lost']:>6d} of {r['abusive']}")


def choose(pair: Pair, max_recall_loss: float) -> float:
    base = replay(pair, 0.0)
    ok = [below for below in GRID if (r := replay(pair, below))["recall"] >= base["recall"] - max_recall_loss
          and r["fpr"] <= base["fpr"] + 1e-9]
    return max(ok, default=0.0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-recall-loss", type=float, default=0.005,
                        help="recall at the threshold the cascade may cost on the calibration split (absolute)")
    parser.add_argument("--shed-recall-loss", type=float, default=0.02,
                        help="recall the shedding setting may cost on the calibration split (absolute)")
    parser.add_argument("--limit", type=int, default=0,
                        help="screen at most this many messages per split (a quick look)")
    args = parser.parse_args(argv)
    from ml.training.train_finetune import load_splits

    screener = screening.get_screener(args.model)
    splits = load_splits()
    rows = {name: [r for r in splits[name] if r.source != "synthetic"] for name in ("calibration", "heldout")}
    chat = [r for r in splits["heldout"] if r.source == "synthetic"]
    if args.limit:
        rows = {name: r[:args.limit] for name, r in rows.items()}
    print(f"{screener.model_version}, companion {screening.COMPANION_MODEL}: "
          f"{len(rows['calibration'])} calibration and {len(rows['heldout'])} held-out messages of the real sources")
    calibration = screen_pair(screener, rows["calibration"], "calibration")
    chosen = choose(calibration, args.max_recall_loss)
    table(calibration, (0.0, *GRID), "calibration split (chooses)")
    print(f"\nchosen: CASCADE_BELOW = {chosen} (largest setting losing at most {args.max_recall_loss} recall, "
          f"FPR no higher; shipped: {screening.CASCADE_BELOW})")
    shed = choose(calibration, args.shed_recall_loss)
    print(f"shedding: SCREENING_SHED_BELOW = {shed} (largest setting losing at most {args.shed_recall_loss} recall, "
          "FPR no higher; app.config's default is what this printed when it was set)")
    heldout = screen_pair(screener, rows["heldout"], "held-out")
    table(heldout, (0.0, *GRID), "held-out split (not read to choose)")
    for setting, name in ((chosen, "the cascade"), (shed, "shedding")):
        print(f"\nheld-out, per source, {name} at {setting} against the transformer on everything:")
        print(f"{'source':>12} {'skips':>6} {'recall':>13} {'FPR':>13}")
        for source in sorted(set(heldout.source)):
            mask = heldout.source == source
            off, on = replay(heldout, 0.0, mask), replay(heldout, setting, mask)
            print(f"{source:>12} {on['cleared']:>6.3f} {off['recall']:>6.3f}->{on['recall']:.3f} "
                  f"{off['fpr']:>6.3f}->{on['fpr']:.3f}")
    templated = screen_pair(screener, chat[:args.limit] if args.limit else chat, "templated chat")
    table(templated, (0.0, chosen, shed), "templated chat, held-out split (not read to choose)")
    if chosen > 0:
        check(screener, rows["heldout"][:500], heldout, chosen)


def check(screener: screening.Screener, rows: Sequence[Example], pair: Pair, below: float) -> None:
    """The replay must be what the runtime does: screen with the cascade on and compare."""
    screener.cascade_below = below
    got = np.array([s.risk_score for start in range(0, len(rows), BATCH)
                    for s in screener.screen([r.text for r in rows[start:start + BATCH]],
                                             [r.context for r in rows[start:start + BATCH]])])
    cleared = (pair.light_model[:len(rows)] < below) & ~pair.floor[:len(rows)]
    want = np.where(cleared, pair.light[:len(rows)], pair.full[:len(rows)])
    gap = float(np.abs(got - want).max())
    print(f"\nruntime check on {len(rows)} held-out messages: largest gap between replay and runtime {gap:.4f}")
    if gap > 1e-3:
        raise SystemExit("the replay does not match ml.screening's cascade: fix one of them before trusting the tables")


if __name__ == "__main__":
    main()
