"""The cascade: ngram-v1 (read on every message anyway) decides what it calls clearly fine, the
transformer reads the rest. Setting chosen by ``python -m ml.training.cascade`` on the calibration split."""

from __future__ import annotations

import numpy as np
import pytest

from ml import screening
from ml.screening import DEFAULT_MODEL, Screener, cascade_below

ORDINARY = ["anyone up for another round?", "thanks for the carry", "who wants to duo", "that was a great game",
            "where do i find the settings menu", "brb getting food"]
THREATS = ["i will kill you", "i'm going to hurt you", "watch your back", "i will burn your house down"]


@pytest.fixture(scope="module")
def transformer() -> Screener:
    return Screener.load(DEFAULT_MODEL)


def _with_cascade(screener: Screener, below: float, texts: list[str]) -> tuple[list[screening.Screening], np.ndarray]:
    kept, screener.cascade_below = screener.cascade_below, below
    try:
        return screener.screen_with_model_risk(texts)
    finally:
        screener.cascade_below = kept


def test_what_the_companion_calls_clearly_fine_skips_the_transformer(transformer: Screener) -> None:
    assert transformer.companion is not None and transformer.cascade_below == screening.CASCADE_BELOW > 0
    companion_risk = transformer.companion.calibrate(transformer.companion.predict_proba(
        [screening.normalise(text) for text in ORDINARY]))
    results, model_risk = _with_cascade(transformer, screening.CASCADE_BELOW, ORDINARY)
    cleared = [result for result in results if "cascade_cleared" in result.flags]
    assert cleared, f"none of {ORDINARY} cleared at {screening.CASCADE_BELOW}; companion risk {companion_risk}"
    for text, result, risk, second in zip(ORDINARY, results, model_risk, companion_risk, strict=True):
        if second < screening.CASCADE_BELOW:  # decided by the companion: its risk, no vector
            assert "cascade_cleared" in result.flags and result.embedding is None, text
            assert risk == pytest.approx(second) and result.risk_score < 0.5, text
        else:  # read by the transformer as ever
            assert "cascade_cleared" not in result.flags and result.embedding is not None, text


def test_cascade_off_reads_everything_with_the_transformer(transformer: Screener) -> None:
    results, _ = _with_cascade(transformer, 0.0, ORDINARY)
    assert all("cascade_cleared" not in r.flags and r.embedding is not None for r in results)


def test_a_message_a_rule_raises_is_never_cleared(transformer: Screener) -> None:
    results, _ = _with_cascade(transformer, 0.49, THREATS)  # the loosest setting allowed
    assert all("cascade_cleared" not in r.flags and r.risk_score >= 0.9 for r in results)


def test_the_cascade_flag_is_about_the_model_never_severity() -> None:
    from app.fallback import NOT_RULES

    assert "cascade_cleared" in screening.TRUST_FLAGS and "cascade_cleared" in NOT_RULES


@pytest.mark.parametrize(("value", "expected"), [("", screening.CASCADE_BELOW), ("0", 0.0), ("0.05", 0.05)])
def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: float) -> None:
    monkeypatch.setenv("SCREENING_CASCADE_BELOW", value)
    assert cascade_below() == expected


@pytest.mark.parametrize(("value", "says"), [("lots", "use 0 to turn the cascade off"), ("0.7", "outside [0, 0.5)")])
def test_a_bad_setting_says_what_to_do(monkeypatch: pytest.MonkeyPatch, value: str, says: str) -> None:
    monkeypatch.setenv("SCREENING_CASCADE_BELOW", value)
    with pytest.raises(ValueError, match=r"SCREENING_CASCADE_BELOW") as error:
        cascade_below()
    assert says in str(error.value)
