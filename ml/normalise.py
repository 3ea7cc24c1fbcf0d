"""Text normalisation that undoes the usual spelling evasions before rules or the model look.

Chat users dodge filters with lookalike letters (a Cyrillic o inside "idiot"), leetspeak
("1d10t"), masks ("f***"), stretched letters ("stuuupid"), zero-width characters and spaced-out
letters ("k y s"). A character n-gram model sees each of those as new n-grams, so training and
screening both read the
normalised text; the rules compare the normalised text with a lightly folded one to tell when an
evasion happened. Everything here is pure ``str`` work: no I/O, no state, cheap per message.
"""

from __future__ import annotations

import re
import unicodedata

from ml.lexicon import DOUBLE_LETTER_WORDS, INSULTS, MASKABLE, PROFANITY, SLURS

_ZERO_WIDTH = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f"),
    None,
)

# Cyrillic, Greek and Armenian letters that look like Latin ones (lowercase, after casefold),
# and the Latin letter each one imitates, position by position.
_LOOKALIKES = "авеёкмнорстухіїјѕԁһӏԛԝɡɑαβεηικνορτυχωγμոսօցı"
_LATIN_TWINS = "abeekmhopctyxiijsdhlqwgaabeniknoptuxwyunuogi"
_HOMOGLYPHS = str.maketrans(_LOOKALIKES, _LATIN_TWINS)
# Combining marks: accents once decomposed, and the stacks of "zalgo" text.
_COMBINING = re.compile("[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_HOMOGLYPH_CHARS = frozenset(chr(code) for code in _HOMOGLYPHS)

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s"})
_LEET_CHAR = re.compile(r"[013457$@!]")
_LEETABLE = re.compile(r"[a-z013457$@!]+")
# Anything at all for the steps below to look at: a leet or mask character touching a letter, a
# run of three, or two single characters in a row (a possible spaced-out word).
_ANY_EVASION_CUE = re.compile(
    r"[a-z][013457@!$*#]|[013457$@!][a-z]|([a-z?.,!])\1\1|(?:^|[\s.\-_*])[a-z0-9][\s.\-_*]+[a-z0-9](?:[\s.\-_*]|$)"
)
# Tokens holding both a letter and a leet character; only those are looked at.
_LEET_TOKEN = re.compile(r"(?<!\S)(?=\S*[a-z])(?=\S*[013457$@!])\S+")
# Numbers with a unit or ordinal suffix are not leetspeak: "3rd", "10k", "60fps", "5min".
# Nor are model names and scores: "ps5", "ak47", "1v1".
_NOT_LEET = re.compile(
    r"^(?:[0-9]+(?:st|nd|rd|th|s|k|m|h|x|d|p|am|pm|min|mins|hr|hrs|fps|hz|gb|mb|kb|km|kg|lb|lbs|ms|yo|yr|yrs)?"
    r"|[a-z]{1,4}[0-9]{1,3}|[0-9]+v[0-9]+)$"
)

# Runs of single characters separated by spaces or punctuation: "k y s", "k.y.s", "y o u  s u c k".
_SPACED_RUN = re.compile(r"(?<![^\s])[a-z0-9](?:[ .\-_*]{1,4}[a-z0-9]){2,}(?![^\s.!?,])")
_GAP = re.compile(r"[ .\-_*]+")
# "u r a noob" is ordinary chat shorthand, not an evasion: runs made only of these stay apart.
_SHORTHAND_LETTERS = frozenset("uraiynk")

_MASKED = re.compile(r"(?<![\w*#])[a-z]+[*#]+[a-z*#]*")
_REPEAT3 = re.compile(r"([a-z!?.,])\1{2,}")
_PUNCT_RUN = re.compile(r"([!?.,])\1{2,}")
_LETTER_RUN = re.compile(r"([a-z])\1\1")
_TOKEN = re.compile(r"\S+")
# Whitespace other than a space ("\r", "\t", "\n", em spaces): each becomes one space before the steps
# below, which read spaces ("k\ty\ts" is "k y s"), so that normalising twice changes nothing.
_OTHER_SPACE = re.compile(r"[^\S ]")

_KNOWN_WORDS = DOUBLE_LETTER_WORDS | INSULTS | PROFANITY | SLURS


def basic_fold(text: str) -> str:
    """NFKC and casefold only: the form a naive keyword filter would see."""
    return unicodedata.normalize("NFKC", text).casefold()


def normalise(text: str) -> str:
    """Undo common evasions; the output is what rules and the model read.

    Every step is guarded by a cheap test, because most messages need none of them.
    """
    if text.isascii():
        text = text.lower()  # NFKC and casefold change nothing else in ASCII
        if not _ANY_EVASION_CUE.search(text):
            return " ".join(text.split())
        text = _OTHER_SPACE.sub(" ", text)
    else:
        text = _fold_non_ascii(_OTHER_SPACE.sub(" ", unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
                                                .casefold()))
    text = _SPACED_RUN.sub(_join_spaced, text)
    if "*" in text or "#" in text:
        text = _MASKED.sub(_unmask, text)
    if _LEET_CHAR.search(text):
        text = _LEET_TOKEN.sub(_unleet, text)
    text = _PUNCT_RUN.sub(r"\1", text)
    if _LETTER_RUN.search(text):
        text = _TOKEN.sub(_squeeze, text)
    return " ".join(text.split())


def _fold_non_ascii(text: str) -> str:
    """Strip combining marks (zalgo, accents) and fold lookalike letters in Latin-looking words.

    A word written wholly in Cyrillic is left alone unless every letter has a Latin twin, so
    real Russian text is not turned into nonsense while "clown" spelt with a Cyrillic c and o
    (mixed scripts) is caught.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    if _COMBINING.search(decomposed):
        text = unicodedata.normalize("NFC", _COMBINING.sub("", decomposed))
    return " ".join(_fold_word(word) for word in text.split(" "))


def _fold_word(word: str) -> str:
    if word.isascii() or not any(ch in _HOMOGLYPH_CHARS for ch in word):
        return word
    has_latin = any("a" <= ch <= "z" for ch in word)
    all_lookalike = all(ch in _HOMOGLYPH_CHARS or not ch.isalpha() for ch in word)
    return word.translate(_HOMOGLYPHS) if has_latin or all_lookalike else word


def _join_spaced(match: re.Match[str]) -> str:
    """Join "k y s" into "kys"; a gap wider than the narrowest one inside the run is a word break."""
    run = match.group(0)
    letters = _GAP.split(run)
    if sum(ch.isalpha() for ch in letters) < 2 or set(letters) <= _SHORTHAND_LETTERS:
        return run
    widths = [gap.count(" ") for gap in _GAP.findall(run)]
    narrowest = min(widths)
    out = [letters[0]]
    for width, letter in zip(widths, letters[1:], strict=True):
        if width > narrowest and width >= 2:
            out.append(" ")
        out.append(letter)
    return "".join(out)


def _unmask(match: re.Match[str]) -> str:
    """Recover "f***ing" as "fucking": the first listed word the mask fits, else unchanged.

    Each mask character first stands for exactly one letter ("f***" is "fuck", not "fucking");
    only a mask with letters on both sides may then stand for any number of letters.
    """
    token = match.group(0)
    if len(token) < 3:
        return token
    exact = re.compile(re.sub(r"[*#]", "[a-z]", token))
    for word in MASKABLE:
        if exact.fullmatch(word):
            return word
    if token[-1] in "*#":
        return token
    loose = re.compile(re.sub(r"[*#]+", "[a-z]+", token))
    for word in MASKABLE:
        if loose.fullmatch(word):
            return word
    return token


def _unleet(match: re.Match[str]) -> str:
    """Map digits and symbols to letters in a word made only of letters and leet characters
    ("1d10t", "$hit", "n00b"); "2nd", "#honda200", "ps5" or a mention are left alone."""
    token = match.group(0)
    core = token.rstrip("!?.,")
    tail = token[len(core):]
    if not _LEETABLE.fullmatch(core) or sum(ch.isalpha() for ch in core) < 2 or _NOT_LEET.match(core):
        return token
    if core.startswith("@") and len(core) > 1 and (core[1].isalnum() or core[1] == "_"):
        return token  # a mention, not "a"
    core = re.sub(r"(?<=[a-z])@+", lambda m: "a" * len(m.group()), core.translate(_LEET))  # "b@stard", "b@@stard"
    core = re.sub(r"(?<=[a-z])!(?=[a-z])", "i", core)
    return core + tail


def _squeeze(match: re.Match[str]) -> str:
    """Shrink stretched letters ("stuuupid" -> "stupid") and restore real doubles ("kiiill")."""
    token = match.group(0)
    if not _REPEAT3.search(token):
        return token
    squeezed = _REPEAT3.sub(r"\1", token)
    core = squeezed.strip("!?.,")
    if core in _KNOWN_WORDS or not core:
        return squeezed
    for index, ch in enumerate(core):
        candidate = core[: index + 1] + ch + core[index + 1 :]
        if ch.isalpha() and candidate in _KNOWN_WORDS:
            return squeezed.replace(core, candidate, 1)
    return squeezed
