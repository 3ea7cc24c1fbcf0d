"""The challenge suite (ml.training.hard_cases.CHALLENGE_CASES) is well formed, and ml.training.evaluate tabulates it.

Nothing here asserts how well a model does on the suite: it estimates generalisation and is reported
by ``python -m ml.training.evaluate --only-challenge``, never a gate.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

import numpy as np

from ml.training.datasets import BENIGN, CATEGORIES
from ml.training.evaluate import format_challenge
from ml.training.hard_cases import CHALLENGE_CASES, HARD_CASES

FLAGGED_GROUPS = {
    "derogation_explicit", "dehumanisation", "implicit_derogation", "negated_positive", "hate_as_question",
    "hate_as_opinion", "threat_to_group", "threat_to_person_no_profanity", "slur_attack", "insult_no_profanity",
    "insult_with_profanity", "condescension", "self_harm_encouragement", "self_harm_disclosure",
    "sexual_harassment", "doxxing", "spam_scam", "spelling_evasion", "abuse_with_friendly_dressing",
}
UNFLAGGED_GROUPS = {
    "neutral_identity", "positive_identity", "reclaimed_terms", "counter_speech_quote", "counter_speech_direct",
    "reporting_abuse", "negated_insult", "negated_hate", "friendly_profanity", "gamer_banter",
    "compliment_with_profanity", "self_deprecation", "gaming_violence_and_hyperbole", "abuse_at_things",
    "criticism_of_ideas_not_people", "disagreement_polite", "support_and_mental_health", "ordinary_chat",
}


def _key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def test_suite_has_every_group_with_enough_cases() -> None:
    sizes = Counter(case.group for case in CHALLENGE_CASES)
    assert set(sizes) == FLAGGED_GROUPS | UNFLAGGED_GROUPS
    assert all(size >= 10 for size in sizes.values()), sizes
    assert 350 <= len(CHALLENGE_CASES) <= 500


def test_each_group_wants_one_decision() -> None:
    for case in CHALLENGE_CASES:
        assert case.flagged == (case.group in FLAGGED_GROUPS), case


def test_flagged_and_unflagged_are_balanced() -> None:
    share = sum(case.flagged for case in CHALLENGE_CASES) / len(CHALLENGE_CASES)
    assert 0.4 <= share <= 0.6, share


def test_categories_are_valid_and_only_on_flagged_cases() -> None:
    harmful = set(CATEGORIES) - BENIGN
    for case in CHALLENGE_CASES:
        if case.flagged:
            assert case.category is None or case.category in harmful, case
        else:
            assert case.category is None, case
    # most flagged cases name the category a moderator would agree on
    named = [case for case in CHALLENGE_CASES if case.flagged and case.category]
    assert len(named) >= 0.75 * sum(case.flagged for case in CHALLENGE_CASES)


def test_texts_are_unique_non_empty_and_disjoint_from_the_hard_cases() -> None:
    texts = [case.text for case in CHALLENGE_CASES]
    assert all(text.strip() and text == text.strip() for text in texts)
    assert all(case.context == () for case in CHALLENGE_CASES)
    keys = [_key(text) for text in texts]
    assert [key for key, count in Counter(keys).items() if count > 1] == []
    assert set(keys).isdisjoint(_key(case.text) for case in HARD_CASES)


def test_groups_are_contiguous() -> None:
    groups = [case.group for case in CHALLENGE_CASES]
    runs = [group for index, group in enumerate(groups) if index == 0 or groups[index - 1] != group]
    assert len(runs) == len(set(runs))


def test_format_challenge_counts_passes_recall_and_false_positives() -> None:
    truth = np.array([case.flagged for case in CHALLENGE_CASES])
    perfect = (np.where(truth, 0.9, 0.1), [case.category if case.flagged else "none" for case in CHALLENGE_CASES])
    flag_all = (np.full(len(CHALLENGE_CASES), 0.95), [None] * len(CHALLENGE_CASES))
    table = format_challenge({"perfect": perfect, "flag-all": flag_all}, 0.7)
    lines = {line.split()[0]: line.split() for line in table.splitlines()[3:]}
    n = len(CHALLENGE_CASES)
    assert lines["total"][-4:] == [f"{n}/{n}", "(100%)", f"{truth.sum()}/{n}", f"({truth.sum() / n:.0%})"]
    assert lines["negated_hate"][-2:] == ["0/12", "(0%)"]
    recall = next(line for line in table.splitlines() if line.startswith("recall"))
    fpr = next(line for line in table.splitlines() if line.startswith("fpr"))
    assert recall.split()[-2:] == ["1.000", "1.000"] and fpr.split()[-2:] == ["0.000", "1.000"]
