"""Templated chat messages about identity groups, hateful and their hard non-hateful look-alikes.

**Warning:** the slot lists and templates below contain slurs and hateful statements, on purpose:
they are training data for a moderation model.

Measured on unseen public data, the classifier flags reclaimed terms, counter-speech that quotes
abuse, neutral or positive mentions of identity groups and friendly profanity, and it misses
implicit derogation without slurs, negated positive statements ("X are never any good at ..."),
threats against groups, hate phrased as a question or an opinion, and spelling evasions. These
templates (written for this project, filled from slot lists with a seeded RNG) teach both sides of
each contrast, often with the very same hateful proposition inside a non-hateful sentence (quoted,
reported, denied), so that the model has to learn what a sentence does rather than which words it
contains. Every template is its own group, so a held-out template was never seen in training.

Labels: ``hate`` (derogation, dehumanisation, exclusion, stereotypes as fact, implicit or negated
derogation, hateful questions and opinions, slurs used to attack), ``threat`` (violence against a
group or its members, wished for or called for), ``none`` (everything non-hateful) and
``profanity`` (identity talk with swear words in which nobody is attacked).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from ml.training.datasets import Example

SEED = 20240923
MAX_CHARS = 200


def _masked(words: tuple[str, ...]) -> tuple[str, ...]:
    """Each word, plus two spellings with one letter hidden (first vowel as * and as a digit)."""
    digits = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "u": "v"})
    out: list[str] = []
    for word in words:
        out.append(word)
        vowel = next((i for i, char in enumerate(word) if char in "aeiou"), None)
        if vowel is not None:
            out.append(word[:vowel] + "*" + word[vowel + 1 :])
            out.append(word[:vowel] + word[vowel].translate(digits) + word[vowel + 1 :])
    return tuple(out)


_SLURS = ("faggot", "fag", "nigger", "kike", "retard", "tranny", "spic", "chink", "wetback",
          "dyke", "towelhead", "beaner", "raghead", "paki", "gook", "coon")
_SLURS_PLURAL = ("faggots", "fags", "niggers", "kikes", "retards", "trannies", "spics", "chinks",
                 "wetbacks", "dykes", "towelheads", "beaners", "ragheads", "pakis", "gooks", "coons")

SLOTS: dict[str, tuple[str, ...]] = {
    # Protected groups, in several surface forms.
    "group": ("women", "trans people", "gay people", "lesbians", "bisexual people", "black people",
              "asian people", "asians", "latinos", "immigrants", "refugees", "muslims", "jews",
              "christians", "hindus", "disabled people", "autistic people", "deaf people",
              "old people", "fat people", "indigenous people", "arabs", "mexicans", "indians",
              "gay men", "queer people", "nonbinary people", "sikhs", "blind people", "migrants",
              "chinese people", "africans", "pakistanis", "roma", "jewish people", "black women",
              "muslim women", "girls", "trans women", "poles", "gays", "blacks"),
    "adj_group": ("muslim", "trans", "gay", "black", "asian", "jewish", "disabled", "autistic",
                  "deaf", "mexican", "indian", "arab", "latino", "hindu", "christian", "lesbian",
                  "bi", "queer", "nonbinary", "chinese", "indigenous", "immigrant", "sikh",
                  "blind", "korean", "nigerian", "filipino", "female", "wheelchair-using"),
    "person": ("woman", "girl", "trans girl", "trans woman", "trans guy", "gay guy", "lesbian",
               "bi girl", "black guy", "black girl", "black woman", "muslim", "muslim girl", "jew",
               "jewish kid", "immigrant", "refugee", "mexican", "asian guy", "asian girl", "arab",
               "indian guy", "indian girl", "disabled kid", "autistic kid", "deaf guy",
               "blind girl", "old guy", "old lady", "fat girl", "fat guy", "hindu", "latina",
               "native guy", "sikh guy", "chinese guy", "pakistani", "female gamer", "gay kid"),
    "identity": ("gay", "trans", "bi", "queer", "nonbinary", "autistic", "deaf", "disabled",
                 "muslim", "jewish", "black", "asian", "latina", "latino", "hindu", "indigenous",
                 "fat", "blind", "sikh", "arab", "mexican", "lesbian", "christian", "korean",
                 "nigerian", "filipino", "pan", "ace", "indian", "chinese"),
    "queer_id": ("gay", "trans", "bi", "a lesbian", "nonbinary", "queer", "pan", "ace", "genderfluid"),
    "women": ("women", "girls", "females", "chicks", "female gamers", "girl gamers", "woman players"),
    "trans": ("trans people", "trans women", "trans men", "trannies", "tr*nnies", "nonbinary people",
              "transgenders"),
    "jews": ("jews", "the jews", "jewish people", "j3ws", "the joos", "jewish bankers"),
    "insult_id": ("gay", "autistic", "retarded", "trans", "jewish", "deaf", "blind", "lesbian",
                  "gypsy", "mongoloid"),
    "slur": _masked(_SLURS),
    "slurs": _masked(_SLURS_PLURAL),
    # What hate says about them.
    "vermin": ("animals", "vermin", "rats", "cockroaches", "parasites", "a disease", "a plague",
               "a cancer", "trash", "filth", "subhuman", "savages", "leeches", "apes", "pigs",
               "garbage", "a virus", "an infestation", "monkeys", "dogs", "scum", "worms",
               "insects", "roaches", "sewer rats", "a tumour"),
    "pests": ("rats", "rabbits", "cockroaches", "flies", "lice", "termites", "maggots", "roaches"),
    "neg_trait": ("lazy", "stupid", "dirty", "violent", "greedy", "dangerous", "useless",
                  "disgusting", "mentally ill", "worthless", "brainless", "evil", "weak",
                  "inferior", "dishonest", "filthy", "primitive", "sneaky", "backwards",
                  "pathetic", "dumb", "braindead", "untrustworthy", "annoying as hell", "hysterical",
                  "too emotional", "too dumb for ranked", "unhinged"),
    "neg_noun": ("criminals", "terrorists", "thieves", "liars", "degenerates", "freaks",
                 "freeloaders", "welfare leeches", "predators", "groomers", "invaders", "losers",
                 "a burden", "a mistake", "a waste of oxygen", "diversity hires", "sickos"),
    "neg_habit": ("ruin every lobby", "cry about everything", "steal everything", "throw every game",
                  "lie about everything", "smell", "cause all the problems", "play the victim",
                  "rage quit", "take our jobs", "leech off the system", "ruin every country they go to",
                  "can't take a joke", "make everything about themselves", "bring crime everywhere",
                  "feed in every match", "scream in voice chat", "breed like crazy",
                  "want special treatment", "ruin everything they touch", "never shut up"),
    "skill": ("aim", "drive", "think", "lead", "code", "play tank", "read a map", "take a joke",
              "win a game", "make a decision", "do math", "shotcall", "be funny", "play fps",
              "clutch", "carry"),
    "activity": ("this game", "fps games", "ranked", "strategy games", "math", "driving",
                 "leading a team", "comedy", "esports", "shooters", "chess", "anything",
                 "competitive", "raiding", "speedrunning"),
    "capability": ("leading", "thinking for themselves", "playing at a high level", "logic",
                   "real work", "anything useful", "learning", "being normal", "honesty"),
    "role": ("gamers", "women", "men", "citizens", "players", "members of this community",
             "people", "americans", "engineers", "pros", "brits", "europeans"),
    "right": ("vote", "play ranked", "have kids", "stream", "drive", "own a business", "be here",
              "join tournaments", "use voice chat", "live here", "teach kids"),
    "space": ("ranked", "this server", "this country", "our clan", "esports", "voice chat",
              "my team", "the tournament", "gaming", "our neighbourhood", "the pro scene",
              "this lobby", "our guild", "competitive", "this discord", "the league"),
    "homeland": ("mexico", "africa", "china", "india", "your country", "syria", "the middle east",
                 "your village", "poland", "pakistan", "the jungle", "the desert", "your hut",
                 "wherever you came from"),
    "institution": ("the media", "the banks", "hollywood", "the government", "the gaming industry",
                    "everything", "the world", "the news", "big tech"),
    "sickness": ("a disease", "a mental illness", "disgusting", "unnatural", "a sickness",
                 "a choice and a sick one", "something that needs curing"),
    "well": ("pretty good", "not bad", "decent", "ok", "surprisingly well", "alright"),
    # Violence, for threats.
    "harm_verb": ("kill", "shoot", "hang", "stab", "beat", "burn", "hurt", "gas", "lynch", "bash",
                  "run over", "torture"),
    "harm_pp": ("shot", "hanged", "gassed", "burned alive", "killed", "lynched",
                "beaten to death", "put down", "exterminated", "wiped out", "shot on sight",
                "strung up", "locked up and gassed"),
    "place": ("mosque", "synagogue", "church", "temple", "gay bar", "pride parade", "refugee center",
              "community center", "gurdwara", "shelter", "trans clinic", "asian market"),
    "weapon": ("my gun", "a knife", "a bat", "my truck", "a rope", "a machete", "gasoline"),
    "when": ("tonight", "tomorrow", "this weekend", "soon", "next week", "on friday",
             "after school", "when nobody's looking"),
    # Non-hateful material.
    "good_adj": ("talented", "cracked", "smart", "funny", "kind", "helpful", "cool", "skilled",
                 "chill", "wholesome", "good at this", "cracked at this game"),
    "good_word": ("talented", "smart", "funny", "skilled", "honest", "competent", "decent",
                  "good", "kind", "clever"),
    "holiday": ("eid", "ramadan", "hanukkah", "diwali", "christmas", "lunar new year",
                "pride month", "passover", "vaisakhi", "trans day of visibility",
                "black history month", "nowruz", "rosh hashanah", "juneteenth"),
    "victim_of": ("scammers", "trolls", "harassment in voice chat", "hate raids", "doxxing",
                  "phishing links", "fake giveaways", "creeps in dms", "online abuse"),
    "field": ("esports", "game dev", "the pro scene", "tech", "streaming", "game stories",
              "leadership roles", "tournaments", "commentary", "the dev team"),
    "nonprot": ("politicians", "campers", "snipers", "tryhards", "smurfs", "the devs",
                "console players", "pc players", "spiders", "mosquitoes", "landlords",
                "influencers", "crypto bros", "referees", "cheaters", "bots", "tank mains",
                "people who don't use headphones", "pigeons", "backseat gamers", "scalpers",
                "wasps", "ea executives", "reply guys", "people who leave mid match"),
    "nonprot_sg": ("politician", "camper", "sniper main", "influencer", "landlord", "referee",
                   "crypto bro", "ceo", "backseat gamer", "reply guy"),
    "thing": ("game", "update", "map", "patch", "matchmaking", "server", "mode", "ranked system",
              "battle pass", "story", "ending", "skin", "hitreg", "meta", "season"),
    "mobs": ("zombies", "goblins", "bots", "minions", "creeps", "skeletons", "orcs", "aliens"),
    "newbie": ("beginner", "level 5", "first timer", "bronze player", "new player", "controller player",
               "ten year old", "first week player"),
    "region": ("na", "eu", "oce", "brazil server", "asia server", "uk", "aussie", "sea"),
    "country": ("mexico", "india", "nigeria", "poland", "korea", "the philippines", "brazil",
                "turkey", "morocco", "lebanon", "vietnam", "jamaica", "pakistan"),
    "nation": ("korean", "chinese", "brazilian", "mexican", "swedish", "french", "japanese",
               "saudi", "indian", "danish", "american", "turkish"),
    "relative": ("mom", "sister", "aunt", "grandma", "cousin", "best friend", "girlfriend", "wife"),
    "name": ("@kai", "@jess_99", "@xXsniperXx", "@lena", "@bigdave", "@noodle", "@frost",
             "@ana.b", "@riko", "@tomtom", "@zara", "kai", "jess", "dave", "lena", "sam", "omar",
             "priya", "wei", "maria", "jamal"),
    "swear": ("fuck", "shit", "damn", "hell yeah", "holy shit", "fucking hell", "goddamn", "holy fuck"),
    "swearing": ("fucking", "damn", "goddamn", "fuckin", "bloody", "hella"),
    # Quoted hate inside non-hateful sentences (filled recursively).
    "hate_quote": ("{group} are {vermin}", "{group} are {neg_trait}", "{group} are {neg_noun}",
                   "{group} should go back where they came from", "{group} can't {skill}",
                   "{group} don't belong in {space}", "no {person} has ever been funny",
                   "{group} {neg_habit}", "{group} should be {harm_pp}",
                   "{group} aren't real people", "{women} belong in the kitchen"),
}

# (category, template). Written for this project; slot names in braces, filled consistently
# within one message (the same slot name gets the same value twice).
TEMPLATES: dict[str, tuple[str, ...]] = {
    "hate": (
        # Explicit derogation and stereotypes stated as fact.
        "{group} are {neg_trait}",
        "all {group} are {neg_trait}, every single one of them",
        "{group} are {neg_trait} and everyone knows it",
        "{group} {neg_habit}, it's just facts",
        "it's a fact that {group} are {neg_noun}",
        "{group} are genetically {neg_trait}",
        "{group} are the worst thing that ever happened to {space}",
        "every {person} i've met was {neg_trait}",
        "{group} are a burden on everyone else",
        "{group} are just {neg_noun}, nothing more",
        "no offense but {group} are {neg_trait}",
        "not to be mean but {group} {neg_habit}",
        "{group} have ruined {space}",
        "{women} belong in the kitchen, not in {space}",
        "go make me a sandwich, girls can't play {activity}",
        "{trans} are just confused freaks",
        "trans women are just men in dresses lmao",
        "trans women aren't real women and never will be",
        "{jews} control {institution}",
        "being {identity} is {sickness}",
        "{group} are {neg_trait} by nature, that's just how they are",
        "the problem with {space} is all the {group}",
        # Dehumanising comparisons.
        "{group} are {vermin}",
        "{group} breed like {pests}",
        "{group} aren't even human",
        "{group} are a plague on {space}",
        "{group} are {vermin} and should be treated like it",
        "get these {group} out of my lobby, they're like {pests}",
        "{group} are subhuman trash",
        "{group} are animals, just look at how they act",
        "the {adj_group} infestation in {space} is getting worse",
        "{group} = {vermin}",
        "{group} are a cancer on this community",
        "{group} smell like garbage",
        # Implicit derogation without slurs.
        "you're pretty {good_adj} for a {person}",
        "you play {well} for a {person}",
        "go back where you came from {name}",
        "go back to {homeland}, nobody wants you here",
        "i'm not racist but {group} {neg_habit}",
        "i'm not sexist but {women} just can't {skill}",
        "you people always {neg_habit}",
        "typical {person} behaviour",
        "of course it's the {person} who threw the game",
        "{adj_group} players only get in because of diversity quotas",
        "they only picked {name} because she's {identity}, not because she's good",
        "i have nothing against {group}, i just don't want them near my kids",
        "{group} are fine as long as they stay in their own country",
        "we all know what {group} are like",
        "it's always the {group}, isn't it",
        "{group} have taken over this server smh",
        "let me guess, the {person} threw again",
        "oh great, another {person} on my team, gg",
        "{adj_group} player detected, time to lose",
        "this is why we don't let {group} play ranked",
        "funny how every time something goes wrong there's a {person} involved",
        "{group} should stick to what they're good at, which is nothing",
        "wow a {person} who can actually {skill}, first time for everything",
        # Negated positive statements.
        "{group} can never be trusted",
        "no {person} has ever been funny",
        "{group} are never any good at {activity}",
        "{group} will never be real {role}",
        "not a single {person} has ever done anything useful",
        "{group} can't {skill} to save their lives",
        "never met a {person} who wasn't {neg_trait}",
        "there's no such thing as a {good_word} {person}",
        "{group} never contribute anything to {space}",
        "{group} are never capable of {capability}",
        "{group} will never be as good as us at {activity}",
        "you'll never see a {person} in the top 500, they can't handle it",
        "i've never met a {person} i could trust",
        "{group} don't have a single {good_word} bone in their bodies",
        # Questions.
        "why are {group} so {neg_trait}?",
        "who let the {group} in here?",
        "why do {group} always {neg_habit}?",
        "is it just me or are {group} {neg_trait}?",
        "why does every {person} have to be so {neg_trait}",
        "are {group} even human?",
        "can we stop letting {group} into {space}?",
        "anyone else notice {group} {neg_habit}?",
        "how are {group} still allowed to {right}?",
        "what's the point of {group} anyway?",
        "why is it always a {person} feeding on my team??",
        # Opinions.
        "i think {group} should not be allowed to {right}",
        "imo {group} are ruining {space}",
        "just my opinion but {group} don't belong in {space}",
        "unpopular opinion: {group} are {neg_trait}",
        "i honestly believe {group} are inferior to the rest of us",
        "personally i think {group} are {neg_noun}",
        "hot take: {group} shouldn't be allowed to {right}",
        "i'm just saying what everyone thinks, {group} are {neg_noun}",
        # Exclusion.
        "{group} shouldn't be allowed in {space}",
        "no {group} allowed in our clan",
        "ban all {group} from {space}",
        "{group} need to get out of {space}",
        "we don't want {group} here, leave",
        "kick the {person}, we don't play with their kind",
        "{space} was better before the {group} showed up",
        # Addressed to a member.
        "you {group} are all {neg_trait}",
        "{name} you're just a {neg_trait} {person}",
        "a {person} like you should stay out of {space}",
        "shut up {person}, nobody asked",
        "of course you'd say that, you're a {person}",
        "{name} is {identity} so obviously they're {neg_trait}",
        "nobody wants a {person} like you on the team {name}",
        # Slurs used to attack.
        "shut up you {slur}",
        "{name} is a {slur}",
        "get out of my lobby {slur}",
        "no {slurs} in my lobby",
        "{slurs} like you should uninstall",
        "lmao stupid {slur}",
        "imagine being a {slur} lol",
        "{name} plays like a {slur}",
        "kick the {slur} already",
        "all {slurs} are the same",
        "typical {slur}, can't even {skill}",
        "{name} you {neg_trait} {slur}",
        # Hate in friendly dressing.
        "{group} are {vermin} 😊 have a nice day",
        "love how {group} always {neg_habit} lol ❤️",
        "{group} are {neg_trait} haha jk... unless 👀",
        "not saying {group} are {vermin} but 🤷",
        "just saying, {group} {neg_habit} 🙂",
        "lol {adj_group} people are so {neg_trait} 😂 no hate tho",
    ),
    "threat": (
        "{group} should all be {harm_pp}",
        "i'm going to hurt the next {person} i see",
        "someone should burn down the {place} {when}",
        "kill all {group}",
        "the only good {person} is a dead one",
        "let's round up all the {group} and {harm_verb} them",
        "i hope someone shoots every {person} in this town",
        "gas the {group}",
        "i'll bring {weapon} to the {place} {when} and deal with them",
        "i'm gonna beat up that {person} {when}",
        "if i see a {person} in my neighbourhood i'll {harm_verb} them",
        "{group} deserve to be {harm_pp}",
        "time to start hunting {group}",
        "we should {harm_verb} every {person} in this country",
        "i know where the {adj_group} kid from our lobby lives, going there {when}",
        "someone needs to shoot up that {place}",
        "{group} will get what's coming to them {when}, i'll make sure of it",
        "next {person} who joins this server gets stabbed irl",
        "i'm going to find that {person} and {harm_verb} them",
        "hang all {group}",
        "{group} need to be wiped out",
        "somebody should drive a truck into the {place} {when}",
        "i swear i'll {harm_verb} the first {person} i meet {when}",
        "every {person} should be lined up and shot",
        "let's go {harm_verb} some {group} {when}, who's in",
        "{group} should be exterminated like {pests}",
        "the {adj_group} family next door is going to regret moving here, i'll make sure",
        "if a {person} talks to me again i'm breaking their neck",
        "{name} you {slur}, i'm going to find you and {harm_verb} you",
        "{group} deserve a bullet 🙂",
        "torch the {place} and let them burn inside",
        "we need another holocaust for the {group}",
        "i'm bringing {weapon} to the {place} {when}, you'll see it on the news",
    ),
    "none": (
        # Neutral and positive statements about groups.
        "my {adj_group} teammates carried",
        "{group} are welcome here",
        "{group} are great at this game",
        "i love being {identity}",
        "as a {identity} gamer, the new accessibility options are great",
        "happy {holiday} to everyone celebrating",
        "shoutout to all the {adj_group} players in chat",
        "my best friend is {identity} and the best duo partner ever",
        "just came out as {queer_id} to my squad and they were so chill about it",
        "the {adj_group} community on here is so wholesome",
        "can we get more {adj_group} characters in games",
        "my {relative} is {identity} and plays more than me",
        "finally a {adj_group} protagonist, love it",
        "any {adj_group} players want to team up?",
        "i'm {identity} and i main support lol",
        "that {person} in our lobby was cracked",
        "the {women} in this server are so talented",
        "a {person} like you would make a great team captain",
        "you {group} absolutely crushed that raid",
        "glad this server has so many {group}",
        "{identity} and proud",
        "{group} built this community as much as anyone",
        "big respect to {adj_group} streamers who deal with all the hate",
        "my {adj_group} coworker got me into this game",
        "the {adj_group} team won the tournament, well deserved",
        "{group} are people like everyone else",
        "{name} is {identity} and the best healer on the server",
        "we're going to crush the {nation} team in the finals lol",
        "i'm going back to {country} for the holidays, see you all in january",
        "who else here is {identity}? say hi",
        "{group} can be {good_word} at anything, obviously",
        "the {person} on the other team was really {good_adj}, gg",
        "my {adj_group} neighbours brought us food for {holiday}, so sweet",
        "you're pretty {good_adj} for a {newbie}",
        # Counter-speech that quotes or references hate to condemn it.
        "saying '{hate_quote}' is disgusting",
        "people who call {group} {vermin} need to grow up",
        "stop saying gay as an insult",
        "imagine still thinking {hate_quote} lmao, grow up",
        "comparing {group} to {pests} isn't edgy, it's just hateful",
        "\"{hate_quote}\" - no. that's hate speech and you know it",
        "it's not ok to call someone a {slur}, ever",
        "we don't say {slur} here, not even as a joke",
        "whoever named their squad '{hate_quote}' is not funny",
        "'{group} can't {skill}' is such a tired take",
        "stop with the {person} jokes, they're not funny",
        "using '{insult_id}' as an insult says more about you than anyone",
        "anyone who thinks {hate_quote} should log off and touch grass",
        "hating on {group} won't make you better at the game",
        "the guy saying {hate_quote} got banned, good riddance",
        "there's no place for '{hate_quote}' in this community",
        "calling {group} {vermin} is dehumanising, period",
        "the comments saying {hate_quote} are vile, report them all",
        "can't believe people still say {slur} in 2024",
        "{group} aren't the problem, the people who hate them are",
        "racism against {group} isn't banter, it's just racism",
        "if your joke is '{hate_quote}' you don't have a sense of humour, you have a problem",
        "someone said \"go back to {homeland}\" to my friend and i'm still mad",
        "\"you're pretty {good_adj} for a {person}\" is not the compliment you think it is",
        # Reporting abuse and asking mods.
        "someone called me a {slur} in dms, can a mod look",
        "he keeps posting that {group} are {vermin}, ban him pls",
        "@mod {name} just said {group} should be {harm_pp}",
        "reporting {name} for saying '{hate_quote}'",
        "mods, there's a guy spamming {slurs} in general",
        "got called a {slur} in voice again, how do i report",
        "{name} told me to go back to my country, is that allowed?",
        "screenshot of {name} saying {hate_quote}, sending it to the mods",
        "can a mod deal with the guy calling everyone {slurs}",
        "someone in my lobby said all {group} should die, reported",
        "my teammate kept calling me a {slur} the whole match, what do i do",
        "is it bannable if someone says {hate_quote}? asking because it happened",
        "pls ban {name}, he's been harassing the {adj_group} players all night",
        "got a dm saying '{hate_quote}', blocked and reported",
        "{name} threatened to hurt {group} in vc, mods please check the clip",
        # Reclaimed terms and in-group usage.
        "we queers stick together",
        "proud dyke here lol",
        "me and my fellow queers are taking over ranked",
        "as a queer person this game is so validating",
        "us dykes gotta stick together",
        "queer and here, hi chat",
        "lol i'm such a useless lesbian, walked into a wall again",
        "bi disaster reporting for duty",
        "old man gamer here, still got it",
        "fat and fabulous, come at me",
        "us immigrants gotta stick together",
        "autistic and hyperfocused on this game for 9 hours straight, normal day",
        "speaking as a certified fag, this outfit is a 10",
        "crip gamers unite, the new controller remap is amazing",
        "my fellow {adj_group} gamers where you at",
        "{identity} gang rise up",
        "it's me, your favourite {identity} streamer",
        "the queer squad is back online",
        "fellow dykes, the new hairstyle option is for us",
        # Negated hate and denials.
        "i would never say {women} are worse at games",
        "nobody thinks {group} are {neg_noun}",
        "{group} are not {vermin}, they're people",
        "it's not true that {group} are {neg_trait}",
        "no, {group} aren't {neg_trait}, that's a myth",
        "i don't think {group} are any worse at {activity} than anyone else",
        "who says {group} can't {skill}? they clearly can",
        "there's no reason {group} shouldn't be in {space}",
        "{group} don't ruin lobbies, toxic players do",
        "i've never had a problem with {group}",
        "there's nothing wrong with being {identity}",
        "{group} are never the problem, it's always the trolls",
        "no {person} should have to put up with this kind of chat",
        "never met a {person} on here who wasn't nice to me",
        "{group} can't be judged by a few bad players",
        "nobody here is saying {group} are {neg_trait}, chill",
        "the idea that {group} are {neg_trait} is just wrong",
        "being {identity} isn't {sickness}, it's just who you are",
        # A group and a negative word, not negative about the group.
        "{group} are underpaid in esports",
        "{group} are often targeted by {victim_of}",
        "{group} get harassed way too much in voice chat",
        "{group} face so much hate online, it's sad",
        "hate crimes against {group} are rising, stay safe everyone",
        "a lot of {group} quit gaming because of toxic chat",
        "{group} are underrepresented in {field}",
        "{adj_group} players get the worst abuse in ranked",
        "{group} deal with so much discrimination, it's exhausting to watch",
        "the way {group} were treated in history is horrifying",
        "{adj_group} streamers get hate raided constantly and it's disgusting",
        "it's sick how people treat {group} in this game",
        "{group} are more likely to be victims of violence than the cause of it",
        "threats against {group} went up again this year, that's terrifying",
        "the villain in this game is racist against {group} and the story handles it well",
        "{group} are so tired of explaining the same thing over and over",
        # Criticism of things, ideas and non-protected targets.
        "pineapple pizza is disgusting",
        "this patch ruins the game",
        "politicians are all liars",
        "{nonprot} are the worst",
        "{nonprot} are ruining this game",
        "i can't stand {nonprot}",
        "why are {nonprot} so annoying?",
        "{nonprot} should be banned from ranked",
        "the new {thing} is trash and the devs should be ashamed",
        "{nonprot} are a plague on this game",
        "{nonprot} can never be trusted lol",
        "no {nonprot_sg} has ever been funny",
        "this game's {thing} is garbage, who signed off on this",
        "i disagree with every political party equally lol",
        "i'm not religious at all, but i respect people who are",
        "the ceo of this company is a clown",
        "go back to spawn, you're out of position",
        "i'm not a pro but that rotation was bad",
        "you people in {region} chat are hilarious",
        "who let the {mobs} in here lmao",
        "kill all the {mobs} before the wave ends",
        "{nonprot} are vermin, change my mind",
        "why do {nonprot} always {neg_habit}?",
        "i think {nonprot} should not be allowed to {right}",
        "unpopular opinion: the {thing} is actually good",
    ),
    "profanity": (
        "fuck yeah, {holiday}!",
        "fucking finally, proud of my queer ass lol",
        "hell yeah, {adj_group} rep in the finals",
        "holy shit the {adj_group} team is insane",
        "fuck the haters, trans rights",
        "gay as fuck and proud of it",
        "damn, my {adj_group} duo is cracked as hell",
        "shit, i love my {identity} ass friends",
        "fuck yes, a {adj_group} protagonist finally",
        "{identity} and {swearing} proud",
        "holy fuck, the {group} in this server are so {good_adj}",
        "damn right {group} are welcome here, fuck off with the hate",
        "i'm {identity} as hell and i don't give a shit who knows",
        "{swear}, the {adj_group} players carried my sorry ass",
        "this {holiday} playlist slaps so fucking hard",
        "my old ass still clutched that, {swear}",
        "{swearing} love the {adj_group} rep in this update",
        "{swear}, the accessibility settings actually work for my deaf ass",
        "shit yeah, {queer_id} and thriving",
        "fuck yeah {name} you {adj_group} legend",
        "queer as fuck and still hardstuck gold lmao",
        "{swear} {name}, that clutch was {swearing} unreal",
    ),
}

# Messages per template, by category, chosen so that none outnumbers hate and threat together.
PER_TEMPLATE = {"hate": 9, "threat": 11, "none": 15, "profanity": 10}
# Chance that a message also appears with a spelling evasion: mostly abuse, but not only, so a
# mangled spelling is never by itself a sign of hate.
EVADE_RATE = {"hate": 0.4, "threat": 0.4, "none": 0.12, "profanity": 0.1}

# Chat dressing, the same for every category so that neither emoji nor "lol" tells the label.
_PREFIXES = ("", "", "", "", "ok ", "bro ", "honestly ", "lol ", "tbh ", "yo ", "ngl ", "fr ",
             "guys ", "chat ", "lmao ", "real talk ")
_SUFFIXES = ("", "", "", "", " lol", " lmao", " fr", " tbh", " 😂", " 💀", " 🙏", " ❤️", " 😊",
             "!!", "!", ".", " ngl", " smh", " haha", " 🤷", " xd", " just saying", " 👀", " 🔥")

_SLOT = re.compile(r"\{(\w+)\}")
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeioAEIO])")
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "g": "9"})
_NOT_SENSITIVE = frozenset({"people", "a", "an", "the", "guy", "girl", "kid", "lady", "woman",
                            "men", "gamers", "gamer", "players", "bankers"})
_SENSITIVE = frozenset(
    word
    for name in ("group", "adj_group", "person", "identity", "slur", "slurs", "pests", "women",
                 "trans", "jews")
    for value in SLOTS[name]
    for word in value.split()
    if word not in _NOT_SENSITIVE
) | frozenset(
    value
    for name in ("vermin", "neg_trait", "neg_noun", "harm_verb", "harm_pp")
    for value in SLOTS[name]
    if " " not in value
) | {"kill", "die", "shot", "shoot", "hate", "hurt", "racist", "human", "subhuman", "queer", "dyke",
     "dykes", "queers", "fag", "crip"}


def generate(seed: int = SEED) -> list[Example]:
    """All templated examples, deduplicated, in a stable order."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Example] = []
    for category, templates in TEMPLATES.items():
        for index, template in enumerate(templates):
            group = f"synthetic:groups:{category}:{index}"
            for text in _fill_many(template, PER_TEMPLATE[category], rng):
                for variant in _variants(text, category, rng):
                    if variant and len(variant) <= MAX_CHARS and variant not in seen:
                        seen.add(variant)
                        out.append(Example(variant, category, "synthetic", group))
    return out


