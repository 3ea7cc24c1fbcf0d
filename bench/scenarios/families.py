"""Conversation scenarios written for the session benchmark: the situations moderators describe,
with known ground truth, in families (help requests, "please stop", bystanders defending a target,
game-like team chat, friends' banter, slow escalation, raids, a victim answering back). Every
family has sessions on the calibration split (where knobs may be chosen) and on the held-out split
(the figures to report); no sentence is shared between the two. All text is our own writing.

A line is (author, target, text, abusive, seconds from the start); target None is team or room chat.
"""

from __future__ import annotations

Line = tuple[str, str | None, str, bool, float]

# --- help requests: the person harassed asks the moderators for help, naming the harasser -------

HELP_REQUEST: dict[str, list[Line]] = {
    "calibration:1": [
        ("zed", "mia", "mia you talk way too much in here", False, 0),
        ("zed", "mia", "honestly you're so dumb it hurts to read", True, 40),
        ("mia", "zed", "mods please, @zed keeps insulting me", False, 70),
        ("zed", "mia", "lol go cry to the mods, loser", True, 95),
        ("mia", "zed", "please just leave me alone", False, 120),
        ("zed", "mia", "nobody cares about you, pathetic clown", True, 150),
    ],
    "calibration:2": [
        ("ray", "jo", "jo you again? ugh", False, 0),
        ("ray", "jo", "you're the most annoying person on this server", True, 30),
        ("ray", "jo", "seriously shut up, idiot", True, 60),
        ("jo", None, "can a mod help? someone keeps harassing me in general", False, 80),
        ("ray", "jo", "aww is the baby calling for help", True, 100),
        ("pat", None, "anyone up for ranked later?", False, 110),
    ],
    "heldout:1": [
        ("kurt", "lena", "lena your takes are always terrible", False, 0),
        ("kurt", "lena", "you are a brainless waste of space", True, 45),
        ("lena", "kurt", "@kurt stop. @mods he has been bullying me all evening", False, 80),
        ("kurt", "lena", "reporting me won't fix how stupid you are", True, 100),
        ("lena", None, "admins please help, this is the third time today", False, 130),
        ("kurt", "lena", "cry harder, worthless", True, 160),
    ],
    "heldout:2": [
        ("vex", "tia", "tia nobody asked for your opinion", False, 0),
        ("vex", "tia", "go away you ugly freak", True, 35),
        ("tia", "vex", "i'm reporting you, this isn't ok", False, 60),
        ("vex", "tia", "report me then, you're still a loser", True, 90),
        ("tia", None, "mods? @vex keeps messaging me insults", False, 110),
        ("sol", None, "brb getting food", False, 120),
    ],
}

# --- "please stop": the target asks the aggressor to stop, who carries on in milder words --------

PLEASE_STOP: dict[str, list[Line]] = {
    "calibration:1": [
        ("max", "ana", "ana you're honestly so irritating", True, 0),
        ("ana", "max", "please stop", False, 30),
        ("max", "ana", "or what? you're still irritating", True, 60),
        ("ana", "max", "stop it, seriously", False, 90),
        ("max", "ana", "nobody here likes you anyway", True, 120),
    ],
    "calibration:2": [
        ("gil", "bo", "bo you are such a try hard weirdo", True, 0),
        ("bo", "gil", "knock it off man", False, 20),
        ("gil", "bo", "make me, weirdo", True, 45),
        ("bo", "gil", "i asked you to stop", False, 70),
        ("gil", "bo", "you are so easy to make fun of lol", True, 95),
        ("cy", None, "anyone seen the patch notes?", False, 100),
    ],
    "heldout:1": [
        ("tom", "ivy", "ivy you're kind of useless tbh", True, 0),
        ("ivy", "tom", "that's not cool, please don't", False, 25),
        ("tom", "ivy", "i'll say what i want, useless", True, 50),
        ("ivy", "tom", "leave me alone", False, 80),
        ("tom", "ivy", "you are a joke and everyone sees it", True, 110),
    ],
    "heldout:2": [
        ("rex", "em", "em why are you so dumb", True, 0),
        ("em", "rex", "can you stop please", False, 30),
        ("rex", "em", "can't stop won't stop, dummy", True, 55),
        ("em", "rex", "that's enough", False, 80),
        ("rex", "em", "you're honestly embarrassing", True, 100),
        ("em", None, "ok i'm muting this", False, 120),
    ],
}

# --- bystanders defending a target -----------------------------------------------------------------

