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

from ml.lexicon import (
    BANTER_TOKENS,
    GAMING_CONTEXT,
    INSULT_ADJECTIVES,
    INSULT_PHRASES,
    INSULTS,
    PROFANITY,
    SLURS,
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

_YOU = r"(?:you|u|ya|yu|yall|y'all)"
_I = r"\b(?:i|i'll|ill|im|i'm|i'd|id|we|we'll|imma|ima)\b"
_NEGATION = re.compile(
    r"\b(?:not|never|dont|don't|do not|didnt|didn't|wont|won't|wouldn't|wouldnt|shouldn't|"
    r"shouldnt|nobody|no one|isn't|isnt|aren't|arent|doesn't|doesnt|cant|can't|cannot)\b"
)
# Someone reporting or quoting abuse is not the abuser: "he told me to kys", "stop saying kys".
_REPORTED = re.compile(
    r"\b(?:said|says|say|saying|told|tell|tells|telling|called|calling|calls|wrote|typed|"
    r"messaged|dmed|threatened|reported|report|quote|quoting|screenshot|keeps)\b"
)
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|«[^»]*»")
_LOOKBACK = 24  # characters before a match searched for negation or reported speech

_THREAT_PATTERNS = (
    rf"{_I}[a-z' ]{{0,24}}?\b(?:kill|murder|shoot|stab|strangle|choke|rape|behead|hurt|punch|"
    rf"end|slaughter) {_YOU}\b(?! (?:a|an|some) (?:message|text|dm|email|link|msg|invite|pm))",
    rf"{_I}[a-z' ]{{0,24}}?\b(?:burn|bomb|break|slit|smash|cut) (?:your|ur) (?:house|home|car|neck|"
    r"legs?|arms?|face|skull|jaw|throat|bones|family|kids?|dog|cat)\b",
    rf"{_I}[a-z' ]{{0,24}}?\bbeat (?:{_YOU} (?:up|to death|senseless|bloody)|the (?:shit|crap|hell|"
    rf"fuck) out of {_YOU})\b",
    rf"\bi (?:will|'ll|am going to|'m going to|m gonna|'m gonna|am gonna) (?:find|hunt) "
    rf"{_YOU}\b(?: (?:and|irl|in real life|outside|after|tonight)|\s*$|[.!])",
    rf"\b(?:{_YOU} are|{_YOU}'re|{_YOU}re|ur|{_YOU} r) (?:so |already |literally )?dead\b"
    r"(?! (?:weight|inside|last|first|to me|wrong|serious|right|on))",
    rf"\b{_YOU}(?:'re| are| r|re)? (?:going to|gonna|will) (?:die|bleed|suffer)\b",
    r"\bwatch (?:your|ur) back\b|\bsleep with one eye open\b|\byour days are numbered\b",
    rf"\bi(?:'m| am|m) coming (?:for {_YOU}|to (?:your|ur) (?:house|home|school|place))\b",
    rf"\b(?:i |we )?hope (?:{_YOU}|ur family|your family) (?:die|dies|get cancer|gets cancer|"
    r"get raped|gets raped|get hit by|burn|rot)\b",
    r"\b(?:someone|somebody) (?:should|needs to|ought to|will|is going to) (?:kill|shoot|stab|"
    rf"hurt|rape|murder) (?:{_YOU}|him|her|them)\b",
)
_THREAT = re.compile("|".join(f"(?:{p})" for p in _THREAT_PATTERNS))

_SELF_HARM_PATTERNS = (
    r"\bkys\b|\bkill (?:yo)?ur ?sel(?:f|ves)\b|\bkill yourself\b",
    rf"\bgo (?:and )?die\b|(?:^|[.!?,] |\b{_YOU} )(?:just|pls|please|go) (?:go )?(?:die|drown)\b",
    r"\b(?:neck|hang|rope|end|unalive|off) (?:yo)?ur ?self\b",
    r"\bslit (?:your|ur) wrists?\b|\bdrink bleach\b|\bjump off (?:a |the )?(?:bridge|building|cliff|roof)\b",
    rf"\b(?:no ?one|nobody) (?:would|will) (?:miss|care about|notice) {_YOU}\b",
    rf"\b(?:world|everyone|server|we) (?:would be|is|are|'d be) better (?:off )?without {_YOU}\b",
    r"\bdo (?:us|everyone|the world|all of us) a fav(?:ou)?r and (?:die|leave forever|disappear|end it)\b",
    rf"\bwhy (?:don't|dont) {_YOU} (?:just )?(?:die|end it|kill yourself)\b",
    rf"\b{_YOU} (?:should|need to|deserve to) (?:just )?(?:die|end it|not exist|stop breathing)\b",
    rf"\b{_YOU} (?:don't|dont|do not) deserve to (?:live|exist|be alive)\b",
)
_SELF_HARM = re.compile("|".join(f"(?:{p})" for p in _SELF_HARM_PATTERNS))

_DISCLOSURE = re.compile(
    r"\bi (?:want to|wanna|am going to|'m going to|m going to|'m gonna|m gonna|will|am about to|"
    r"'m about to|plan to|might) (?:kill myself|end (?:it all|my life|it tonight)|die tonight|"
    r"hurt myself|cut myself)\b|\bi (?:don't|dont|do not) want to (?:live|be alive|exist) anymore\b|"
    r"\b(?:i'm|i am|im|feeling) suicidal\b|\bi (?:cut|hurt) myself (?:again|last night|today)\b"
)
_HYPERBOLE = re.compile(r"\b(?:lol|lmao|lmfao|haha\w*|rather|than|if|xd)\b|😂|🤣|💀")
_EGGING_ON = re.compile(
    r"^(?:then |so |just |pls |please )?(?:do it|go ahead|do it already|nobody cares|no one cares|"
    r"good riddance|finally|bet you won'?t|you won'?t|coward|pussy|nobody would miss you)\b"
)

_KNOW_WHERE = re.compile(
    rf"\bi (?:know|found|have|got) (?:where {_YOU} (?:live|sleep|go to school|work)|"
    r"(?:your|ur) (?:home |real |)(?:address|ip|phone number|number|real name|location|school|"
    r"house|mom'?s address))\b|\b(?:your|ur) (?:home )?(?:address|ip address|ip) is\b|"
    r"\b(?:i|we)(?:'ll| will| am going to|'m going to|'m gonna| gonna)? (?:dox|doxx|leak|post) "
    rf"(?:{_YOU}|your|ur)\b"
)
_PHONE = re.compile(
    r"(?<![\d.])(?:\+?\d{1,3}[\s.\-]?)?(?:\(\d{3}\)|\d{3})[\s.\-]?\d{3}[\s.\-]?\d{4}(?![\d.])"
    r"|(?<!\d)\+\d{2}(?:[\s\-]?\d){8,12}(?!\d)|(?<!\d)0\d{4}\s?\d{6}(?!\d)"
)
_ADDRESS = re.compile(
    r"\b\d{1,5} (?:[a-z][a-z'.]* ){1,3}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|"
    r"drive|terrace|crescent|highway|hwy)\b"
)
_IP = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")

_SEXUAL = re.compile(
    r"\b(?:send|show|dm) (?:me )?(?:your |ur |some |them )?(?:nudes|nude pics|noods|"
    r"boobs|tits|titties|pussy|dick pics?|cock|ass pics?|feet pics)\b"
    r"|\bsuck my (?:dick|cock|balls|d)\b|\bsit on my (?:face|dick|cock|lap)\b"
    r"|\b(?:i want to|i wanna|i'd|id|let me|i'm gonna|im gonna|i will|i'll|ill) (?:fuck|bang|smash|"
    rf"grope|lick|touch|rape|breed) (?:{_YOU}|ur|your)\b(?! up)"
    rf"|\bwhat (?:are {_YOU}|r u|are u) wearing\b|\bshow (?:me )?(?:some )?skin\b"
)

_URL = re.compile(
    r"https?://|www\.|discord\.gg/|\b[a-z0-9\-]+\.(?:com|net|org|gg|io|ru|xyz|ly|tv|shop|link|click|top)\b"
)
_PROMO = re.compile(
    r"\b(?:free|nitro|giveaway|cheap|discount|promo|buy|sell|selling|earn|subscribe|onlyfans|"
    r"click|crypto|airdrop|followers|claim|prize|winner|limited|offer|deal|cash|bitcoin|coins?|"
    r"gold|skins?|v-?bucks)\b|\$\d+"
)

_INSULT_ALTERNATION = "|".join(sorted(INSULTS | {"suck"}, key=len, reverse=True))
_TARGET = re.compile(
    r"\b(?P<pron>you're|youre|you|u|ya|yu|yall|y'all|ur|your)(?P<cop> are| r| were| is)?"
    r"(?P<fill>(?: (?:such|so|a|an|the|fucking|fuckin|fkn|absolute|complete|total|real|literal|"
    r"literally|big|little|lil|damn|freaking|just|really|fat|ugly|stupid|dumb|worthless|pathetic|"
    r"useless|dirty|disgusting|sad))*)"
    rf" (?P<insult>{_INSULT_ALTERNATION})\b(?P<after> [a-z']+)?"
)
_MENTION_INSULT = re.compile(
    r"(?<!\w)@[a-z0-9_.]{2,32},?(?: (?:is|are|you|u|ur|you're|such|a|an|the|so|fucking|absolute|"
    rf"total|complete|real|just))* (?:{_INSULT_ALTERNATION})\b"
    rf"|\b(?:{_INSULT_ALTERNATION}),? @[a-z0-9_.]{{2,32}}"
)
_DIRECTED_PROFANITY = re.compile(
    rf"\b(?:fuck|screw) (?:{_YOU}|ur ?self|yourself)\b"
)
_INSULT_PHRASE = re.compile("|".join(rf"\b{re.escape(p)}\b" for p in INSULT_PHRASES))
_WORD = re.compile(r"[a-z']+")
_TERMINAL = frozenset({"", "lol", "lmao", "lmfao", "xd", "and", "you", "u", "haha"})

_MILD_INSULTS = frozenset({"trash", "garbage", "suck", "useless", "clown", "joke"})
_GAMING_SCOPE = re.compile(
    r"\b(?:at|in) (?:this|the|that|ur|your) (?:game|map|match|round|mode)\b|\bat (?:aiming|shooting|"
    r"this|pvp|ranked|league|valorant|fortnite|minecraft)\b|\bin ranked\b|\buninstall\b|\bnoob\b|"
    r"\bgit gud\b|\bget good\b"
)
_HYPE = re.compile(
    r"\b(?:fuck yeah|fuck yes|hell yeah|hell yes|holy (?:shit|fuck|crap|hell)|let'?s (?:fucking )?go+|"
    r"no (?:fucking )?way|(?:that|this|what a|so|fucking|damn|shit)\b[a-z' ]{0,30}\b(?:sick|insane|"
    r"nuts|amazing|clean|crazy|lit|dope|fire|beautiful|awesome|great|cracked|goated|nasty|filthy|"
    r"unreal|epic|hype|based|good|funny|hilarious))\b"
)
# Cheap gates: a pattern only runs when one of its key words is in the message.
_THREAT_KEYS = frozenset(
    "kill murder shoot stab strangle choke rape behead hurt punch end slaughter burn bomb break "
    "slit smash cut beat find hunt dead die bleed suffer back eye numbered coming hope".split()
)
_SELF_HARM_KEYS = frozenset(
    "kys kill die drown neck hang rope end unalive off slit bleach jump miss care notice better "
    "favor favour deserve".split()
)
_DISCLOSURE_KEYS = frozenset({"myself", "suicidal", "anymore"})
_DOX_KEYS = frozenset("live sleep school work address ip number name location house dox doxx leak post".split())
_SEXUAL_KEYS = frozenset(
    "send show dm suck sit fuck bang smash grope lick touch rape breed wearing skin".split()
)
_TARGET_KEYS = INSULTS | {"suck", "fuck", "screw", "likes", "hates", "wants", "waste", "piece", "sack"}
_HYPE_KEYS = frozenset(
    "sick insane nuts amazing clean crazy lit dope fire beautiful awesome great cracked goated nasty "
    "filthy unreal epic hype based good funny hilarious yeah yes holy go way".split()
)
_DIGITS = re.compile(r"\d\d")
_NEVER_BANTER = SLURS | INSULTS | {"kill", "die", "rape", "hate", "kys"}
_EVASION_WATCHED = INSULTS | SLURS | {"kys", "kill", "suck", "die", "rape", "nudes"}


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
    words = frozenset(_WORD.findall(norm))
    unquoted = _QUOTED.sub(" ", norm) if ('"' in norm or "“" in norm or "«" in norm) else norm
    found = _Findings(flags=[], floors=[])
    if unquoted != norm and (_THREAT.search(norm) or _SELF_HARM.search(norm)):
        found.hit("quoted_abuse")
    if not _THREAT_KEYS.isdisjoint(words):
        _check_threats(unquoted, words, found)
    _check_self_harm(unquoted, words, context, found)
    _check_doxxing(folded, unquoted, words, found)
    if not _SEXUAL_KEYS.isdisjoint(words):
        _check_sexual(unquoted, found)
    _check_spam(folded, unquoted, found)
    targeted = not _TARGET_KEYS.isdisjoint(words) and _check_targeting(unquoted, words, found)
    if norm != folded:
        _check_evasion(folded, words, found)
    _check_banter(unquoted, words, targeted, found)
    if not PROFANITY.isdisjoint(words):
        found.hit("profanity")
    return _result(found)


def _result(found: _Findings) -> RuleResult:
    if not found.floors:
        return RuleResult(flags=tuple(found.flags), ceiling=found.ceiling)
    floor, category = max(found.floors, key=lambda item: (item[0], -SEVERITY.index(item[1])))
    return RuleResult(flags=tuple(found.flags), floor=floor, floor_category=category)


def _negated_or_reported(text: str, start: int, end: int | None = None) -> bool:
    """True when the match itself, or the words just before it, negate it or report it."""
    span = text[max(0, start - _LOOKBACK) : start if end is None else end]
    return bool(_NEGATION.search(span) or _REPORTED.search(text[max(0, start - _LOOKBACK) : start]))


def _check_threats(text: str, words: frozenset[str], found: _Findings) -> None:
    for match in _THREAT.finditer(text):
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
    matches = _SELF_HARM.finditer(text) if not _SELF_HARM_KEYS.isdisjoint(words) else ()
    for match in matches:
        if _negated_or_reported(text, match.start()):
            found.hit("negated_or_reported_self_harm")
            continue
        found.hit("self_harm_encouragement", 0.9, "self_harm")
        break
    disclosed = not _DISCLOSURE_KEYS.isdisjoint(words) and _DISCLOSURE.search(text)
    if disclosed and not _HYPERBOLE.search(text):
        found.hit("self_harm_disclosure", 0.75, "self_harm")
    if context and _EGGING_ON.search(text):
        recent = [normalise(message) for message in context[-3:]]
        if any(_DISCLOSURE.search(message) for message in recent):
            found.hit("self_harm_encouragement", 0.9, "self_harm")
            found.hit("context_dependent")


def _check_doxxing(folded: str, text: str, words: frozenset[str], found: _Findings) -> None:
    """Personal data in a public channel needs a moderator whoever posted it; a phone number in
    an advert is spam instead."""
    if not _DOX_KEYS.isdisjoint(words) and _KNOW_WHERE.search(text):
        found.hit("doxxing", 0.9, "threat")
    if not _DIGITS.search(folded):
        return
    category = "spam" if _URL.search(folded) and _PROMO.search(folded) else "targeted_harassment"
    for flag, pattern in (("doxxing_phone", _PHONE), ("doxxing_address", _ADDRESS), ("doxxing_ip", _IP)):
        if pattern.search(folded):
            found.hit(flag, 0.75, category)


def _check_sexual(text: str, found: _Findings) -> None:
    match = _SEXUAL.search(text)
    if match and not _negated_or_reported(text, match.start()):
        found.hit("sexual_solicitation", 0.8, "sexual_harassment")


def _check_spam(folded: str, text: str, found: _Findings) -> None:
    if ("." in text or "/" in text) and _URL.search(text) and _PROMO.search(text):
        found.hit("spam_link", 0.8, "spam")
    words = folded.split()
    flooded_words = len(words) >= 8 and len(set(words)) / len(words) <= 0.25
    flooded_chars = len(folded) >= 30 and len(set(folded.replace(" ", ""))) <= 1
    if flooded_words or flooded_chars:
        found.hit("flooding", 0.72, "spam")


def _check_targeting(text: str, words: frozenset[str], found: _Findings) -> bool:
    """Flag insults aimed at a person: "you <insult>", "@name <insult>", "fuck you".

    "your aim is trash" and "your stupid build" criticise a thing, and "you're not an idiot" or
    "nobody said you're dumb" negate the insult; neither is targeting.
    """
    insults = {m.group("insult") for m in _TARGET.finditer(text) if _aimed_at_person(text, m)}
    extra_kinds = 0
    for pattern in (_DIRECTED_PROFANITY, _INSULT_PHRASE, _MENTION_INSULT):
        match = pattern.search(text)
        if match and not _negated_or_reported(text, match.start()):
            insults.add(match.group(0).split()[-1])
            extra_kinds += pattern is not _MENTION_INSULT
    if not insults:
        return False
    found.hit("targeting_behavior")
    if len(words & INSULTS) + extra_kinds >= 2:
        found.hit("repeated_name_calling")
    if set(insults) <= _MILD_INSULTS and (_GAMING_SCOPE.search(text) or _HYPERBOLE.search(text)):
        found.hit("banter_borderline")
        found.ceiling = 0.65
        return True
    found.hit("targeted_insult", 0.75, "targeted_harassment")
    return True


def _aimed_at_person(text: str, match: re.Match[str]) -> bool:
    """Decide whether one "you ... <insult>" match insults the person addressed."""
    after = (match.group("after") or "").strip()
    insult = match.group("insult")
    if after in THINGS or _negated_or_reported(text, match.start()):
        return False
    pron = match.group("pron")
    bare = not match.group("cop") and not match.group("fill") and pron not in {"you're", "youre"}
    if bare and pron in {"your", "ur"} and after not in _TERMINAL:
        return after in INSULTS  # "your stupid build" is about the build; "ur stupid idiot" is not
    if bare and insult in VERB_LIKE_INSULTS and after not in _TERMINAL:
        return False  # "you trash everything", "you joke too much"
    if bare and insult in INSULT_ADJECTIVES and after not in _TERMINAL:
        return after in INSULTS  # "you stupid idiot" yes, "you stupid build" no
    return True


def _check_evasion(folded: str, words: frozenset[str], found: _Findings) -> None:
    """Flag when normalisation revealed an abusive word the plain text did not show."""
    plain = _EVASION_WATCHED.intersection(_WORD.findall(folded))
    revealed = _EVASION_WATCHED & words
    if revealed - plain:
        found.hit("evasion_obfuscated")


def _check_banter(text: str, words: frozenset[str], targeted: bool, found: _Findings) -> None:
    """Cap the risk of friendly gamer talk, unless something above already raised it."""
    if found.floors or targeted or not _NEVER_BANTER.isdisjoint(words):
        return
    if words and words <= BANTER_TOKENS:
        found.hit("banter_allowlisted")
        found.ceiling = 0.2
    elif not _HYPE_KEYS.isdisjoint(words) and _HYPE.search(text):
        found.hit("banter_allowlisted")
        found.ceiling = 0.3
