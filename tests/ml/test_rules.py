"""Normalisation against evasion, and the rule checks that run beside the model."""

from __future__ import annotations

import pytest

from ml.normalise import normalise
from ml.rules import RuleResult, check


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("k y s", "kys"),
        ("y o u  s u c k", "you suck"),
        ("Y O U  A R E  A N  I D I O T", "you are an idiot"),
        ("k.y.s", "kys"),
        ("k 1 l l  y o u", "kill you"),
        ("you're a 1d10t", "you're a idiot"),
        ("n00b", "noob"),
        ("$hit", "shit"),
        ("b!tch", "bitch"),
        ("іdіот", "idiot"),  # noqa: RUF001 - Cyrillic lookalikes
        ("уоu ѕuck", "you suck"),  # noqa: RUF001 - Cyrillic lookalikes
        ("ｙｏｕ ｉｄｉｏｔ", "you idiot"),  # noqa: RUF001 - fullwidth, folded by NFKC
        ("k\u200by\u200bs", "kys"),  # zero-width spaces
        ("stuuuupid", "stupid"),
        ("kiiiilll yourself", "kill yourself"),  # squeezed, then the real double restored
        ("loooool", "lol"),
        ("that play was f***ing sick", "that play was fucking sick"),
        ("f*ck you", "fuck you"),
        ("s***", "shit"),
        ("a**hole", "asshole"),
        ("z̷a̷l̷g̷o̷ text", "zalgo text"),
    ],
)
def test_normalise_undoes_evasions(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "u r a noob",  # chat shorthand, not a spaced-out word
        "1v1 me on ps5",
        "3rd place, 10k points",
        "call me at 555-123-4567",  # digits in numbers are not leetspeak
        "i have $5",
        "@mike_99 good game",  # a mention is not leetspeak for "a"
        "привет друг",
        "c# is great",
        "#honda200 finished 2nd in 2014",  # digits next to letters are not always leetspeak
    ],
)
def test_normalise_leaves_ordinary_text_alone(text: str) -> None:
    assert normalise(text) == text.lower()


def _floor(text: str, context: tuple[str, ...] = ()) -> tuple[float | None, str | None]:
    result = check(text, context)
    return result.floor, result.floor_category


@pytest.mark.parametrize(
    "text",
    ["i will kill you", "i'm going to hurt you", "i will burn your house down", "hope you die",
     "watch your back", "someone should shoot you", "i'll beat you up after school"],
)
def test_explicit_threats_floor_at_threat(text: str) -> None:
    assert _floor(text) == (0.9, "threat")
    assert "explicit_threat" in check(text).flags


@pytest.mark.parametrize(
    "text",
    ["i would never kill you", "i'm not going to hurt you", "i'll kill you next round lol",
     "she said \"i will kill you\" and laughed", "i shot you a message", "i beat you lol"],
)
def test_negated_reported_quoted_or_gaming_threats_have_no_floor(text: str) -> None:
    assert check(text).floor is None


@pytest.mark.parametrize("text", ["kys", "k y s", "go kill yourself", "just kys loser", "nobody would miss you",
                                  "jump off a bridge", "drink bleach"])
def test_self_harm_encouragement(text: str) -> None:
    assert _floor(text) == (0.9, "self_harm")


@pytest.mark.parametrize(
    "text",
    ["please don't kill yourself", "he told me to kys, can a mod help", "stop saying kys it's not funny"],
)
def test_self_harm_counter_speech_is_not_encouragement(text: str) -> None:
    result = check(text)
    assert result.floor is None
    assert "negated_or_reported_self_harm" in result.flags


def test_egging_on_after_a_disclosure_uses_the_context() -> None:
    assert _floor("do it", ("i want to kill myself",)) == (0.9, "self_harm")
    assert _floor("do it", ("should i buy the skin?",)) == (None, None)


def test_self_harm_disclosure_but_not_hyperbole() -> None:
    assert _floor("i want to kill myself") == (0.75, "self_harm")
    assert check("i want to die lol this game").floor is None


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("i know where you live", "doxxing"),
        ("his number is 555-867-5309", "doxxing_phone"),
        ("call +44 7700 900123 now", "doxxing_phone"),
        ("she lives at 42 elm street", "doxxing_address"),
        ("your ip is 84.23.101.7", "doxxing_ip"),
    ],
)
def test_doxxing(text: str, flag: str) -> None:
    result = check(text)
    assert flag in result.flags
    assert result.floor is not None and result.floor >= 0.75


