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


# Shedding (screening behind): the worker asks for the cascade at SCREENING_SHED_BELOW for a batch.
MIXED = [*ORDINARY, "you are such a noob lol", "gg ez", "why would you even pick that hero", "report this guy",
         "i hope you lose every game", "uninstall the game you are trash", *THREATS]


def test_shedding_clears_more_and_says_which_it_would_have_read(transformer: Screener) -> None:
    shed_below = 0.45
    texts = [screening.normalise(t) for t in MIXED]
    companion_risk = transformer.companion.calibrate(transformer.companion.predict_proba(texts))
    normal = transformer.screen(MIXED)
    shed = transformer.screen(MIXED, shed_below=shed_below)
    middle = (companion_risk >= screening.CASCADE_BELOW) & (companion_risk < shed_below)
    assert middle.any() and (companion_risk >= shed_below).any(), f"the lines miss a setting: {companion_risk}"
    for text, before, after, second, between in zip(MIXED, normal, shed, companion_risk, middle, strict=True):
        if between and text not in THREATS:  # the transformer read it before; now the companion decides
            assert "cascade_cleared" not in before.flags and before.embedding is not None, text
            assert {"cascade_cleared", "shed_under_load"} <= set(after.flags) and after.embedding is None, text
        elif second < screening.CASCADE_BELOW:  # cleared anyway: no shedding flag, same verdict
            assert "shed_under_load" not in after.flags and after == before, text
        else:  # suspect to the companion (or raised by a rule): still read by the transformer, same verdict
            assert "cascade_cleared" not in after.flags and after == before, text
    assert all("cascade_cleared" not in r.flags and r.risk_score >= 0.9 for r in shed[-len(THREATS):])


def test_shedding_with_the_cascade_off_sheds_everything_under_the_setting(transformer: Screener) -> None:
    kept, transformer.cascade_below = transformer.cascade_below, 0.0
    try:
        results = transformer.screen(ORDINARY, shed_below=0.45)
    finally:
        transformer.cascade_below = kept
    assert any("shed_under_load" in r.flags for r in results)
    assert all(("shed_under_load" in r.flags) == ("cascade_cleared" in r.flags) for r in results)


def test_a_model_without_a_companion_ignores_shedding() -> None:
    ngram = Screener.load("ngram-v1")
    assert ngram.companion is None
    assert ngram.screen(MIXED, shed_below=0.6) == ngram.screen(MIXED)


def test_the_shedding_flag_is_about_the_model_never_severity() -> None:
    from app.fallback import NOT_RULES

    assert "shed_under_load" in screening.TRUST_FLAGS and "shed_under_load" in NOT_RULES
