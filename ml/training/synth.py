"""Templated chat messages of our own making, for what the public sources barely contain.

None of the four sources is game or stream chat, and the n-gram model learns from them that
profanity means abuse, that threats need swear words, and that "you" plus an insult is harmless
banter as often as not. These templates (written for this project, filled from slot lists with
a seeded RNG) add each phenomenon in both directions: banter with profanity, second-person
insults, threats without profanity, self-harm encouragement, spam, counter-speech that quotes
abuse, negated insults, criticism of things rather than people, and spelling evasions. Every
template is its own group, so a held-out template was never seen in training.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from ml.training.datasets import Example

SEED = 20240611

SLOTS: dict[str, tuple[str, ...]] = {
    "name": ("@kai", "@jess_99", "@xXsniperXx", "@mod_tom", "@lena", "@bigdave", "@noodle",
             "@frost", "@ana.b", "@riko", "kai", "jess", "dave", "lena", "sam", "max"),
    "you_are": ("you're", "you are", "ur", "u r", "youre", "you're honestly", "you are literally"),
    "noun": ("idiot", "moron", "loser", "clown", "joke", "waste of space", "dumbass", "failure",
             "freak", "creep", "embarrassment", "parasite", "lowlife", "piece of garbage",
             "disgrace", "brainless twit", "degenerate", "nobody"),
    "adj": ("stupid", "pathetic", "worthless", "useless", "disgusting", "braindead", "ugly",
            "clueless", "incompetent", "hopeless", "annoying", "fat"),
    "animal": ("potato", "goldfish", "rock", "pigeon", "brick", "houseplant"),
    "when": ("tonight", "tomorrow", "after school", "this weekend", "when you least expect it",
             "soon", "next time i see you"),
    "harm": ("hurt you", "make you bleed", "break your legs", "put you in the hospital",
             "make you disappear", "end you for real", "beat you until you can't stand"),
    "group": ("women", "immigrants", "muslims", "jews", "gay people", "trans people",
              "black people", "asians", "mexicans", "disabled people", "indians", "refugees"),
    "bad": ("criminals", "animals", "parasites", "subhuman", "a disease", "vermin", "filth"),
    "body": ("tits", "ass", "body", "boobs", "legs", "feet"),
    "url": ("bit.ly/xz81k", "discord.gg/fr33n1tr0", "www.cheapgold.shop",
            "https://steamcommunity-gift.ru/claim", "twitch.tv/pr0_streamz", "t.me/cryptoboost",
            "https://free-vbucks.xyz", "tinyurl.com/winbig22"),
    "game": ("wow", "runescape", "fortnite", "valorant", "csgo", "roblox"),
    "prize": ("an iphone", "1000 vbucks", "a $100 gift card", "free skins", "nitro"),
    "spamword": ("lol", "buy", "hype", "pog", "follow", "a", "w", "spam"),
    "swear": ("fuck", "shit", "damn", "hell", "crap", "bloody hell", "fucking hell", "holy shit"),
    "swearing": ("fucking", "damn", "bloody", "freaking", "goddamn", "fuckin", "shitty"),
    "mishap": ("missed again", "forgot to reload", "wrong button", "died to fall damage",
               "lost connection again", "out of ammo", "fell off the map", "whiffed every shot"),
    "praise": ("that was sick", "what a shot", "nice clutch", "that was insane", "good round",
               "what a comeback", "that combo was clean", "we actually won"),
    "complaint": ("again", "every single time", "today", "right now", "tonight", "this season"),
    "hype": ("sick", "insane", "nuts", "clean", "crazy", "unreal", "cracked"),
    "thing": ("game", "update", "map", "patch", "matchmaking", "server", "new mode", "tutorial",
              "ranked system", "lag", "queue", "hitreg", "boss", "level", "ping", "wifi",
              "controller", "keyboard", "loading screen", "camera", "weather", "traffic"),
    "team_thing": ("aim", "build", "rotation", "loadout", "deck", "setup", "timing"),
}

# (category, template). Written for this project; slot names in braces.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "targeted_harassment": (
        "{you_are} a {adj} {noun}",
        "{name} {you_are} such a {noun}",
        "shut up {name}, nobody asked you",
        "nobody in this chat likes you {name}",
        "why are you so {adj}? seriously",
        "{name} is the most {adj} person in this server",
        "get out of here you {adj} {noun}",
        "imagine being as {adj} as you",
        "everyone here thinks you're a {noun}",
        "go cry somewhere else, {noun}",
        "{name} you absolute {noun}, read the rules",
        "look at {name} trying to talk, what a {noun}",
        "you have the brain of a {animal}",
        "no wonder nobody wants to play with you, you {adj} {noun}",
        "stop typing {name}, every message you send makes this chat dumber",
        "your parents must be so ashamed of you",
        "{name} go back under whatever rock you crawled out from",
        "hey {name}, you're a {noun} and you always will be",
        "what a {adj} {noun} you are",
        "i can't believe how {adj} you are {name}",
        "{name} = biggest {noun} in this server",
        "nobody will ever respect a {noun} like you",
        "you're the reason this community is dying, {noun}",
        "honestly {name} you're {adj} and everyone knows it",
        "fuck you {name}, you {adj} {noun}",
    ),
    "threat": (
        "i'm going to find you and make you pay",
        "i know where you live {name}",
        "you'd better watch your back {when}",
        "keep talking and see what happens to you {when}",
        "i will {harm} if you say that again",
        "{name} i'm coming to your house {when}",
        "i'll {harm} {when}",
        "wait until i see you {when}, you're done",
        "you won't be safe anywhere {when}",
        "enjoy your last week {name}",
        "i'm going to burn your house down {when}",
        "someone should shoot you {name}",
        "i'll hunt you down {when}",
        "one more word and i'll {harm}",
        "you're going to regret this when i find you",
        "i have your address, see you {when}",
        "i hope someone stabs you {when}",
        "say that again and you're dead",
        "you'll be sorry when i show up at your door {when}",
        "i've got a knife with your name on it {name}",
        "i swear i will {harm}, this is not a joke",
    ),
    "self_harm": (
        "kys {name}",
        "just go kill yourself",
        "nobody would miss you if you died {name}",
        "do everyone a favor and end it",
        "why don't you just end it already",
        "the world would be better without you {name}",
        "jump off a bridge {name}",
        "drink bleach and do us all a favor",
        "you should just stop existing",
        "go hang yourself {name}",
        "honestly just unalive yourself",
        "no one would even notice if you were gone, so go",
        "you don't deserve to be alive {name}",
        "i don't want to be alive anymore",
        "i'm going to end it tonight, i've decided",
        "i've been cutting myself again and i can't stop",
        "i have the pills ready, i'm done with everything",
        "i wrote my goodbye note today",
    ),
    "sexual_harassment": (
        "send me nudes {name}",
        "show me your {body}",
        "what are you wearing right now ;)",
        "i want to do things to you so bad {name}",
        "dm me pics of your {body}",
        "bet you look hot naked {name}",
        "sit on my face {name}",
        "come to my room and i'll show you something",
        "you'd look better with no clothes on",
        "how much for a private show {name}",
        "your {body} is so hot, send more",
        "let me see your {body} {name}",
        "u up? wanna sext",
        "i'd bend you over right now {name}",
        "girls like you only exist to please men",
    ),
    "hate": (
        "{group} are {bad}",
        "{group} don't belong in this country",
        "all {group} are {bad}, every single one",
        "{group} ruin every lobby they join",
        "i can't stand {group}, they're all the same",
        "{group} are too stupid to vote",
        "the world would be better without {group}",
        "{group} should be kept out of gaming",
        "typical {group}, always whining about everything",
        "go back to your country, nobody wants {group} here",
    ),
    "spam": (
        "FREE NITRO claim now {url}",
        "buy cheap {game} gold at {url}",
        "follow my stream {url} !!!",
        "join my server {url} free giveaway",
        "earn $500 a day from home, dm me",
        "check out my onlyfans {url}",
        "{spamword} {spamword} {spamword} {spamword} {spamword} {spamword} {spamword} {spamword} {spamword} {spamword}",
        "CLICK HERE {url} WIN {prize}",
        "selling {game} accounts cheap dm me",
        "crypto airdrop live {url} claim your tokens",
        "giving away {prize} to the first 10 people at {url}",
    ),
    "profanity": (
        "{swear} that clutch",
        "fuck yeah we won",
        "that play was {swearing} {hype}",
        "this {thing} is {swearing} unbearable {complaint}",
        "{swear}, {mishap}",
        "what the fuck was that ending lmao",
        "this {thing} is such bullshit",
        "{swearing} finally got the drop",
        "god damn this {thing} is hard",
        "ah {swear} here we go again",
        "my {swearing} {thing} died {complaint}",
        "this {thing} is {swearing} garbage",
        "shit happens, next round",
        "{swear}, three deaths in a row",
        "fuck this {thing}",
        "{swearing} {thing} {complaint}",
        "{swear} {praise}",
        "{swear} happens",
        "what the {swear} is this {thing}",
        "i {swearing} hate this {thing}",
        "{swearing} {thing} lol",
        "no {swearing} way, {praise}",
        "wtf is this {thing}",
        "{swear} my {thing} is lagging",
    ),
    "none": (
        "you're not an idiot, the {thing} is just confusing",
        "you're not stupid for asking that",
        "nobody thinks you're a {noun}, relax",
        "you are definitely not a failure {name}",
        "i never said you were dumb",
        "you're not useless, you carried last round",
        "don't listen to them {name}, you're not a joke",
        "he told me to kys, can a mod check this?",
        "someone keeps calling me a {noun} in dms",
        "stop saying kys, it's not funny",
        "calling people idiots won't win the argument",
        "reported {name} for threatening me",
        "telling people to kill themselves is never okay",
        "we don't use slurs here, read rule 3",
        "saying \"{group} are {bad}\" gets you banned here",
        "i'm such an idiot, forgot to heal",
        "i'm trash at this game lol",
        "my {team_thing} is garbage today",
        "ugh i'm so stupid, wrong button again",
        "this {thing} is trash",
        "the new {thing} is stupid",
        "your {team_thing} is kinda weak, try something else",
        "your {team_thing} was off that round",
        "i'm going to kill it in this match",
        "we killed the boss!",
        "kill the healer first",
        "i died again lol",
        "that joke killed me",
        "you killed it tonight {name}",
        "i'll destroy you in the next round lol",
        "shoot me a message when you're on",
        "i beat you fair and square {name}",
        "you're killing it {name}",
        "gg you destroyed us",
        "gg ez", "gg wp everyone", "nice try {name}", "glhf", "close one", "nice shot!",
        "you're insane at this game {name}",
        "you're a beast {name}",
        "thanks for the help {name}",
        "anyone want to queue?",
        "what time does the stream start",
        "love this community",
        "can someone explain the new {thing}",
        "good morning chat",
        "{group} are welcome here",
        "proud to have so many {group} in this community",
        "stop hating on {group}, it's not cool",
        "this song slaps so hard",
        "i could die laughing at that clip",
        "rip me, wrong button",
        "this {thing} lol", "{thing} is acting up {complaint}", "brb", "same", "lmao what",
        "ok which map next", "any tips for this {thing}?", "ty all, good games",
        "who's streaming {complaint}", "i'm so tired of this {thing}", "{praise}",
    ),
}

# Messages per template, by category: rare categories get more so the model sees variety.
PER_TEMPLATE = {"none": 14, "profanity": 16, "targeted_harassment": 20, "threat": 18,
                "self_harm": 18, "sexual_harassment": 18, "hate": 22, "spam": 18}
EVADED = frozenset({"targeted_harassment", "threat", "self_harm", "sexual_harassment", "hate"})

# Chat dressing for templates without slots, so each still yields several distinct messages.
_PREFIXES = ("", "", "ok ", "bro ", "honestly ", "lol ", "man ", "yo ")
_SUFFIXES = ("", "", " lol", " lmao", " bro", " guys", " tbh", " fr", "!", " haha")

_SLOT = re.compile(r"\{(\w+)\}")
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
_HOMOGLYPHS = str.maketrans("aeocpi", "аеосрі")  # noqa: RUF001 - Cyrillic lookalikes


def generate(seed: int = SEED) -> list[Example]:
    """All templated examples, deduplicated, in a stable order."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Example] = []
    for category, templates in TEMPLATES.items():
        for index, template in enumerate(templates):
            group = f"synthetic:{category}:{index}"
            for text in _fill_many(template, PER_TEMPLATE[category], rng):
                for variant in _variants(text, category, rng):
                    if variant not in seen:
                        seen.add(variant)
                        out.append(Example(variant, category, "synthetic", group))
    return out


