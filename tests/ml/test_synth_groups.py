"""ml.training.synth_groups: templated identity-group messages, hateful and their non-hateful look-alikes."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from ml.training import synth_groups
from ml.training.datasets import CATEGORIES, Example

GROUP = re.compile(r"^synthetic:groups:(\w+):(\d+)$")


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return synth_groups.generate()


def test_is_deterministic_for_a_seed(examples: list[Example]) -> None:
    assert synth_groups.generate() == examples
    assert synth_groups.generate(synth_groups.SEED) == examples
    assert synth_groups.generate(7) == synth_groups.generate(7)
    assert synth_groups.generate(7) != examples


def test_labels_are_categories_and_rows_are_synthetic(examples: list[Example]) -> None:
    assert set(synth_groups.TEMPLATES) <= set(CATEGORIES)
    assert {example.label for example in examples} == {"hate", "threat", "none", "profanity"}
    assert all(example.source == "synthetic" and example.context == () for example in examples)


def test_each_template_is_its_own_group(examples: list[Example]) -> None:
    for templates in synth_groups.TEMPLATES.values():
        assert len(set(templates)) == len(templates), "a template is listed twice"
    seen: set[tuple[str, int]] = set()
    for example in examples:
        match = GROUP.match(example.group)
        assert match, example.group
        category, index = match.group(1), int(match.group(2))
        assert category == example.label
        assert index < len(synth_groups.TEMPLATES[category])
        seen.add((category, index))
    # Every template yields messages, and no two templates share a group.
    expected = {(category, index) for category, templates in synth_groups.TEMPLATES.items()
                for index in range(len(templates))}
    assert seen == expected
    assert len({example.group for example in examples}) == len(expected)


def test_many_templates_on_both_sides() -> None:
    counts = {category: len(templates) for category, templates in synth_groups.TEMPLATES.items()}
    assert counts["hate"] >= 80
    assert counts["threat"] >= 20
    assert counts["none"] >= 120
    assert counts["none"] >= counts["hate"] + counts["threat"] - 10
    assert sum(counts.values()) >= 150


def test_none_outnumbers_hate_and_threat(examples: list[Example]) -> None:
    counts = Counter(example.label for example in examples)
    assert counts["none"] >= counts["hate"] + counts["threat"]
    assert counts["profanity"] > 100
    assert 3000 <= len(examples) <= 6000


def test_texts_are_filled_short_and_unique(examples: list[Example]) -> None:
    texts = [example.text for example in examples]
    assert len(set(texts)) == len(texts)
    for text in texts:
        assert text.strip(), "empty message"
        assert len(text) <= 200, text
        assert "{" not in text and "}" not in text, text


def test_slurs_and_hateful_claims_appear_on_both_sides(examples: list[Example]) -> None:
    """The same words must occur in hate and in counter-speech, reports and reclaimed use."""
    slurs = re.compile(r"\b(?:faggot|nigger|kike|tranny|spic|dyke)s?\b")
    vermin = re.compile(r"\b(?:vermin|cockroaches|parasites)\b")
    for pattern in (slurs, vermin):
        labels = {example.label for example in examples if pattern.search(example.text.lower())}
        assert {"hate", "none"} <= labels


def test_some_messages_are_evaded(examples: list[Example]) -> None:
    hateful = [example.text for example in examples if example.label in ("hate", "threat")]
    spaced = re.compile(r"\b(?:\w[ .]){3,}\w\b")
    assert sum(bool(spaced.search(text)) for text in hateful) > 20
    assert sum(bool(re.search(r"[a-z][0-9*@#][a-z]", text)) for text in hateful) > 50
