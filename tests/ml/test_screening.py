"""The screening runtime against ngram-v1: interface, rules + model, hard cases, the default model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ml.screening import DEFAULT_MODEL, Screener, Screening, available_models, get_screener
from ml.training.datasets import CATEGORIES
from ml.training.evaluate import run_hard_cases

THRESHOLD = 0.7
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener.load("ngram-v1")


def test_results_follow_the_contract(screener: Screener) -> None:
    texts = ["good game everyone", "you're a worthless idiot", "i will kill you", ""]
    results = screener.screen(texts)
    assert len(results) == len(texts)
    for result in results:
        assert isinstance(result, Screening)
        assert 0.0 <= result.risk_score <= 1.0 and 0.0 <= result.confidence <= 1.0
        assert result.risk_category in CATEGORIES
        assert isinstance(result.flags, list) and all(isinstance(flag, str) for flag in result.flags)
        assert result.model_version == "ngram-v1+rules-1"
        assert result.embedding is None


def test_batch_results_match_single_results_in_order(screener: Screener) -> None:
    texts = ["gg wp", "kys", "nice shot", "you stupid clown", "what time is it", "send nudes"] * 5
    batched = screener.screen(texts)
    assert batched == [screener.screen([text])[0] for text in texts]


def test_empty_batch_and_mismatched_contexts(screener: Screener) -> None:
    assert screener.screen([]) == []
    with pytest.raises(ValueError, match="contexts"):
        screener.screen(["a", "b"], [["x"]])
    with pytest.raises(TypeError, match="texts\\[1\\]"):
        screener.screen(["a", None])  # type: ignore[list-item]


def test_a_model_that_reads_no_context_ignores_it(screener: Screener) -> None:
    assert not screener.reads_context
    texts = ["gg wp", "so true", "you stupid clown"]
    assert screener.screen(texts, [["all immigrants are criminals"], ["hello"], []]) == screener.screen(texts)


def test_unknown_model_name_names_the_available_ones() -> None:
    with pytest.raises(ValueError) as error:
        Screener.load("no-such-model")
    assert "no-such-model" in str(error.value) and "ngram-v1" in str(error.value)
    assert "ngram-v1" in available_models()
    with pytest.raises(ValueError):
        Screener.load("../ngram-v1")


def test_get_screener_loads_once_per_process() -> None:
    assert get_screener() is get_screener(DEFAULT_MODEL) is get_screener()


@pytest.mark.parametrize(
    "text",
    ["fuck this lag", "holy shit that was close", "shit, missed again", "this update is fucking garbage",
     "damn that was a good round"],
)
def test_profanity_alone_stays_below_the_threshold(screener: Screener, text: str) -> None:
    result = screener.screen([text])[0]
    assert result.risk_score < THRESHOLD, result


def test_rule_floor_sets_score_and_category(screener: Screener) -> None:
    threat, self_harm = screener.screen(["i will find you and end you", "k y s"])
    assert threat.risk_score >= 0.9 and threat.risk_category == "threat"
    assert self_harm.risk_score >= 0.9 and self_harm.risk_category == "self_harm"
    assert "evasion_obfuscated" in self_harm.flags


def test_context_changes_the_verdict(screener: Screener) -> None:
    alone, after_disclosure = screener.screen(["do it", "do it"], [[], ["i want to kill myself"]])
    assert alone.risk_score < THRESHOLD
    assert after_disclosure.risk_score >= THRESHOLD and after_disclosure.risk_category == "self_harm"


# ngram-v1 is the fast model: a bag of n-grams misses implicit derogation without telling words and
# reads an identity word as an attack (its model card says so); minilm-v5 passes the identity
# cases and misses the two implicit ones too. It reads "mods?" alone as hate (0.70).
KNOWN_HARD_CASE_MISSES = {"as a queer kid from a small town, this server is my safe place", "proud fag, prouder gamer",
                          "she only got mod because of diversity quotas", "not bad for a girl, i guess", "mods?",
                          # issue 13's examples that ngram-v1 gets wrong
                          "lol you absolute idiot, nice shot", "noob jungler", "wtf this team bunch of clowns",
                          "people like you should stick to cooking, not ranked", "you play like a girl"}


def test_hard_case_suite_passes_but_for_known_misses(screener: Screener) -> None:
    failures = {case.text: (case.group, result.risk_score, result.risk_category)
                for case, result, passed in run_hard_cases(screener, THRESHOLD) if not passed}
    assert set(failures) == KNOWN_HARD_CASE_MISSES, failures


def test_runtime_does_not_import_scikit_learn() -> None:
    code = ("import sys; from ml.screening import get_screener; get_screener().screen(['hi']); "
            "import ml.score; assert 'sklearn' not in sys.modules and 'scipy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
