"""The data side of ml.training.train_finetune: sampling weights and augmentation (no PyTorch needed)."""

from __future__ import annotations

import random

from ml.normalise import normalise
from ml.training.datasets import Example
from ml.training.hard_cases import CHALLENGE_CASES, HARD_CASES
from ml.training.train_finetune import (
    IDENTITIES,
    SHARE,
    add_identity,
    add_noise,
    augment,
    model_input,
    sampling_weights,
    without_test_cases,
)


def test_every_source_gets_its_share_of_the_draws() -> None:
    rows = ([Example(f"d{i}", "none", "davidson", f"d{i}") for i in range(900)]
            + [Example(f"s{i}", "none", "synthetic", f"s{i}") for i in range(100)])
    weights = sampling_weights(rows)
    assert abs(weights.sum() - 1.0) < 1e-9
    davidson, synthetic = weights[:900].sum(), weights[900:].sum()
    assert abs(davidson / synthetic - SHARE["davidson"] / SHARE["synthetic"]) < 1e-9


def test_identity_words_go_in_front_of_the_person_named() -> None:
    rng = random.Random(3)
    out = add_identity("my friends carried us tonight", rng)
    words = out.split()
    assert words[0] == "my" and words[1] in IDENTITIES and words[2:] == ["friends", "carried", "us", "tonight"]
    assert add_identity("nothing to see", rng) == "nothing to see"
    assert add_identity("what a player", random.Random(0)).split()[1] in ("a", "an")


def test_only_benign_messages_get_an_identity_word() -> None:
    rng = random.Random(5)
    abusive = Example("my teammates are trash", "targeted_harassment", "synthetic", "g")
    outputs = {augment(abusive, rng, 0.5) for _ in range(300)}
    assert not any(identity in output.split() for output in outputs for identity in IDENTITIES)
    benign = Example("my teammates are great", "none", "synthetic", "g")
    assert any(len(augment(benign, rng, 0.5).split()) == 5 for _ in range(300))
    assert all(len(augment(benign, rng).split()) <= 4 for _ in range(200))  # off by default


def test_a_spelling_accident_touches_one_word() -> None:
    rng = random.Random(11)
    text = "nobody wants you in this lobby anymore"
    changed_any = False
    for _ in range(50):
        noisy, words = add_noise(text, rng).split(), text.split()
        if len(noisy) == len(words):
            assert sum(a != b for a, b in zip(noisy, words, strict=True)) <= 1
        else:  # two words run together
            assert len(noisy) == len(words) - 1 and "".join(noisy) == "".join(words)
        changed_any |= noisy != words
    assert changed_any


def test_augmented_text_is_normalised_like_the_screener_reads_it() -> None:
    rng = random.Random(2)
    outputs = {augment(Example("Y0U are TR4SH", "targeted_harassment", "synthetic", "g"), rng) for _ in range(40)}
    assert normalise("Y0U are TR4SH") in outputs and all(output == output.lower() for output in outputs)


def test_test_cases_never_reach_training() -> None:
    rows = [Example(CHALLENGE_CASES[0].text.upper() + "!", "none", "synthetic", "a"),
            Example(HARD_CASES[0].text, "none", "synthetic", "b"),
            Example("a message no suite has", "none", "synthetic", "c")]
    assert [row.group for row in without_test_cases(rows)] == ["c"]


def test_a_message_is_read_with_the_turn_before_it_at_the_context_rate() -> None:
    rng = random.Random(4)
    reply = Example("So TRUE", "none", "toxichat", "g", ("first turn", "Nice Point"))
    drawn = [augment(reply, rng, context_rate=0.7) for _ in range(400)]
    paired = [item for item in drawn if isinstance(item, tuple)]
    assert {item[1] for item in paired} == {"nice point"} and 0.6 < len(paired) / len(drawn) < 0.8
    assert all(isinstance(augment(Example("alone", "none", "synthetic", "g"), rng), str) for _ in range(50))
    assert model_input(reply) == ("so true", "nice point") and model_input(Example("Hi", "none", "x", "g")) == "hi"


def test_agent_turns_are_benign_once_per_conversation_with_the_user_turn_before() -> None:
    from ml.training.datasets import DATA_DIR, load_convabuse_agent

    turns = list(load_convabuse_agent(DATA_DIR / "convabuse"))
    assert turns and {turn.label for turn in turns} == {"none"}
    assert {turn.source for turn in turns} == {"convabuse_agent"}
    assert len({(turn.group, turn.text) for turn in turns}) == len(turns)
    assert sum(bool(turn.context) for turn in turns) > len(turns) / 2