def test_a_phone_number_in_an_advert_is_spam() -> None:
    assert _floor("cheap gold at www.goldshop.com call 555-867-5309") == (0.8, "spam")


@pytest.mark.parametrize(
    "text",
    ["you're an idiot", "you stupid idiot", "@mike you're a worthless clown", "you suck", "fuck you",
     "nobody likes you", "ur garbage", "y o u  s u c k", "idiot @mike"],
)
def test_insults_aimed_at_a_person_are_targeting(text: str) -> None:
    result = check(text)
    assert "targeting_behavior" in result.flags
    assert (result.floor, result.floor_category) == (0.75, "targeted_harassment")


@pytest.mark.parametrize(
    "text",
    ["you're not an idiot", "i don't think you're stupid", "this game is trash", "your aim is trash",
     "ur garbage aim", "you stupid build", "@mike this map is trash", "i'm such an idiot",
     "you trash everything"],
)
def test_negated_insults_and_criticism_of_things_are_not_targeting(text: str) -> None:
    assert "targeting_behavior" not in check(text).flags


def test_two_insults_are_repeated_name_calling() -> None:
    assert "repeated_name_calling" in check("you're a moron and a loser").flags
    assert "repeated_name_calling" not in check("@mike you idiot").flags


def test_banter_is_capped() -> None:
    assert check("gg ez").ceiling == 0.2
    assert check("that play was f***ing sick").ceiling == 0.3
    borderline = check("lol you're trash at this game")
    assert borderline.ceiling == 0.65 and borderline.floor is None
    assert "banter_borderline" in borderline.flags


def test_a_threat_is_never_allowlisted_as_banter() -> None:
    result = check("gg ez, i know where you live")
    assert result.ceiling is None and result.floor == 0.9


def test_evasion_flag_only_when_normalisation_revealed_an_abusive_word() -> None:
    assert "evasion_obfuscated" in check("you are a 1d10t").flags
    assert "evasion_obfuscated" in check("k\u200by\u200bs").flags
    assert "evasion_obfuscated" not in check("you are an idiot").flags
    assert "evasion_obfuscated" not in check("h3ll0 everyone").flags


def test_sexual_solicitation_and_spam() -> None:
    assert _floor("send me nudes") == (0.8, "sexual_harassment")
    assert _floor("FREE NITRO at discord.gg/abc123 claim now") == (0.8, "spam")
    assert _floor("lol lol lol lol lol lol lol lol lol") == (0.72, "spam")


def test_ordinary_messages_raise_nothing() -> None:
    for text in ("anyone up for ranked tonight?", "brb getting food", "what time is the stream", ""):
        assert check(text) == RuleResult()


@pytest.mark.parametrize("text", ["shut the fuck up", "stfu", "fuck off", "Shut the fuck up.", "gtfo"])
def test_profanity_told_to_someone_is_not_capped_as_untargeted(text: str) -> None:
    result = check(text)
    assert result.ceiling is None and "untargeted_profanity" not in result.flags  # the model decides


@pytest.mark.parametrize("text", ["fuck this lag", "shit happens", "ugh fucking servers again"])
def test_profanity_at_nobody_is_still_capped(text: str) -> None:
    assert check(text).ceiling == 0.6


@pytest.mark.parametrize(
    "text",
    ["your stream is trash and so are you", "your aim is trash, just like you", "this game is trash and you too",
     "your build is garbage and you are too"],
)
def test_criticism_of_a_thing_does_not_excuse_an_insult_to_the_person(text: str) -> None:
    result = check(text)
    assert "criticism_of_thing" not in result.flags and result.ceiling is None
    assert (result.floor, result.floor_category) == (0.75, "targeted_harassment")


@pytest.mark.parametrize("text", ["your stream is trash", "your stream is trash and so is the chat",
                                  "your aim is trash like your ping"])
def test_criticism_of_things_alone_is_still_capped(text: str) -> None:
    result = check(text)
    assert "criticism_of_thing" in result.flags and result.ceiling == 0.6
