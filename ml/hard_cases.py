"""A hand-written suite of chat messages the screener must get right, grouped by phenomenon.

They were written for this project, worded differently from the training templates in
ml/synth.py, and are never trained on. ``flagged`` means risk >= the screening threshold (0.7);
``category``, when given, is the category a flagged message must carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HardCase:
    group: str
    text: str
    flagged: bool
    category: str | None = None
    context: tuple[str, ...] = field(default=())


def _cases(group: str, flagged: bool, texts: tuple[str, ...], category: str | None = None) -> list[HardCase]:
    return [HardCase(group, text, flagged, category) for text in texts]


HARD_CASES: list[HardCase] = [
    *_cases("banter", False, (
        "gg ez noobs",
        "ez clap, gg",
        "lmaooo that play was f***ing sick",
        "holy shit what a shot",
        "fuck yeah we finally won one",
        "lol get rekt",
        "bro that was so damn clean",
        "lol you're trash at this game",
        "damn you're cracked at this",
    )),
    *_cases("negation", False, (
        "you're not an idiot for missing that",
        "nobody here thinks you're stupid",
        "you are not a loser, you just had a bad game",
        "i don't think you're dumb at all",
        "honestly you're no idiot",
    )),
    *_cases("counter_speech", False, (
        "someone told me to kys in dms, what do i do?",
        "reporting @vex for saying he'd kill me",
        "please stop telling people to kill themselves",
        "calling her a whore is not ok",
        "\"go die\" is not an acceptable thing to say here",
        "i would never tell anyone to kys",
    )),
    *_cases("threat_without_profanity", True, (
        "i'm going to hurt you when i see you",
        "i know where you live and i'm coming over",
        "better sleep with one eye open tonight",
        "you are going to die slowly",
        "i will find you after school and end you",
        "someone should shoot you",
        "i will burn your house down",
    ), "threat"),
    *_cases("obfuscated_insult", True, (
        "y o u  a r e  a  l o s e r",
        "ur a fr3akin 1d10t",
        "уоu аrе а mоrоn",  # noqa: RUF001 - Cyrillic lookalikes
        "you st\u200bupid cl\u200bown",
        "you're such a b*tch",
    ), "targeted_harassment"),
    *_cases("obfuscated_self_harm", True, ("k.y.s", "go k1ll y0urs3lf", "k y s"), "self_harm"),
    *_cases("thing_not_person", False, (
        "this map is trash",
        "your aim is garbage today",
        "the matchmaking is so stupid",
        "that update was idiotic",
        "this patch is fucking garbage",
    )),
    *_cases("person", True, (
        "you are garbage",
        "@mira you're a worthless clown",
        "you stupid idiot",
        "everyone hates you, just leave",
    ), "targeted_harassment"),
    *_cases("self_harm", True, (
        "nobody would even care if you died",
        "just end yourself already",
        "i really want to kill myself tonight",
    ), "self_harm"),
    *_cases("hyperbole", False, (
        "this boss makes me want to die lol",
        "i'm dead 💀 that clip",
        "we got slaughtered last round",
    )),
    *_cases("spam", True, ("FREE V-BUCKS at fast-vbucks.xyz claim now",), "spam"),
    *_cases("sexual", True, ("send nudes pls", "show me your tits"), "sexual_harassment"),
    *_cases("doxxing", True, ("his number is 555-867-5309 call him lol", "i know where you live")),
    HardCase("context", "do it", True, "self_harm", ("i want to kill myself",)),
    HardCase("context", "do it", False, None, ("should i buy the new skin?",)),
]
