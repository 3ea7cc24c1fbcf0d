"""Abstaining honestly: a message the model cannot read well gets a low confidence and the
model_uncertain flag, which sends any decision on it to a person (app.pipeline.act, app.fallback)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.screening import TRUST_FLAGS, UNCERTAIN_BELOW, familiarity, get_screener, unfamiliar_share

# Ordinary game chat the shipped models once called severe with confidence (issue 13): whatever
# score a model gives them, none may be confident enough for an automatic sanction.
ORDINARY_GAME_CHAT = ["go finish it im afk", "gg wp commend me", "stay afk then", "finish him", "nise play",
                      "ff at 15 pls", "omw bot lane", "wp ez clap", "im lagging so hard rn", "can u ward drag"]


@pytest.fixture(scope="module")
def screener():  # type: ignore[no-untyped-def]
    return get_screener()


def _share(screener, text: str) -> float:  # type: ignore[no-untyped-def]
    encoding = screener._tokenizer.encode(text)
    return unfamiliar_share(encoding.word_ids, encoding.sequence_ids, encoding.ids)


def test_words_the_vocabulary_cuts_into_pieces_count_as_unfamiliar(screener):  # type: ignore[no-untyped-def]
    assert _share(screener, "thank you for the game") == 0.0
    assert _share(screener, "nise play") == pytest.approx(0.5)  # "nise" -> ni ##se
    assert _share(screener, "xqzzv wpqq") == 1.0


def test_the_turn_before_does_not_count(screener):  # type: ignore[no-untyped-def]
    encoding = screener._tokenizer.encode("thank you", "xqzzv wpqq")
    assert unfamiliar_share(encoding.word_ids, encoding.sequence_ids, encoding.ids) == 0.0


def test_short_messages_and_disagreeing_models_lower_the_trust():
    risk = np.array([0.95, 0.95, 0.95])
    second = np.array([0.9, 0.3, 0.9])
    plain, disagree, short = familiarity(["you are a disgrace to this team", "you are a disgrace to this team",
                                          "disgrace"], None, risk, second)
    assert plain.factor == 1.0 and plain.flags == ()
    assert disagree.factor < 0.5 and disagree.flags == ("models_disagree",)
    assert short.factor < 1.0 and short.flags == ("short_message",)
    assert set(disagree.flags + short.flags) <= TRUST_FLAGS


def test_ordinary_game_chat_is_never_confident_enough_for_a_sanction(screener):  # type: ignore[no-untyped-def]
    results = screener.screen(ORDINARY_GAME_CHAT)
    risky = [(text, result) for text, result in zip(ORDINARY_GAME_CHAT, results, strict=True)
             if result.risk_score >= 0.7]
    for text, result in risky:
        assert "model_uncertain" in result.flags, (text, result)
        assert result.confidence < UNCERTAIN_BELOW, (text, result)


def test_a_clear_insult_read_well_stays_confident(screener):  # type: ignore[no-untyped-def]
    [result] = screener.screen(["you are a worthless piece of trash and everyone here hates you"])
    assert result.risk_score >= 0.9 and result.confidence >= 0.6
    assert "model_uncertain" not in result.flags