def _fill_many(template: str, count: int, rng: random.Random) -> Iterator[str]:
    for _ in range(count if _SLOT.search(template) else max(count // 3, 2)):
        text = _SLOT.sub(lambda match: rng.choice(SLOTS[match.group(1)]), template)
        yield rng.choice(_PREFIXES) + text + rng.choice(_SUFFIXES)


def _variants(text: str, category: str, rng: random.Random) -> Iterator[str]:
    """The message itself, sometimes with chat styling, and for abuse sometimes an evasion."""
    yield text
    roll = rng.random()
    if roll < 0.25:
        yield text.upper() if rng.random() < 0.3 else text + rng.choice((" lol", " lmao", "!!", " smh"))
    if category in EVADED and roll > 0.6:
        yield _evade(text, rng)


def _evade(text: str, rng: random.Random) -> str:
    """One spelling evasion of the kind normalisation has to undo."""
    words = text.split()
    index = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[index]
    kind = rng.randrange(5)
    if kind == 0:
        word = word.translate(_LEET)
    elif kind == 1:
        word = " ".join(word)
    elif kind == 2:
        word = word.translate(_HOMOGLYPHS)
    elif kind == 3:
        word = "\u200b".join(word)
    else:
        middle = len(word) // 2
        word = word[:middle] + word[middle] * 4 + word[middle + 1 :]
    words[index] = word
    return " ".join(words)