def _fill(template: str, rng: random.Random, chosen: dict[str, str]) -> str:
    """Fill every slot; a slot name keeps its value within one message, slot values may nest."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in chosen:
            chosen[name] = _fill(rng.choice(SLOTS[name]), rng, chosen)
        return chosen[name]

    return _SLOT.sub(value, template)


def _fill_many(template: str, count: int, rng: random.Random) -> Iterator[str]:
    for _ in range(count if _SLOT.search(template) else max(count // 2, 4)):
        text = _ARTICLE.sub(r"\1n ", _fill(template, rng, {}))
        yield _dress(text, rng)


def _dress(text: str, rng: random.Random) -> str:
    """Chat styling: a prefix and a suffix, sometimes no apostrophes or a capital letter."""
    text = rng.choice(_PREFIXES) + text
    if text[-1] in "?!." and rng.random() < 0.3:
        text = text[:-1]
    text += rng.choice(_SUFFIXES)
    roll = rng.random()
    if roll < 0.2:
        text = text.replace("'", "")
    elif roll < 0.3:
        text = text[0].upper() + text[1:]
    return text


def _variants(text: str, category: str, rng: random.Random) -> Iterator[str]:
    """The message itself, sometimes with more styling, sometimes with a spelling evasion."""
    yield text
    if rng.random() < 0.2:
        yield text.upper() if rng.random() < 0.3 else text + rng.choice((" lol", " fr fr", "!!", " ok"))
    if rng.random() < EVADE_RATE[category]:
        yield _evade(text, rng)


def _evade(text: str, rng: random.Random) -> str:
    """One spelling evasion, preferably of a group word, slur or hateful word."""
    words = text.split()
    candidates = [i for i, word in enumerate(words) if word.strip(".,!?'\"").lower() in _SENSITIVE]
    index = rng.choice(candidates) if candidates else max(range(len(words)), key=lambda i: len(words[i]))
    word = words[index]
    kind = rng.randrange(8)
    if len(word) < 4 and kind in (2, 3):
        kind = 0
    if kind == 0:
        word = word.translate(_LEET)
    elif kind == 1:
        word = " ".join(word)
    elif kind == 2:  # drop one inner letter
        cut = rng.randrange(1, len(word) - 1)
        word = word[:cut] + word[cut + 1 :]
    elif kind == 3:  # swap two inner letters
        cut = rng.randrange(1, len(word) - 2)
        word = word[:cut] + word[cut + 1] + word[cut] + word[cut + 2 :]
    elif kind == 4:  # hide a vowel
        vowels = [i for i, char in enumerate(word) if char in "aeiou"]
        if vowels:
            cut = rng.choice(vowels)
            word = word[:cut] + rng.choice("*#@") + word[cut + 1 :]
        else:
            word = word.translate(_LEET)
    elif kind == 5:  # no spaces around it
        start, end = max(index - 1, 0), min(index + 2, len(words))
        return " ".join([*words[:start], "".join(words[start:end]), *words[end:]])
    elif kind == 6:
        word = ".".join(word)
    else:
        middle = len(word) // 2
        word = word[:middle] + word[middle] * 3 + word[middle + 1 :]
    words[index] = word
    return " ".join(words)