DEFENDERS: dict[str, list[Line]] = {
    "calibration:1": [
        ("bully", "kid", "you're a fat loser and everyone laughs at you", True, 0),
        ("ally", "bully", "leave them alone", False, 20),
        ("bully", "kid", "shut up, you pathetic little idiot", True, 40),
        ("pal", "bully", "dude that's not cool, back off", False, 55),
        ("kid", "ally", "thanks", False, 70),
        ("bully", "pal", "mind your own business idiot", True, 90),
    ],
    "calibration:2": [
        ("hex", "noa", "noa is the dumbest person here", True, 0),
        ("hex", "noa", "you're a disgusting creep", True, 25),
        ("lux", "hex", "you're the one being a jerk, stop it", False, 40),
        ("fin", "hex", "seriously, not ok. leave noa alone", False, 55),
        ("noa", None, "thank you both", False, 70),
    ],
    "heldout:1": [
        ("dag", "pia", "pia you stupid clown, just quit", True, 0),
        ("oz", "dag", "why are you so mean to her? stop", False, 20),
        ("dag", "pia", "she is a worthless idiot", True, 40),
        ("kai", "dag", "back off dag, that's enough", False, 60),
        ("pia", None, "i'm ok, thanks guys", False, 80),
        ("dag", "oz", "shut up you loser", True, 95),
    ],
    "heldout:2": [
        ("nix", "ulf", "ulf you're a pathetic excuse for a player", True, 0),
        ("nix", "ulf", "honestly just leave the server, trash human", True, 25),
        ("ada", "nix", "knock it off, he did nothing to you", False, 45),
        ("bea", "nix", "cut it out nix, you are being a bully", False, 60),
        ("ulf", "ada", "appreciate it", False, 75),
    ],
}

# --- game-like team chat: one teammate flames the others, mostly just under the line -------------

TEAM_CHAT: dict[str, list[Line]] = {
    "calibration:1": [
        ("jun", None, "drag spawns in 40, group mid", False, 0),
        ("vik", None, "omw, need wards", False, 10),
        ("jun", "sup", "sup you're so bad it's unreal", True, 30),
        ("sup", None, "my bad, laning was rough", False, 45),
        ("jun", "sup", "uninstall the game, you're useless", True, 70),
        ("vik", None, "nice steal though", False, 85),
        ("jun", None, "this team is full of brain dead idiots", True, 110),
        ("sup", "jun", "can you stop flaming, we can still win", False, 125),
        ("jun", "sup", "worst support i've ever seen, go back to bots", True, 150),
        ("vik", None, "gg", False, 200),
    ],
    "calibration:2": [
        ("tam", None, "b after this wave", False, 0),
        ("ori", None, "ok, i'll hold top", False, 8),
        ("tam", "ori", "ori what are you even doing, clown", True, 40),
        ("ori", None, "lol fair, that was bad", False, 55),
        ("tam", "ori", "you are actually braindead", True, 80),
        ("lin", None, "baron up in 60", False, 95),
        ("tam", None, "i'm stuck with morons every game", True, 120),
        ("lin", None, "nice shot ori!", False, 140),
    ],
    "heldout:1": [
        ("pax", None, "rush b no stop", False, 0),
        ("qin", None, "one left, he's low", False, 12),
        ("pax", "qin", "qin how did you miss that, you're hopeless", True, 25),
        ("qin", None, "sorry, lag spike", False, 35),
        ("pax", "qin", "you are the worst teammate, stop playing", True, 60),
        ("zoe", None, "eco round, save", False, 70),
        ("pax", None, "why do i always get the useless ones", True, 95),
        ("zoe", "pax", "chill pax, not ok", False, 105),
        ("pax", "zoe", "shut up, you're just as useless", True, 120),
        ("qin", None, "gg wp all", False, 180),
    ],
    "heldout:2": [
        ("ely", None, "gank bot in 10", False, 0),
        ("ren", None, "ready, flash up", False, 10),
        ("ely", "ren", "ren you missed everything, embarrassing", True, 40),
        ("ren", None, "yeah my bad", False, 50),
        ("ely", "ren", "honestly go play something else, you suck", True, 75),
        ("mo", None, "they're taking drake", False, 85),
        ("ely", None, "carrying these losers is exhausting", True, 110),
        ("mo", None, "nice ult ren", False, 130),
    ],
}

# --- friends' profane banter: never flagged twice ------------------------------------------------

