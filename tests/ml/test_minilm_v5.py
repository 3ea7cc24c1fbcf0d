"""minilm-v5: MiniLM fine-tuned end to end, reading a message with the turn before it; one ONNX graph
for probabilities and embedding, plus rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.screening import DEFAULT_MODEL, Screener, available_models, get_screener
from ml.training.datasets import CATEGORIES
from ml.training.evaluate import run_hard_cases

THRESHOLD = 0.7
REPO = Path(__file__).resolve().parents[2]
MODEL = "minilm-v5"
FOLDER = REPO / "ml" / "models" / MODEL


@pytest.fixture(scope="module")
def screener() -> Screener:
    return get_screener(MODEL)


def test_is_the_default_and_carries_its_version(screener: Screener) -> None:
    assert DEFAULT_MODEL == MODEL and MODEL in available_models()
    assert screener.model_version == f"{MODEL}+rules-1"
    meta = json.loads((FOLDER / "meta.json").read_text())
    assert meta["architecture"] == "transformer" and meta["categories"] == list(CATEGORIES)
    assert meta["heldout"]["per_source"]["all real sources"]["model+rules"]["n"] > 1000  # measured in training


def test_model_files_stay_under_50_mb() -> None:
    total = sum(path.stat().st_size for path in (REPO / "ml" / "models").rglob("*") if path.is_file())
    assert total < 50 * 1024 * 1024, total


def test_results_carry_a_unit_embedding_of_the_normalised_text(screener: Screener) -> None:
    texts = ["good game everyone", "y0u are tr4sh", "you are trash", "i will kill you", ""]
    results = screener.screen(texts)
    for result in results:
        assert result.risk_category in CATEGORIES and 0 <= result.risk_score <= 1
        assert isinstance(result.embedding, list) and len(result.embedding) == 384
        assert np.linalg.norm(result.embedding) == pytest.approx(1.0, abs=1e-3)
        assert result.embedding_model == f"{MODEL}-embedding"
    evasion, plain = np.array(results[1].embedding), np.array(results[2].embedding)
    assert float(evasion @ plain) > 0.999  # leetspeak is undone before the model reads it
    assert np.allclose(screener.embed(["y0u are tr4sh"])[0], evasion, atol=1e-5)


def test_similar_messages_are_closer_than_unrelated_ones(screener: Screener) -> None:
    insult, similar, other = screener.embed(["you are a worthless idiot", "ur such a useless moron",
                                             "what time does the tournament start tomorrow"])
    assert float(insult @ similar) > float(insult @ other) + 0.2


def test_batch_results_match_single_results(screener: Screener) -> None:
    texts = ["gg wp", "kys", "nice shot", "you stupid clown", "what time is it", "send nudes",
             "this is a much longer message about the new patch notes and what they change for ranked"] * 3
    batched = screener.screen(texts)
    for text, result in zip(texts, batched, strict=True):
        single = screener.screen([text])[0]
        assert (single.risk_category, single.flags) == (result.risk_category, result.flags)
        assert single == result  # one message per run: a score never depends on its batch


def test_the_turn_before_decides_what_agreeing_means(screener: Screener) -> None:
    hateful, harmless = "women are too stupid to be allowed to vote", "the new patch finally fixed the lag"
    alone, after_hate, after_patch = screener.screen(["so true"] * 3, [[], [hateful], [harmless]])
    assert screener.reads_context
    assert after_hate.risk_score >= THRESHOLD > 0.5 > max(alone.risk_score, after_patch.risk_score)
    assert screener.screen(["Well said."])[0].risk_score < 0.5  # minilm-v2 read agreeing itself as hate (0.63)


def test_only_the_last_turn_is_read_and_batches_match_singles_with_context(screener: Screener) -> None:
    texts = ["so true", "you are a worthless idiot", "gg wp", "well said"]
    contexts = [["hi", "women are too stupid to be allowed to vote"], ["good morning"], [],
                ["all immigrants are criminals"]]
    batched = screener.screen(texts, contexts)
    assert batched == [screener.screen([text], [context])[0] for text, context in zip(texts, contexts, strict=True)]
    assert screener.screen(["so true"], [["women are too stupid to be allowed to vote"]]) == batched[:1]
    with pytest.raises(TypeError, match=r"contexts\[1\]\[-1\]"):
        screener.screen(["a", "b"], [["x"], [None]])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "text",
    ["gg ez noobs", "lmaooo that play was f***ing sick", "fuck yeah we finally won one",
     "you're not an idiot for missing that", "please stop telling people to kill themselves",
     "this update is fucking garbage", "proud to be gay and a gamer", "my muslim friends carried us tonight"],
)
def test_banter_negation_counter_speech_and_identity_stay_below_the_threshold(screener: Screener, text: str) -> None:
    assert screener.screen([text])[0].risk_score < THRESHOLD


@pytest.mark.parametrize(
    ("text", "category"),
    [("i know where you live and i'm coming over", "threat"), ("k y s", "self_harm"),
     ("y o u  s u c k  a n d  e v e r y o n e  h a t e s  y o u", None),
     ("nobody would care if you disappeared, you worthless clown", None)],
)
def test_threats_insults_and_evasions_are_flagged(screener: Screener, text: str, category: str | None) -> None:
    result = screener.screen([text])[0]
    assert result.risk_score >= THRESHOLD, result
    assert category is None or result.risk_category == category


# Known misses, each a finding to fix rather than to hide (minilm-v5; minilm-v4 missed 15):
# - sexist put-downs with no insult word in them ("diversity quotas" 0.59, "not bad for a girl"
#   0.57, "stick to cooking" 0.50) land under the threshold, though no longer read as plain chat;
# - small talk read after a blatant insult takes the insult's score (0.72-0.98): ToxiChat labels a
#   reply offensive when it agrees with an offensive turn, and a short reply reads as agreeing. At
#   run time a message is read with the turn between the same two people only (see
#   app.sessions.queue_turns), so "brb" to the room is read alone, and the session model damps a
#   victim answering their harasser; a bystander's "gg all" sent to the harasser is still raised;
# - "proud fag, prouder gamer" (a reclaimed term) reads as hate again, as minilm-v3 did;
# - issue 13's game chat: "go finish it im afk", "stay afk then", "finish him" still score >= 0.7
#   (all three come back model_uncertain, so a person decides; tests/ml/test_abstention.py), the
#   banter "lol you absolute idiot, nice shot" is floored by the targeted-insult rule, and game
#   insults without an insult word in the lexicon ("bunch of clowns", "noob jungler", "uninstall",
#   "you play like a girl") stay under it; "go back to the kitchen" is flagged as harassment, not
#   as the sexism it is. "gg wp commend me" and "nise play", called severe by
#   minilm-v4, now pass.
KNOWN_HARD_CASE_MISSES = {"she only got mod because of diversity quotas", "not bad for a girl, i guess", "gg all",
                          "good morning all, coffee first", "brb, grabbing food", "anyone up for another round?",
                          "ok so what is everyone playing tonight", "proud fag, prouder gamer",
                          "people like you should stick to cooking, not ranked",
                          "go finish it im afk", "stay afk then", "finish him", "lol you absolute idiot, nice shot",
                          "wtf this team bunch of clowns", "noob jungler", "why do you always feed, uninstall",
                          "you play like a girl", "go back to the kitchen"}


def test_hard_case_suite_passes_but_for_known_misses(screener: Screener) -> None:
    failures = {case.text: (case.group, result.risk_score, result.risk_category)
                for case, result, passed in run_hard_cases(screener, THRESHOLD) if not passed}
    assert set(failures) == KNOWN_HARD_CASE_MISSES, failures


def test_runtime_does_not_import_scikit_learn_or_torch() -> None:
    code = (f"import sys; from ml.screening import get_screener; get_screener({MODEL!r}).screen(['hi']); "
            "assert not {'sklearn', 'scipy', 'torch', 'transformers'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_score_cli_round_trip() -> None:
    lines = [json.dumps("gg wp"), json.dumps({"text": "i will kill you", "context": ["hi"]}), "{broken",
             json.dumps("k y s")]
    process = subprocess.run([sys.executable, "-m", "ml.score", "--model", MODEL], input="\n".join(lines).encode(),
                             cwd=REPO, capture_output=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr.decode()
    outputs = [json.loads(line) for line in process.stdout.decode().splitlines()]
    assert len(outputs) == len(lines) and set(outputs[2]) == {"error"}
    assert all(output["model_version"] == f"{MODEL}+rules-1" for index, output in enumerate(outputs) if index != 2)
    assert outputs[0]["risk_score"] < THRESHOLD
    assert outputs[1]["risk_category"] == "threat" and outputs[3]["risk_category"] == "self_harm"
