"""ml.training.synth_people: templated chat about people, both directions, one group per template."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from ml.lexicon import PROFANITY
from ml.training import hard_cases, synth, synth_people
from ml.training.datasets import BENIGN, CATEGORIES, Example

HARMFUL = ("targeted_harassment", "threat", "self_harm", "sexual_harassment", "spam")
MIN_TEMPLATES = {"targeted_harassment": 40, "threat": 20, "self_harm": 15, "sexual_harassment": 15,
                 "spam": 10, "profanity": 25, "none": 80}
GROUP = re.compile(r"^synthetic:people:([a-z_]+):(\d+)$")


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return synth_people.generate()


def test_is_deterministic_and_seeded(examples: list[Example]) -> None:
    assert synth_people.generate() == examples
    assert synth_people.generate(seed=1) != examples


def test_labels_sources_and_size(examples: list[Example]) -> None:
    labels = Counter(example.label for example in examples)
    assert set(labels) <= set(CATEGORIES)
    assert "hate" not in labels  # identity groups are ml.training.synth_groups' job
    assert {example.source for example in examples} == {"synthetic"}
    assert 4000 <= len(examples) <= 7000
    assert len({example.text for example in examples}) == len(examples)


def test_every_template_is_its_own_group(examples: list[Example]) -> None:
    labels_by_group: dict[str, set[str]] = defaultdict(set)
    for example in examples:
        match = GROUP.match(example.group)
        assert match, example.group
        category, index = match.group(1), int(match.group(2))
        assert category == example.label
        assert index < len(synth_people.TEMPLATES[category])
        labels_by_group[example.group].add(example.label)
    assert all(len(labels) == 1 for labels in labels_by_group.values())
    templates = sum(len(templates) for templates in synth_people.TEMPLATES.values())
    assert len(labels_by_group) == templates >= 180  # every template yields something
    assert min(Counter(example.group for example in examples).values()) >= 3


def test_templates_are_distinct_and_new() -> None:
    mine = [template.lstrip("=") for templates in synth_people.TEMPLATES.values() for template in templates]
    assert len(mine) == len(set(mine))
    theirs = {template for templates in synth.TEMPLATES.values() for template in templates}
    assert not set(mine) & theirs
    for category, minimum in MIN_TEMPLATES.items():
        assert len(synth_people.TEMPLATES[category]) >= minimum, category
    slots = {slot for template in mine for slot in re.findall(r"\{(\w+)\}", template)}
    assert slots <= set(synth_people.SLOTS)


def test_benign_side_is_at_least_as_large(examples: list[Example]) -> None:
    benign = sum(example.label in BENIGN for example in examples)
    assert benign >= len(examples) - benign
    benign_templates = sum(len(synth_people.TEMPLATES[category]) for category in BENIGN)
    assert benign_templates >= sum(len(synth_people.TEMPLATES[category]) for category in HARMFUL)


def test_texts_are_clean_chat_lines(examples: list[Example]) -> None:
    for example in examples:
        assert 0 < len(example.text) <= 200, example.text
        assert not re.search(r"\{\w+\}", example.text), example.text
        assert not example.text.startswith("="), example.text
        assert example.text == " ".join(example.text.split()), example.text


def test_evaluation_cases_are_never_emitted_word_for_word(examples: list[Example]) -> None:
    def key(text: str) -> str:
        return " ".join(text.casefold().split()).strip(" .!?")

    cases = (*hard_cases.HARD_CASES, *getattr(hard_cases, "CHALLENGE_CASES", ()))
    emitted = {key(example.text) for example in examples}
    assert not emitted & {key(case.text) for case in cases}


def test_covers_both_sides_of_the_contrasts(examples: list[Example]) -> None:
    by_label: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        by_label[example.label].append(example.text.lower())

    def share_without_profanity(label: str) -> float:
        texts = by_label[label]
        clean = [text for text in texts if not set(re.findall(r"[a-z]+", text)) & PROFANITY]
        return len(clean) / len(texts)

    # harm without swear words, and benign messages that quote or joke about harm
    assert share_without_profanity("threat") > 0.95
    assert share_without_profanity("targeted_harassment") > 0.9
    assert any("kys" in text or "k y s" in text for text in by_label["none"])
    assert any("kill" in text or "murder" in text for text in by_label["none"])
    assert any(text.startswith(("i'm such a", "im such a")) for text in by_label["none"])
    assert any("you're not" in text for text in by_label["none"])
    assert any("you're not" in text for text in by_label["targeted_harassment"])
    assert len(by_label["profanity"]) >= 500
    # spelling evasions on the harmful side, and some misspellings on the benign side too
    evaded = re.compile(r"[a-z][0-9*][a-z]|\b\w (\w )+\w\b|\w[.\-_]\w[.\-_]\w")
    for label in ("targeted_harassment", "threat", "self_harm", "sexual_harassment"):
        assert sum(bool(evaded.search(text)) for text in by_label[label]) >= 20, label
    assert sum(bool(evaded.search(text)) for text in by_label["none"]) >= 20