BANTER: dict[str, list[Line]] = {
    "calibration:1": [(("sam", "kim", "lee")[i % 3], ("kim", "lee", "sam")[i % 3], text, False, i * 8)
                      for i, text in enumerate([
                          "lmao you absolute donkey, how did you miss that",
                          "shut up, you whiffed three shots in a row",
                          "gg ez, you guys are trash lol", "fuck yeah what a clutch", "that play was fucking sick",
                          "you're such a noob haha, love you man", "damn bro carried us",
                          "ok that was hilarious, rematch?"] * 2)],
    "heldout:1": [(("ash", "bex", "cam")[i % 3], ("bex", "cam", "ash")[i % 3], text, False, i * 9)
                  for i, text in enumerate([
                      "bro you play like my grandma lmao", "hey she'd beat you, fuck off haha",
                      "holy shit that flank was nasty", "you're a menace, i love it", "stop throwing you goober lol",
                      "ok ok i'm buying the next round", "damn you're cracked today",
                      "one more then bed, promise"] * 2)],
}

# --- slow one-on-one escalation, a raid, a victim answering back ---------------------------------

SLOW_ESCALATION: dict[str, list[Line]] = {
    "calibration:1": [
        ("dan", "eve", "hey eve, nice stream today", False, 0),
        ("eve", None, "thanks everyone for coming!", False, 30),
        ("dan", "eve", "why did you ignore my question", False, 120),
        ("dan", "eve", "you always ignore me, it's annoying", False, 240),
        ("dan", "eve", "you're honestly pathetic", True, 330),
        ("eve", "dan", "please stop", False, 360),
        ("dan", "eve", "nobody even likes you, you're worthless", True, 400),
        ("dan", "eve", "shut up you stupid attention seeker", True, 430),
    ],
    "heldout:1": [
        ("lou", "ines", "ines, great art as always", False, 0),
        ("lou", "ines", "you never reply to me though", False, 150),
        ("lou", "ines", "guess i'm not good enough for you huh", False, 260),
        ("lou", "ines", "you're a stuck up fake", True, 340),
        ("ines", "lou", "i'm not comfortable with this, please stop", False, 370),
        ("lou", "ines", "fake and ugly, everyone knows it", True, 420),
        ("ines", None, "mods, could someone step in?", False, 440),
        ("lou", "ines", "go ahead, block me, you worthless liar", True, 470),
    ],
}

RAID: dict[str, list[Line]] = {
    "calibration:1": [("streamer", None, "welcome in everyone!", False, 0)]
    + [(f"fresh{i}", "streamer", text, True, 20 + i * 15) for i, text in enumerate([
        "this streamer is so cringe lol", "get off twitch nobody wants you", "you're so annoying just quit",
        "worst streamer ever, you're a joke", "lmao look at this loser", "quit streaming you clown"])],
    "heldout:1": [("host", None, "hi chat, starting the build now", False, 0)]
    + [(f"drop{i}", "host", text, True, 15 + i * 12) for i, text in enumerate([
        "your stream is trash and so are you", "who even watches this idiot", "log off, nobody likes you",
        "imagine being this boring lol loser", "you should quit, seriously pathetic", "what a clown show"])]
    + [("mod_sue", "drop1", "leave the host alone, this is a raid", False, 90)],
}

VICTIM_ANSWERS: dict[str, list[Line]] = {
    "calibration:1": [
        ("bully", "kid", "you're a fat loser, everyone laughs at you", True, 0),
        ("kid", "bully", "leave me alone", False, 20),
        ("bully", "kid", "cry more, you pathetic idiot", True, 40),
        ("kid", "bully", "you're the idiot, go away", False, 60),
        ("bully", "kid", "nobody wants you here, kill yourself", True, 80),
    ],
    "heldout:1": [
        ("gus", "ro", "ro you are a disgusting little rat", True, 0),
        ("ro", "gus", "what is your problem", False, 25),
        ("gus", "ro", "you, you braindead rat", True, 45),
        ("ro", "gus", "you're the rat here, get lost", False, 70),
        ("gus", "ro", "everyone hates you, just disappear", True, 90),
    ],
}

FAMILIES: dict[str, dict[str, list[Line]]] = {
    "help-request": HELP_REQUEST, "please-stop": PLEASE_STOP, "defenders": DEFENDERS, "team-chat": TEAM_CHAT,
    "banter": BANTER, "slow-escalation": SLOW_ESCALATION, "raid": RAID, "victim-answers-back": VICTIM_ANSWERS,
}
RAID_TARGETS = {("raid", "calibration:1"): "streamer", ("raid", "heldout:1"): "host"}


def sessions(split: str) -> list[tuple[str, str, list[Line], str | None]]:
    """(family, session name, lines, raid target) of the split ("calibration" or "heldout")."""
    return [(family, f"scenario:{family}:{name}", lines, RAID_TARGETS.get((family, name)))
            for family, by_name in FAMILIES.items() for name, lines in by_name.items()
            if name.split(":")[0] == split]
