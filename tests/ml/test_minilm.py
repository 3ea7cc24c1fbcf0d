"""minilm-v1: encoder -> heads stacked on ngram-v1 -> rules, with the embedding in every result."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ml.datasets import CATEGORIES
from ml.encoder import get_encoder
from ml.evaluate import run_hard_cases
from ml.normalise import normalise
from ml.screening import Screener, available_models, get_screener

THRESHOLD = 0.7
REPO = Path(__file__).resolve().parents[2]
MODEL = "minilm-v1"


@pytest.fixture(scope="module")
def screener() -> Screener:
    return get_screener(MODEL)


def test_is_a_selectable_screening_model(screener: Screener, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MODEL in available_models() and "ngram-v1" in available_models()
    assert screener.model_version == "minilm-v1+rules-1"
    assert get_screener(MODEL) is screener
    monkeypatch.setenv("SCREENING_MODEL", MODEL)
    assert get_screener() is screener


def test_model_files_stay_small() -> None:
    total = sum(path.stat().st_size for path in (REPO / "ml" / "models").rglob("*") if path.is_file())
    assert (REPO / "ml" / "models" / MODEL / "model.onnx").stat().st_size < 1_000_000
    assert total < 50 * 1024 * 1024


def test_results_carry_the_embedding_of_the_normalised_text(screener: Screener) -> None:
    texts = ["good game everyone", "y0u r tr4sh", "i will kill you", ""]
    results = screener.screen(texts)
    assert len(results) == len(texts)
    for text, result in zip(texts, results, strict=True):
        assert result.risk_category in CATEGORIES and result.model_version == "minilm-v1+rules-1"
        assert isinstance(result.embedding, list) and len(result.embedding) == 384
        assert all(isinstance(value, float) for value in result.embedding)
        assert np.linalg.norm(result.embedding) == pytest.approx(1.0, abs=1e-3)
        expected = get_encoder().encode([normalise(text)])[0]
        assert np.allclose(result.embedding, expected, atol=1e-4)


def test_batch_results_match_single_results(screener: Screener) -> None:
    texts = ["gg wp", "kys", "nice shot", "you stupid clown", "what time is it", "send nudes"] * 3
    batched = screener.screen(texts)
    for text, result in zip(texts, batched, strict=True):
        single = screener.screen([text])[0]
        assert (single.risk_category, single.flags) == (result.risk_category, result.flags)
        assert single.risk_score == pytest.approx(result.risk_score, abs=1e-3)


@pytest.mark.parametrize(
    "text",
    ["gg ez noobs", "lmaooo that play was f***ing sick", "fuck yeah we finally won one",
     "you're not an idiot for missing that", "please stop telling people to kill themselves",
     "this update is fucking garbage"],
)
def test_banter_negation_and_counter_speech_stay_below_the_threshold(screener: Screener, text: str) -> None:
    assert screener.screen([text])[0].risk_score < THRESHOLD


@pytest.mark.parametrize(
    ("text", "category"),
    [("i know where you live and i'm coming over", "threat"), ("k y s", "self_harm"),
     ("y o u  s u c k  a n d  e v e r y o n e  h a t e s  y o u", None)],
)
def test_threats_and_evasions_are_flagged(screener: Screener, text: str, category: str | None) -> None:
    result = screener.screen([text])[0]
    assert result.risk_score >= THRESHOLD, result
    assert category is None or result.risk_category == category


# Known misses, each one a finding to fix rather than to hide: the rules flag the negated mention
# (negated_or_reported_self_harm) but set no ceiling, and the encoder reads "kys" as abuse.
KNOWN_HARD_CASE_MISSES = {"i would never tell anyone to kys"}


def test_hard_case_suite_passes_but_for_known_misses(screener: Screener) -> None:
    failures = {case.text: (case.group, result.risk_score, result.risk_category)
                for case, result, passed in run_hard_cases(screener, THRESHOLD) if not passed}
    assert set(failures) <= KNOWN_HARD_CASE_MISSES, failures


def test_runtime_does_not_import_scikit_learn_or_torch() -> None:
    code = (f"import sys; from ml.screening import get_screener; get_screener({MODEL!r}).screen(['hi']); "
            "assert not {'sklearn', 'scipy', 'torch'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_load_is_quick() -> None:
    started = time.perf_counter()
    Screener.load(MODEL)
    assert time.perf_counter() - started < 3.0


def test_score_cli_round_trip() -> None:
    lines = [json.dumps("gg wp"), json.dumps({"text": "i will kill you", "context": ["hi"]}), "{broken",
             json.dumps("k y s")]
    process = subprocess.run([sys.executable, "-m", "ml.score", "--model", MODEL], input="\n".join(lines).encode(),
                             cwd=REPO, capture_output=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr.decode()
    outputs = [json.loads(line) for line in process.stdout.decode().splitlines()]
    assert len(outputs) == len(lines) and set(outputs[2]) == {"error"}
    assert all(output["model_version"] == "minilm-v1+rules-1" for index, output in enumerate(outputs) if index != 2)
    assert outputs[0]["risk_score"] < THRESHOLD
    assert outputs[1]["risk_category"] == "threat" and outputs[3]["risk_category"] == "self_harm"
