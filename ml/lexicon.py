"""Word lists shared by normalisation, the rules and the templated training data.

They are deliberately short: the model learns the long tail from data, and these lists only have
to catch what a linear n-gram model is known to miss (spelling evasions, explicit threats, who
an insult is aimed at). Every entry is lowercase and already normalised.
"""

from __future__ import annotations

# Person-directed insults. Used for targeting ("you <insult>") and evasion detection.
INSULT_NOUNS: frozenset[str] = frozenset(
    """
    idiot idiots moron morons loser losers clown clowns dumbass dumbasses jackass imbecile
    retard retards bitch bitches slut sluts whore whores cunt cunts dick dickhead asshole
    assholes bastard bastards scum freak freaks creep creeps failure pig pigs twat wanker prick
    douche douchebag degenerate trash garbage joke parasite embarrassment
    """.split()
)
INSULT_ADJECTIVES: frozenset[str] = frozenset(
    """
    stupid dumb pathetic worthless useless ugly fat disgusting braindead brainless retarded
    idiotic moronic incompetent clueless hopeless miserable trashy gross
    """.split()
)
INSULTS: frozenset[str] = INSULT_NOUNS | INSULT_ADJECTIVES

# Multi-word insults matched as phrases.
INSULT_PHRASES: tuple[str, ...] = (
    "waste of space",
    "waste of oxygen",
    "waste of air",
    "piece of shit",
    "piece of garbage",
    "piece of trash",
    "piece of crap",
    "sack of shit",
    "nobody likes you",
    "no one likes you",
    "everyone hates you",
    "everybody hates you",
    "nobody wants you",
    "no one wants you",
)

# Profanity: offensive words that are not by themselves aimed at anyone.
PROFANITY: frozenset[str] = frozenset(
    """
    fuck fucking fucked fucker fuckin fck fkn shit shitty bullshit damn goddamn hell crap
    ass piss pissed bloody wtf stfu motherfucker
    """.split()
)

# Slurs kept only so that spelling evasions of them are noticed; the model decides the category,
# because reclaimed and quoted uses are common.
SLURS: frozenset[str] = frozenset("nigger nigga faggot fag tranny kike spic chink".split())

# Words the repeated-letter squeeze must be able to restore ("kiiiill" -> "kill", not "kil").
DOUBLE_LETTER_WORDS: frozenset[str] = frozenset(
    """
    kill killed killing ass asshole assholes bitch dumbass jackass all will still shall hell
    troll trolls full pull stuff off good too see need feel sleep kiss miss loss boss free
    noob noobs sooo yeah ugly""".split()
)

# Words recovered from masked spellings ("f***", "sh*t"), profanity first: a self-censored word
# in chat is far more often "shit" than "slut".
MASKABLE: tuple[str, ...] = (
    *sorted(PROFANITY | {"fuckers", "shitting"}),
    *sorted(INSULT_NOUNS | SLURS | {"kill", "kys"}),
)

SECOND_PERSON: frozenset[str] = frozenset("you u ya yu youre ur yall".split())

# Words that make "<insult>" criticism of a thing, not a person: "your aim is trash".
THINGS: frozenset[str] = frozenset(
    """
    aim build play plays game games team deck setup comp take opinion idea ideas code map maps
    movement rotation strat strategy loadout skin skins internet wifi ping connection stream
    shot shots stats rank mic audio car phone pc computer patch update server joke jokes
    drawing song music art plan question answer argument point logic video clip
    """.split()
)

# Gaming vocabulary that turns "i will kill you" into trash talk about a match.
GAMING_CONTEXT: frozenset[str] = frozenset(
    """
    round rounds match matches game games 1v1 lobby spawn respawn ranked boss raid map
    pvp duel next scrim tournament queue arena
    """.split()
)

# Insults that are also verbs ("you trash everything", "you joke too much"): aimed at a person
# only when nothing but laughter or punctuation follows the bare "you <word>".
VERB_LIKE_INSULTS: frozenset[str] = frozenset(
    "trash garbage joke pig clown freak creep dick bitch bitches prick scum failure".split()
)

# Words naming people by identity: profanity next to one of them may be hate, so the
# "profanity alone" cap does not apply.
IDENTITY_TERMS: frozenset[str] = frozenset(
    """
    women woman girls girl men man boys gay gays lesbian lesbians trans transgender queer black
    blacks white whites asian asians jew jews jewish muslim muslims islam christian christians
    immigrant immigrants refugee refugees mexican mexicans indian indians arab arabs chinese
    latino latinos disabled autistic retarded feminist feminists people
    """.split()
)

# Tokens that only ever appear in friendly chat banter.
BANTER_TOKENS: frozenset[str] = frozenset(
    """
    gg ez wp gl hf glhf lol lmao lmfao rofl kek pog poggers rekt noob noobs git gud nice ggwp
    ff xd haha hahaha ty thx np omg bro dude bruh close one clap ezclap ggez ggs gj nt gz gratz get
    """.split()
)
