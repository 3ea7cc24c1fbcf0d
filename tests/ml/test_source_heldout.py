"""Source-held-out folds never let a fold's model see the source it is tested on."""

from __future__ import annotations

import numpy as np
import pytest

from ml.training.datasets import Example
from ml.training.source_heldout import folds, metrics


def _row(text: str, source: str, label: str = "none") -> Example:
    return Example(text=text, label=label, source=source, group=f"{source}:{text}")


def test_a_fold_trains_and_calibrates_without_its_source_and_tests_on_all_of_it():
    train = [_row("a", "davidson"), _row("b", "convabuse"), _row("c", "convabuse_agent"), _row("d", "synthetic")]
    calibration = [_row("e", "convabuse"), _row("f", "toxichat")]
    everything = [_row("a", "davidson"), _row("b", "convabuse"), _row("e", "convabuse"), _row("g", "convabuse")]
    by_source = {fold.source: fold for fold in folds({"train": train, "calibration": calibration}, everything,
                                                     ("convabuse", "davidson"))}
    convabuse = by_source["convabuse"]
    assert [row.text for row in convabuse.train] == ["a", "d"]  # the chatbot's turns leave with ConvAbuse
    assert [row.text for row in convabuse.calibration] == ["f"]
    assert [row.text for row in convabuse.test] == ["b", "e", "g"]
    assert [row.text for row in by_source["davidson"].train] == ["b", "c", "d"]


def test_automatic_share_counts_only_what_the_model_was_sure_of():
    rows = [_row("1", "x", "hate"), _row("2", "x", "hate"), _row("3", "x"), _row("4", "x"), _row("5", "x")]
    risk = np.array([0.95, 0.8, 0.92, 0.75, 0.1])
    uncertain = np.array([False, True, False, True, False])
    m = metrics(rows, risk, uncertain)
    assert m["recall"] == 1.0 and m["fpr"] == pytest.approx(2 / 3, abs=1e-3)
    assert m["confident_fp"] == pytest.approx(1 / 3, abs=1e-3)  # "3" at 0.92
    assert m["auto_fp_share"] == pytest.approx(0.5)  # automatic: "1" (abusive) and "3" (not)
    assert m["auto_recall"] == pytest.approx(0.5) and m["to_review"] == pytest.approx(0.5)


def test_every_recipe_sets_only_what_the_trainer_has_and_keeps_some_of_its_layers():
    from ml.training import train_finetune
    from ml.training.source_heldout import LAYERS_KEY, RECIPES, TEACHER_KEY

    for name, recipe in RECIPES.items():
        assert all(hasattr(train_finetune, key) for key in recipe if key not in (LAYERS_KEY, TEACHER_KEY)), name
        assert 1 <= recipe.get(LAYERS_KEY, 6) <= 6, name
        teacher = recipe.get(TEACHER_KEY, "v5")
        assert teacher in RECIPES and TEACHER_KEY not in RECIPES[teacher], name
