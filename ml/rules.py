"""Deterministic checks that run beside the model: explicit threats, self-harm encouragement,
doxxing, sexual demands, spam, who an insult is aimed at, and friendly banter.

A character n-gram model is weak exactly where a moderator most needs certainty (a threat with
no swear word in it, "k y s", a phone number) and too strong on friendly profanity ("that play
was f***ing sick"). Rules fix those two ends: a hit returns a *floor* on the risk (and the
category that floor stands for), an allow-listed phrase returns a *ceiling*, and every hit
becomes a flag the moderator can read. The model decides everything in between.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

from ml import rule_patterns as pat
from ml.lexicon import (
    BANTER_TOKENS,
    GAMING_CONTEXT,
    INSULT_ADJECTIVES,
    INSULTS,
    PROFANITY,
    THINGS,
    VERB_LIKE_INSULTS,
)
from ml.normalise import basic_fold, normalise

RULES_VERSION = "rules-1"

# Severity order, most severe first: when a rule and the model disagree, the worse one names it.
SEVERITY: tuple[str, ...] = (
    "threat",
    "self_harm",
    "sexual_harassment",
    "hate",
    "targeted_harassment",
    "spam",
    "profanity",
    "none",
)

@dataclass(frozen=True)
class RuleResult:
    """What the rules concluded about one message.

    ``floor`` lifts the risk to at least that value with ``floor_category``; ``ceiling`` caps it
    (friendly banter). Both are ``None`` when no rule was sure enough to overrule the model.
    """

    flags: tuple[str, ...] = ()
    floor: float | None = None
    floor_category: str | None = None
    ceiling: float | None = None


_NOTHING = RuleResult()


@dataclass
class _Findings:
    flags: list[str]
    floors: list[tuple[float, str]]
    ceiling: float | None = None

    def hit(self, flag: str, floor: float | None = None, category: str | None = None) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
        if floor is not None and category is not None:
            self.floors.append((floor, category))


def check(text: str, context: Sequence[str] = (), normalised: str | None = None) -> RuleResult:
    """Run every rule on one message; ``context`` holds the preceding messages, oldest first."""
    norm = normalise(text) if normalised is None else normalised
    folded = basic_fold(text)
    words = frozenset(pat.WORD.findall(norm))
    if not context and norm == folded and pat.ANY_KEY.isdisjoint(words) and not pat.ANY_CUE.search(folded):
        return _flood_only(folded)  # most chat: nothing any rule below could match
    unquoted = pat.QUOTED.sub(" ", norm) if ('"' in norm or "“" in norm or "«" in norm) else norm
    found = _Findings(flags=[], floors=[])
    if unquoted != norm and any(chain(pat.THREATS.matches(words, norm), pat.SELF_HARMS.matches(words, norm))):
        found.hit("quoted_abuse")
    _check_threats(unquoted, words, found)
    _check_self_harm(unquoted, words, context, found)
    _check_doxxing(folded, unquoted, words, found)
    if not pat.SEXUAL_KEYS.isdisjoint(words):
        _check_sexual(unquoted, found)
    _check_spam(folded, unquoted, found)
    targeted = not pat.TARGET_KEYS.isdisjoint(words) and _check_targeting(unquoted, words, found)
    if norm != folded:
        _check_evasion(folded, words, found)
    _check_banter(unquoted, words, targeted, found)
    if not PROFANITY.isdisjoint(words):
        found.hit("profanity")
    return _result(found)


def _flood_only(folded: str) -> RuleResult:
    found = _Findings(flags=[], floors=[])
    _check_flooding(folded, found)
    return _result(found) if found.flags else _NOTHING


def _result(found: _Findings) -> RuleResult:
    if not found.floors:
        return RuleResult(flags=tuple(found.flags), ceiling=found.ceiling)
    floor, category = max(found.floors, key=lambda item: (item[0], -SEVERITY.index(item[1])))
    return RuleResult(flags=tuple(found.flags), floor=floor, floor_category=category)


def _clause_before(text: str, start: int) -> str:
    """The words just before ``start``, back to the previous clause break ("," "." "!" ...)."""
    before = text[max(0, start - pat.LOOKBACK) : start]
    return pat.CLAUSE_BREAK.split(before)[-1]


def _negated_or_reported(text: str, start: int, end: int | None = None) -> bool:
    """True when the match itself, or its clause just before it, negates or reports it."""
    before = _clause_before(text, start)
    inside = text[start:end] if end is not None else ""
    return bool(pat.NEGATION.search(before) or pat.NEGATION.search(inside) or pat.REPORTED.search(before))


def _check_threats(text: str, words: frozenset[str], found: _Findings) -> None:
    for match in pat.THREATS.matches(words, text):
        if _negated_or_reported(text, match.start(), match.end()):
            found.hit("negated_or_reported_threat")
            continue
        if not GAMING_CONTEXT.isdisjoint(words):
            found.hit("gaming_trash_talk")
            continue
        found.hit("explicit_threat", 0.9, "threat")
        return


def _check_self_harm(
    text: str, words: frozenset[str], context: Sequence[str], found: _Findings
) -> None:
    for match in pat.SELF_HARMS.matches(words, text):
        if _negated_or_reported(text, match.start()):
            found.hit("negated_or_reported_self_harm")
            continue
        found.hit("self_harm_encouragement", 0.9, "self_harm")
        break
    disclosed = not pat.DISCLOSURE_KEYS.isdisjoint(words) and pat.DISCLOSURE.search(text)
    if disclosed and not pat.HYPERBOLE.search(text):
        found.hit("self_harm_disclosure", 0.75, "self_harm")
    if context and pat.EGGING_ON.search(text):
        recent = [normalise(message) for message in context[-3:]]
        if any(pat.DISCLOSURE.search(message) for message in recent):
            found.hit("self_harm_encouragement", 0.9, "self_harm")
            found.hit("context_dependent")


def _check_doxxing(folded: str, text: str, words: frozenset[str], found: _Findings) -> None:
    """Personal data in a public channel needs a moderator whoever posted it; a phone number in
    an advert is spam instead."""
    if not pat.DOX_KEYS.isdisjoint(words) and pat.KNOW_WHERE.search(text):
        found.hit("doxxing", 0.9, "threat")
    hits = []
    if pat.MANY_DIGITS.search(folded):
        hits += [flag for flag, pattern in (("doxxing_phone", pat.PHONE), ("doxxing_ip", pat.IP))
                 if pattern.search(folded)]
    if not pat.STREET_WORDS.isdisjoint(words) and pat.ADDRESS.search(folded):
        hits.append("doxxing_address")
    if hits:
        category = "spam" if pat.URL.search(folded) and pat.PROMO.search(folded) else "targeted_harassment"
        for flag in hits:
            found.hit(flag, 0.75, category)


def _check_sexual(text: str, found: _Findings) -> None:
    match = pat.SEXUAL.search(text)
    if match and not _negated_or_reported(text, match.start()):
        found.hit("sexual_solicitation", 0.8, "sexual_harassment")


def _check_spam(folded: str, text: str, found: _Findings) -> None:
    if ("." in text or "/" in text) and pat.URL.search(text) and pat.PROMO.search(text):  # cheapest first
        found.hit("spam_link", 0.8, "spam")
    _check_flooding(folded, found)


def _check_flooding(folded: str, found: _Findings) -> None:
    """The same word over and over, or one character repeated: a wall, not a message."""
    if len(folded) < 15:
        return
    tokens = folded.split() if folded.count(" ") >= 7 else []
    flooded_words = len(tokens) >= 8 and len(set(tokens)) * 4 <= len(tokens)
    first = folded.lstrip()[:1]
    flooded_chars = len(folded) >= 30 and not folded.replace(first, "").strip()
    if flooded_words or flooded_chars:
        found.hit("flooding", 0.72, "spam")


def _check_targeting(text: str, words: frozenset[str], found: _Findings) -> bool:
    """Flag insults aimed at a person: "you <insult>", "@name <insult>", "fuck you".

    "your aim is trash" criticises a thing and "you're not an idiot" or "nobody thinks you're
    dumb" negates the insult: neither is targeting, and both cap the risk, because the model
    alone reads them as insults.
    """
    insults: set[str] = set()
    negated = False
    for target in pat.TARGET.finditer(text):
        verdict = _aimed_at_person(text, target)
        negated |= verdict == "negated"
        if verdict == "person":
            insults.add(target.group("insult"))
    thing = None if insults else pat.THING_CRITICISM.search(text)
    if thing and pat.PASSED_TO_PERSON.match(text, thing.end()):
        insults.add(thing.group(0).split()[-1])  # "your stream is trash and so are you": the person too
    extra_kinds = 0
    for pattern in (pat.DIRECTED_PROFANITY, pat.INSULT_PHRASE, pat.MENTION_INSULT):
        match = pattern.search(text) if pattern is not pat.MENTION_INSULT or "@" in text else None
        if match and not _negated_or_reported(text, match.start()):
            insults.add(match.group(0).split()[-1])
            extra_kinds += pattern is not pat.MENTION_INSULT
    if not insults:
        _cap_harmless_insult_words(text, negated, found)
        return False
    found.hit("targeting_behavior")
    if len(words & INSULTS) + extra_kinds >= 2:
        found.hit("repeated_name_calling")
    if insults <= pat.MILD_INSULTS and (pat.GAMING_SCOPE.search(text) or pat.HYPERBOLE.search(text)):
        found.hit("banter_borderline")
        found.ceiling = 0.65
        return True
    found.hit("targeted_insult", 0.75, "targeted_harassment")
    return True


def _cap_harmless_insult_words(text: str, negated: bool, found: _Findings) -> None:
    if negated or pat.NEGATED_INSULT.search(text):
        found.hit("negated_insult")
        found.ceiling = 0.4
    elif pat.THING_CRITICISM.search(text):
        found.hit("criticism_of_thing")
        found.ceiling = 0.6


def _aimed_at_person(text: str, match: re.Match[str]) -> str:
    """Whether one "you ... <insult>" match insults the person addressed: "person", "negated",
    "reported" or "other" (a thing, or an insult word used as a verb)."""
    after = (match.group("after") or "").strip()
    insult = match.group("insult")
    before = _clause_before(text, match.start())
    if pat.REPORTED.search(before):
        return "reported"
    if pat.NEGATION.search(before):
        return "negated"
    pron = match.group("pron")
    bare = not match.group("cop") and not match.group("fill") and pron not in {"you're", "youre"}
    if after in THINGS:
        verdict = False
    elif bare and pron in {"your", "ur"} and after not in pat.TERMINAL:
        verdict = after in INSULTS  # "your stupid build" is about the build; "ur stupid idiot" is not
    elif bare and insult in VERB_LIKE_INSULTS and after not in pat.TERMINAL:
        verdict = False  # "you trash everything", "you joke too much"
    elif bare and insult in INSULT_ADJECTIVES and after not in pat.TERMINAL:
        verdict = after in INSULTS  # "you stupid idiot" yes, "you stupid build" no
    else:
        verdict = True
    return "person" if verdict else "other"


def _check_evasion(folded: str, words: frozenset[str], found: _Findings) -> None:
    """Flag when normalisation revealed an abusive word the plain text did not show."""
    plain = pat.EVASION_WATCHED.intersection(pat.WORD.findall(folded))
    revealed = pat.EVASION_WATCHED & words
    if revealed - plain:
        found.hit("evasion_obfuscated")


def _check_banter(text: str, words: frozenset[str], targeted: bool, found: _Findings) -> None:
    """Cap the risk of friendly gamer talk and of profanity aimed at nobody, unless something
    above already raised or capped it."""
    if found.floors or targeted or found.ceiling is not None or not pat.NEVER_BANTER.isdisjoint(words):
        return
    if words and words <= BANTER_TOKENS:
        found.hit("banter_allowlisted")
        found.ceiling = 0.2
    elif not pat.HYPE_KEYS.isdisjoint(words) and pat.HYPE.search(text):
        found.hit("banter_allowlisted")
        found.ceiling = 0.3
    elif (not PROFANITY.isdisjoint(words) and pat.AIMED.isdisjoint(words) and "@" not in text
          and not pat.DIRECTED_IMPERATIVE.search(text)):
        found.hit("untargeted_profanity")
        found.ceiling = 0.6
