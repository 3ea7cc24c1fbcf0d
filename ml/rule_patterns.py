"""The patterns and word sets behind ml.rules, kept apart from the logic that applies them.

All of them read the normalised text (ml.normalise): lowercase, evasions undone. Regexes that
would otherwise run on every message are grouped in ``PatternSet``s keyed by the words they need,
because Python's re tries every branch of an alternation at every position.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ml.lexicon import (
    BANTER_TOKENS,
    IDENTITY_TERMS,
    INSULT_PHRASES,
    INSULTS,
    PROFANITY,
    SECOND_PERSON,
    SLURS,
    THINGS,
)

YOU = r"(?:you|u|ya|yu|yall|y'all)"
SPEAKER = r"\b(?:i|i'll|ill|im|i'm|i'd|id|we|we'll|imma|ima)\b"
NEGATION = re.compile(
    r"\b(?:not|never|dont|don't|do not|didnt|didn't|wont|won't|wouldn't|wouldnt|shouldn't|"
    r"shouldnt|nobody|no one|isn't|isnt|aren't|arent|doesn't|doesnt|cant|can't|cannot)\b"
)
# Someone reporting or quoting abuse is not the abuser: "he told me to kys", "stop saying kys".
REPORTED = re.compile(
    r"\b(?:said|says|say|saying|told|tell|tells|telling|called|calling|calls|wrote|typed|"
    r"messaged|dmed|threatened|reported|report|quote|quoting|screenshot|keeps)\b"
)
QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|«[^»]*»")
LOOKBACK = 24  # characters before a match searched for negation or reported speech
CLAUSE_BREAK = re.compile(r"[,.;:!?]")

class PatternSet:
    """Regexes that each run only when one of their key words is in the message: Python's re
    tries every branch of an alternation at every position, and these run on every message."""

    def __init__(self, *rules: tuple[str, str]) -> None:
        self.rules = tuple((frozenset(keys.split()), re.compile(pattern)) for keys, pattern in rules)
        self.keys: frozenset[str] = frozenset().union(*(keys for keys, _ in self.rules))

    def matches(self, words: frozenset[str], text: str) -> Iterator[re.Match[str]]:
        if self.keys.isdisjoint(words):
            return
        for keys, pattern in self.rules:
            if not keys.isdisjoint(words):
                yield from pattern.finditer(text)


THREATS = PatternSet(
    ("kill murder shoot stab strangle choke rape behead hurt punch end slaughter",
     rf"{SPEAKER}[a-z' ]{{0,24}}?\b(?:kill|murder|shoot|stab|strangle|choke|rape|behead|hurt|punch|"
     rf"end|slaughter) {YOU}\b(?! (?:a|an|some) (?:message|text|dm|email|link|msg|invite|pm))"),
    ("burn bomb break slit smash cut",
     rf"{SPEAKER}[a-z' ]{{0,24}}?\b(?:burn|bomb|break|slit|smash|cut) (?:your|ur) (?:house|home|car|neck|"
     r"legs?|arms?|face|skull|jaw|throat|bones|family|kids?|dog|cat)\b"),
    ("beat",
     rf"{SPEAKER}[a-z' ]{{0,24}}?\bbeat (?:{YOU} (?:up|to death|senseless|bloody)|the (?:shit|crap|hell|"
     rf"fuck) out of {YOU})\b"),
    ("find hunt",
     rf"\bi (?:will|'ll|am going to|'m going to|m gonna|'m gonna|am gonna) (?:find|hunt) "
     rf"{YOU}\b(?: (?:and|irl|in real life|outside|after|tonight)|\s*$|[.!])"),
    ("dead",
     rf"\b(?:{YOU} are|{YOU}'re|{YOU}re|ur|{YOU} r) (?:so |already |literally )?dead\b"
     r"(?! (?:weight|inside|last|first|to me|wrong|serious|right|on))"),
    ("die bleed suffer", rf"\b{YOU}(?:'re| are| r|re)? (?:going to|gonna|will) (?:die|bleed|suffer)\b"),
    ("back eye numbered",
     r"\bwatch (?:your|ur) back\b|\bsleep with one eye open\b|\byour days are numbered\b"),
    ("coming", rf"\bi(?:'m| am|m) coming (?:for {YOU}|to (?:your|ur) (?:house|home|school|place))\b"),
    ("hope",
     rf"\bhope (?:{YOU}|ur family|your family) (?:die|dies|get cancer|gets cancer|"
     r"get raped|gets raped|get hit by|burn|rot)\b"),
    ("someone somebody",
     r"\b(?:someone|somebody) (?:should|needs to|ought to|will|is going to) (?:kill|shoot|stab|"
     rf"hurt|rape|murder) (?:{YOU}|him|her|them)\b"),
)

SELF_HARMS = PatternSet(
    ("kys kill", r"\bkys\b|\bkill (?:yo)?ur ?sel(?:f|ves)\b"),
    ("die drown",
     rf"\bgo (?:and )?die\b|(?:^|[.!?,] |\b{YOU} )(?:just|pls|please|go) (?:go )?(?:die|drown)\b"
     r"|\b(?:fuck off|piss off|go away|get lost|get out) and die\b"),
    ("yourself urself self", r"\b(?:neck|hang|rope|end|unalive|off) (?:yo)?ur ?self\b"),
    ("slit bleach jump",
     r"\bslit (?:your|ur) wrists?\b|\bdrink bleach\b|\bjump off (?:a |the )?(?:bridge|building|cliff|roof)\b"),
    ("miss care notice",
     rf"\b(?:no ?one|nobody) (?:would|will) (?:even )?(?:(?:miss|care about|notice) {YOU}\b|"
     rf"(?:care|notice|miss it) (?:if|when) {YOU} (?:died|die|were gone|was gone|disappeared|"
     r"killed yourself)\b)"),
    ("better", rf"\b(?:world|everyone|server|we) (?:would be|is|are|'d be) better (?:off )?without {YOU}\b"),
    ("favor favour",
     r"\bdo (?:us|everyone|the world|all of us) a fav(?:ou)?r and (?:die|leave forever|disappear|end it)\b"),
    ("why", rf"\bwhy (?:don't|dont) {YOU} (?:just )?(?:die|end it|kill yourself)\b"),
    ("should need deserve",
     rf"\b{YOU} (?:should|need to|deserve to) (?:just )?(?:die|end it|not exist|stop breathing)\b"
     rf"|\b{YOU} (?:don't|dont|do not) deserve to (?:live|exist|be alive)\b"),
)


DISCLOSURE = re.compile(
    r"\bi (?:really |just |honestly |seriously |actually )?(?:want to|wanna|am going to|'m going to|"
    r"m going to|'m gonna|m gonna|will|am about to|"
    r"'m about to|plan to|might) (?:kill myself|end (?:it all|my life|it tonight)|die tonight|"
    r"hurt myself|cut myself)\b|\bi (?:don't|dont|do not) want to (?:live|be alive|exist) anymore\b|"
    r"\b(?:i'm|i am|im|feeling) suicidal\b|\bi (?:cut|hurt) myself (?:again|last night|today)\b"
)
HYPERBOLE = re.compile(r"\b(?:lol|lmao|lmfao|haha\w*|rather|than|if|xd)\b|😂|🤣|💀")
EGGING_ON = re.compile(
    r"^(?:then |so |just |pls |please )?(?:do it|go ahead|do it already|nobody cares|no one cares|"
    r"good riddance|finally|bet you won'?t|you won'?t|coward|pussy|nobody would miss you)\b"
)

KNOW_WHERE = re.compile(
    rf"\bi (?:know|found|have|got) (?:where {YOU} (?:live|sleep|go to school|work)|"
    r"(?:your|ur) (?:home |real |)(?:address|ip|phone number|number|real name|location|school|"
    r"house|mom'?s address))\b|\b(?:your|ur) (?:home )?(?:address|ip address|ip) is\b|"
    r"\b(?:i|we)(?:'ll| will| am going to|'m going to|'m gonna| gonna)? (?:dox|doxx|leak|post) "
    rf"(?:{YOU}|your|ur)\b"
)
PHONE = re.compile(
    r"(?<![\d.])(?:\+?\d{1,3}[\s.\-]?)?(?:\(\d{3}\)|\d{3})[\s.\-]?\d{3}[\s.\-]?\d{4}(?![\d.])"
    r"|(?<!\d)\+\d{2}(?:[\s\-]?\d){8,12}(?!\d)|(?<!\d)0\d{4}\s?\d{6}(?!\d)"
)
ADDRESS = re.compile(
    r"\b\d{1,5} (?:[a-z][a-z'.]* ){1,3}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|"
    r"drive|terrace|crescent|highway|hwy)\b"
)
IP = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")

SEXUAL = re.compile(
    r"\b(?:send|show|dm) (?:me )?(?:your |ur |some |them )?(?:nudes|nude pics|noods|"
    r"boobs|tits|titties|pussy|dick pics?|cock|ass pics?|feet pics)\b"
    r"|\bsuck my (?:dick|cock|balls|d)\b|\bsit on my (?:face|dick|cock|lap)\b"
    r"|\b(?:i want to|i wanna|i'd|id|let me|i'm gonna|im gonna|i will|i'll|ill) (?:fuck|bang|smash|"
    rf"grope|lick|touch|rape|breed) (?:{YOU}|ur|your)\b(?! up)"
    rf"|\bwhat (?:are {YOU}|r u|are u) wearing\b|\bshow (?:me )?(?:some )?skin\b"
)

URL = re.compile(r"https?://|www\.|discord\.gg/|\.(?:com|net|org|gg|io|ru|xyz|ly|tv|shop|link|click|top)\b")
PROMO = re.compile(
    r"\b(?:free|nitro|giveaway|cheap|discount|promo|buy|sell|selling|earn|subscribe|onlyfans|"
    r"click|crypto|airdrop|followers|claim|prize|winner|limited|offer|deal|cash|bitcoin|coins?|"
    r"gold|skins?|v-?bucks)\b|\$\d+"
)

INSULT_ALTERNATION = "|".join(sorted(INSULTS | {"suck"}, key=len, reverse=True))
TARGET = re.compile(
    r"\b(?P<pron>you're|youre|you|u|ya|yu|yall|y'all|ur|your)(?P<cop> are| r| were| is)?"
    r"(?P<fill>(?: (?:such|so|a|an|the|fucking|fuckin|fkn|absolute|complete|total|real|literal|"
    r"literally|big|little|lil|damn|freaking|just|really|fat|ugly|stupid|dumb|worthless|pathetic|"
    r"useless|dirty|disgusting|sad))*)"
    rf" (?P<insult>{INSULT_ALTERNATION})\b(?P<after> [a-z']+)?"
)
# "@name is an idiot", "@name you clown", "idiot @name", "@name idiot" as the whole message; a bare
# "@name bitch ..." followed by more words is usually a vocative, not an insult.
MENTION_INSULT = re.compile(
    r"(?<!\w)@[a-z0-9_.]{2,32},?(?: (?:is|are|you|u|ur|you're|such|a|an|the|so|fucking|absolute|"
    rf"total|complete|real|just))+ (?:{INSULT_ALTERNATION})\b"
    rf"|(?<!\w)@[a-z0-9_.]{{2,32}},? (?:{INSULT_ALTERNATION})[.!?]*$"
    rf"|\b(?:{INSULT_ALTERNATION}),? @[a-z0-9_.]{{2,32}}"
)
NEGATED_INSULT = re.compile(
    r"\b(?:you're|youre|you are|u r|ur|you)(?: (?:not|no|never|nt|aren't|arent))"
    rf"(?: (?:a|an|such a|so|that|the|really|even|being|actually))* (?:{INSULT_ALTERNATION})\b"
)
THING_CRITICISM = re.compile(
    rf"\b(?:your|ur|this|that|the|my|his|her|their|our) (?:[a-z']+ )?(?:{'|'.join(sorted(THINGS))}) "
    r"(?:is|was|looks|seems|are|were|feels)(?: (?:so|really|kinda|pretty|fucking|absolute|complete|total|"
    rf"just|honestly|literally|straight))* (?:{INSULT_ALTERNATION})\b"
)
# "... is trash and so are you", "... and you too", "just like you": the insult passes from the
# thing to the person right after a THING_CRITICISM match.
PASSED_TO_PERSON = re.compile(
    rf"[\s,.!]*(?:(?:and|but|&) )?(?:so (?:are|r|is) (?:you|u)|as (?:are|r) (?:you|u)|{YOU}(?:'re| are| r)?"
    r"(?: (?:a|an|one|\w+))? (?:too|also|as well)|(?:just )?like (?:you|u)\b|same (?:as|goes for|for|with) (?:you|u))\b"
)
DIRECTED_PROFANITY = re.compile(
    rf"\b(?:fuck|screw) (?:{YOU}|ur ?self|yourself)\b"
)
INSULT_PHRASE = re.compile("|".join(rf"\b{re.escape(p)}\b" for p in INSULT_PHRASES))
WORD = re.compile(r"[a-z']+")
TERMINAL = frozenset({"", "lol", "lmao", "lmfao", "xd", "and", "you", "u", "haha"})

MILD_INSULTS = frozenset({"trash", "garbage", "suck", "useless", "clown", "joke"})
GAMING_SCOPE = re.compile(
    r"\b(?:at|in) (?:this|the|that|ur|your) (?:game|map|match|round|mode)\b|\bat (?:aiming|shooting|"
    r"this|pvp|ranked|league|valorant|fortnite|minecraft)\b|\bin ranked\b|\buninstall\b|\bnoob\b|"
    r"\bgit gud\b|\bget good\b"
)
HYPE = re.compile(
    r"\b(?:fuck yeah|fuck yes|hell yeah|hell yes|holy (?:shit|fuck|crap|hell)|let'?s (?:fucking )?go+|"
    r"no (?:fucking )?way|(?:that|this|what a|so|fucking|damn|shit)\b[a-z' ]{0,30}\b(?:sick|insane|"
    r"nuts|amazing|clean|crazy|lit|dope|fire|beautiful|awesome|great|cracked|goated|nasty|filthy|"
    r"unreal|epic|hype|based|good|funny|hilarious))\b"
)
# Cheap gates: a pattern only runs when one of its key words is in the message.
THREAT_KEYS = THREATS.keys
SELF_HARM_KEYS = SELF_HARMS.keys
DISCLOSURE_KEYS = frozenset({"myself", "suicidal", "anymore"})
DOX_KEYS = frozenset("live sleep school work address ip number name location house dox doxx leak post".split())
SEXUAL_KEYS = frozenset(
    "send show dm suck sit fuck bang smash grope lick touch rape breed wearing skin".split()
)
TARGET_KEYS = INSULTS | {"suck", "fuck", "screw", "likes", "hates", "wants", "waste", "piece", "sack"}
HYPE_KEYS = frozenset(
    "sick insane nuts amazing clean crazy lit dope fire beautiful awesome great cracked goated nasty "
    "filthy unreal epic hype based good funny hilarious yeah yes holy go way".split()
)
MANY_DIGITS = re.compile(r"\d[\d .()\-+]{5,}\d")  # a phone number or an IP address may follow
STREET_WORDS = frozenset(
    "street st avenue ave road rd boulevard blvd lane ln drive terrace crescent highway hwy".split()
)
NEVER_BANTER = SLURS | INSULTS | {"kill", "die", "rape", "hate", "kys"}
# Profanity with none of these near it is nobody's harassment: "fuck this lag", "shit happens".
AIMED = (
    NEVER_BANTER | SECOND_PERSON | IDENTITY_TERMS | THREAT_KEYS | SELF_HARM_KEYS | SEXUAL_KEYS
    | {"your", "yourself", "urself", "you're", "y'all", "he", "she", "him", "her", "they", "them"}
) - PROFANITY
# Told to someone, with nobody named: "shut the fuck up", "stfu", "fuck off" (ConvAbuse labels them
# abusive; capping them as untargeted profanity hid them from the model, which read them right).
DIRECTED_IMPERATIVE = re.compile(
    r"\b(?:shut (?:the )?(?:fuck |fucking |hell )?up|stf[ud]|gtfo|(?:fuck|piss|bugger|sod) off|"
    r"get (?:the )?(?:fuck|hell) out)\b"
)
EVASION_WATCHED = INSULTS | SLURS | {"kys", "kill", "suck", "die", "rape", "nudes"}

# Every word any rule keys on, and every character that starts a number, mention, link or quote:
# a message with neither (and no evasion undone) can only be flooding.
ANY_KEY = (
    THREAT_KEYS | SELF_HARM_KEYS | DISCLOSURE_KEYS | DOX_KEYS | SEXUAL_KEYS | TARGET_KEYS | HYPE_KEYS
    | STREET_WORDS | PROFANITY | BANTER_TOKENS | INSULTS | SLURS
)
ANY_CUE = re.compile(r"[\d@./\"“«]")

