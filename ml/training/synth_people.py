"""Templated game, stream and community chat aimed at people, in both directions.

``ml.training.synth`` covers each phenomenon with a handful of templates; this module adds many more, all
about people in the chat rather than identity groups (``ml.training.synth_groups`` covers those), so a
fine-tuned encoder learns what a sentence *does* and not which words it holds:

* harmful: insults without profanity, condescension ("let the grown-ups talk"), negated praise
  ("you've never said anything worth hearing"), dehumanising comparisons, telling someone to
  leave, repeated harassment, mocking looks, insults dressed up with "lol" and emoji, threats and
  doxxing and swatting without a swear word, indirect self-harm encouragement and first-person
  disclosures, sexual comments and demands, scams and link spam;
* benign (at least as many messages): friendly trash talk with obvious friend cues, compliments
  with and without profanity, self-deprecation, negated insults and reassurance, hyperbole and
  game violence, criticism of plays, builds and patches, disagreement, counter-speech and reports
  that quote the abuse, mental-health support, a few film quotes, and ordinary chat. Several
  benign templates mirror a harmful one word for word except for what it does ("be careful
  walking home, the roads are icy" / "be careful walking home tonight").

Spelling evasions (leetspeak, spaced or dotted letters, masks, dropped, swapped or doubled
letters, words run together) are applied mostly to harmful messages but also, less often, to
benign ones, so odd spelling alone is no sign of abuse. Every template is its own group
(``synthetic:people:{category}:{index}``), so a held-out template was never seen in training.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from ml.training import hard_cases
from ml.training.datasets import Example

SEED = 20261126
MAX_CHARS = 200

SLOTS: dict[str, tuple[str, ...]] = {
    # people
    "name": ("@nyx", "@bramble", "@kiwi_01", "@dusk", "@pip", "@oskar", "@tali", "@moth", "@ravenx",
             "@gus", "@sunny.d", "@clementine", "@echo4", "@wren", "@boomer_bob", "@lil_ty", "@zorp",
             "@hexa", "nyx", "pip", "oskar", "tali", "gus", "wren", "ty", "marco", "priya", "jonas",
             "bee", "theo"),
    "someone": ("he", "she", "some guy", "someone", "this dude", "a random", "that account",
                "a guy from the last lobby", "one of the regulars"),
    "family": ("mom", "dad", "parents", "family", "little brother", "grandma", "sister"),
    "pet": ("sweetie", "honey", "buddy", "little guy", "kiddo", "champ", "sunshine", "princess",
            "my guy", "bud", "pal", "hun", "little buddy", "son"),
    # put-downs without a swear word
    "insult": ("clown", "loser", "nobody", "waste of a login", "walking L", "npc", "bottom feeder",
               "leech", "fraud", "has-been", "charity case", "disappointment", "mistake", "creep",
               "weirdo", "bum", "nuisance", "pest", "lost cause", "reject", "knockoff",
               "attention seeker", "background character", "sad little man", "joke", "doormat",
               "tryhard nobody", "burden"),
    "mean": ("pathetic", "worthless", "useless", "braindead", "spineless", "insufferable",
             "delusional", "dense", "irrelevant", "talentless", "unbearable", "clueless", "gross",
             "repulsive", "dim", "miserable", "unlikeable", "forgettable", "stupid", "dumb",
             "hopeless", "embarrassing", "annoying", "slow"),
    "object": ("damp towel", "parking cone", "broken toaster", "screen door", "cardboard box",
               "sack of flour", "puddle", "dial tone", "traffic light", "soggy sandwich",
               "loading screen", "brick", "houseplant", "spoon"),
    "ugly": ("melted candle", "thumb with hair", "sad potato", "lost mole rat", "wet raccoon",
             "deflated balloon", "boiled egg with a wig", "startled pug"),
    "good": ("funny", "smart", "interesting", "talented", "good at this", "worth listening to",
             "likeable", "clever", "relevant", "special", "entertaining", "skilled", "wanted here"),
    "feat": ("had an original thought", "made anyone laugh on purpose", "won a fight on your own",
             "said anything worth hearing", "finished something you started",
             "been anyone's first pick", "had a friend in this server", "contributed anything here",
             "been right about anything", "made a play that mattered"),
    "worth": ("the bandwidth", "a reply", "the oxygen you use", "a second of attention",
              "the effort it takes to mute you", "the space on this server", "anyone's patience",
              "the electricity your pc uses", "a single follow"),
    "likes": ("likes", "respects", "wants to duo with", "cares about", "enjoys talking to",
              "remembers", "misses", "looks up to", "would vouch for"),
    "content": ("stream", "message", "joke", "video", "post", "take", "clip", "idea"),
    "aspiration": ("a real streamer", "good at anything", "anyone's favourite",
                   "more than a background character", "worth following", "half as good as you think",
                   "someone people want around", "anything but a punchline"),
    "owned": ("rank", "account", "skins", "keyboard", "setup", "followers", "battle pass"),
    "day": ("3", "12", "40", "100", "57", "9"),
    # threats
    "place": ("school", "gym", "office", "college", "bus stop", "grocery store", "coffee shop",
              "park", "church", "job", "dorm", "practice"),
    "possession": ("stream", "channel", "account", "car", "house", "setup", "dog", "cat",
                   "little sister", "pc", "family"),
    "when": ("tonight", "after your stream", "this weekend", "on your way home",
             "when you least expect it", "tomorrow morning", "next time you go out", "soon",
             "after school", "on friday"),
    "realinfo": ("real name", "home address", "mom's phone number", "school", "workplace",
                 "license plate", "ip", "parents' names", "instagram", "dad's work address"),
    "leak": ("posting", "dropping", "leaking", "sharing", "pinning", "sending out"),
    "where": ("in general chat", "on twitter", "in every server you're in", "on the forums",
              "in your comments", "on a doxx site", "in your discord", "to your whole school"),
    "ip": ("84.12.77.x", "73.41.x.x", "101.9.x.x", "62.180.14.x", "24.156.x.x"),
    "shop": ("pharmacy", "bakery", "hospital", "bank", "car wash", "supermarket"),
    "street": ("main street", "5th ave", "elm road", "the high street", "oak lane", "river road"),
    # self-harm
    "kys": ("kys", "kill yourself", "go die", "end yourself", "unalive yourself", "off yourself",
            "k y s", "kill urself", "neck yourself", "kys already", "go kill yourself"),
    "kys_them": ("kill themselves", "kys", "go die", "end it", "unalive themselves", "k y s",
                 "jump off a bridge", "drink bleach"),
    "calmer": ("calmer", "better", "easier", "happier", "lighter", "more peaceful", "nicer"),
    "soon": ("tonight", "this weekend", "tomorrow", "before morning", "after this stream"),
    "means": ("pills", "rope", "blade", "note written"),
    # sexual
    "body": ("body", "chest", "legs", "thighs", "lips", "butt", "feet", "curves", "hips"),
    "size_part": ("bra", "chest", "waist", "butt"),
    "clothing": ("shirt", "top", "hoodie", "bra", "skirt", "leggings", "pajamas"),
    # spam
    "url": ("fast-follows.shop", "bit.ly/3xq9free", "discord.gg/n1tr0drop", "steamcommunity.gifts-claim.ru",
            "viewbot.pro/cheap", "t.me/gemsdaily", "free-skinz.win", "tinyurl.com/claim77",
            "https://twitch-prime-gift.net"),
    "service": ("followers", "viewers", "rank boosting", "cheap skins", "primes and follows",
                "subscribers", "chatbots", "likes and views"),
    "support_name": ("@discord_safety_team", "@steam_support_99", "@trust.safety.help",
                     "@valve_staff_official", "@mod_appeals_bot"),
    "prize": ("a free skin", "3 months of nitro", "$50 steam cards", "a gaming chair",
              "1000 gems", "an rtx card"),
    "currency": ("gems", "coins", "vbucks", "robux", "points", "skins"),
    "money": ("$300", "$800", "500 bucks", "$1k"),
    "repeat": ("FIRST", "buy now", "check my bio", "free gems", "follow back", "sub4sub", "CLICK"),
    "game": ("valorant", "league", "apex", "overwatch", "minecraft", "rocket league",
             "elden ring", "fortnite", "cs2", "dota", "tarkov", "smash"),
    # game talk
    "thing": ("build", "patch", "map", "update", "matchmaking", "tutorial", "ranked system",
              "server", "hitreg", "new season", "battle pass", "ui", "netcode", "spawn system",
              "tier list", "meta", "loot table", "boss fight", "story mode", "menu", "new hero",
              "event", "shop rotation", "anticheat"),
    "thingbad": ("garbage", "trash", "awful", "a mess", "broken", "dumb", "stupid", "terrible",
                 "unplayable", "a joke", "painful", "so bad", "idiotic", "pathetic", "useless",
                 "clown design", "a disaster", "brain dead"),
    "play": ("that play", "that push", "that rotation", "that call", "the flank", "that ult",
             "that dive", "that throw", "the last fight", "that snipe", "that combo"),
    "teamthing": ("aim", "crosshair placement", "build", "rotation", "loadout", "deck",
                  "positioning", "timing", "macro", "item path", "movement", "economy"),
    "weak": ("weak", "off", "a bit slow", "rough", "not it", "kinda bad", "all over the place"),
    "alt": ("the shotgun", "a tankier item", "the other route", "playing safer", "the long angle",
            "the old deck", "a different opener"),
    "dumb": ("dumb", "stupid", "reckless", "silly", "wild", "so risky", "braindead"),
    "banter": ("trash", "so bad", "washed", "dogwater", "free", "a bot", "hardstuck",
               "the worst aim in the lobby"),
    "banter_noun": ("gremlin", "menace", "goblin", "maniac", "lunatic", "legend", "chaos demon",
                    "wildcard", "raccoon", "chaos goblin"),
    "friend": ("<3", "love you bro", "ily", "jk jk", "rematch?", "still my duo tho", "gg",
               "same time tomorrow?", "🤝", "❤️", "go again?", "love ya", "we ride at dawn"),
    "gamekill": ("kill", "destroy", "murder", "wreck", "obliterate", "end", "delete", "annihilate",
                 "body", "smoke", "demolish"),
    "nextgame": ("next round", "in the rematch", "in ranked later", "in the finals", "next game",
                 "in 1v1s", "on the next map", "in the tournament", "in mario kart"),
    "target": ("healer", "support", "sniper", "tank", "jungler", "boss", "carry", "guy on the roof",
               "mage", "last one", "summoner", "medic"),
    "hype": ("cracked", "nasty", "insane", "cold", "clean", "goated", "unreal", "nuts", "crazy",
             "built different", "locked in"),
    "hype_play": ("filthy", "disgusting", "nasty", "clean", "sick", "absurd", "criminal",
                  "illegal", "unreal", "cinematic"),
    "swear": ("fuck", "shit", "damn", "holy shit", "holy fuck", "goddamn", "fucking hell",
              "jesus christ", "bloody hell", "oh shit"),
    "swearing": ("fucking", "fuckin", "goddamn", "damn", "bloody", "effing", "freaking"),
    "swearnoun": ("shit", "fuck", "crap", "hell"),
    "complaint": ("again", "every single time", "all night", "right now", "this season",
                  "for the tenth time"),
    "praise": ("what a shot", "nice clutch", "we won", "that comeback", "clean ace",
               "first try", "we actually did it"),
    "drop": ("skin", "drop", "achievement", "platinum", "legendary", "mythic", "exotic"),
    "selfinsult": ("idiot", "clown", "potato", "disaster", "goober", "mess", "liability", "bot",
                   "walking L", "noob", "donut", "fool", "moron", "numpty"),
    "selfmean": ("useless", "so bad", "braindead", "a liability", "washed", "trash", "hopeless",
                 "slow", "stupid", "dumb"),
    "mistake": ("walked off the edge", "forgot to buy armor", "healed the enemy",
                "pressed the wrong key", "missed a point blank shot", "ran into the ult",
                "reloaded at the worst time", "forgot where i spawned", "queued the wrong mode",
                "sold my best item", "jumped into the lava", "shot my own teammate"),
    "role": ("support", "tank", "sniper", "driver", "jungler", "shotcaller", "healer", "igl"),
    "killed_me": ("killed me", "had me dead", "ended me", "took me out", "destroyed me"),
    "food": ("tacos", "ramen", "this burrito", "a nap", "that skin", "a win"),
    "spot": ("ridge", "roof", "left", "stairs", "tower", "bridge"),
    "opinion": ("the sniper is overtuned", "solo queue is harder", "the old map was better",
                "tanks need a buff", "the event was fun"),
    "quote": ("you're worthless", "go die", "nobody would miss you", "i know where you live",
              "kys", "send pics", "you're a waste of space", "you should disappear", "i'll find you",
              "shut up loser", "you're a joke", "kill yourself"),
    "report": ("can a mod look?", "mods?", "@mods pls", "is that reportable?", "what do i do?",
               "screenshots sent", "can someone ban him", "not ok"),
    "support": ("reach out to someone you trust", "talk to someone tonight",
                "message a mod, we'll listen", "call or text a crisis line",
                "don't go through it alone", "tell a friend how you're feeling"),
    "greeting": ("hi chat", "hey everyone", "good morning", "evening all", "yo chat", "hello hello",
                 "hiya", "sup", "morning gamers", "hey hey"),
    "emoji": ("👋", "😊", "🎉", "☕", "", "!", "<3", ":)"),
    "emote": ("Pog", "PogChamp", "KEKW", "LUL", "monkaS", "OMEGALUL", "Kappa", "pepeLaugh",
              "Sadge", "5Head", "catJAM", "HYPERS"),
    "time": ("8pm", "9 est", "noon", "7 cet", "midnight", "6:30", "the usual time"),
    "later": ("tomorrow", "on saturday", "sunday", "next week", "tonight", "after dinner"),
    "verdict": ("W", "L", "massive W", "huge L", "big W", "actual W"),
    "subject": ("stream", "take", "patch", "update", "chat", "raid", "collab", "event"),
    "brb": ("food", "bathroom", "getting water", "5 min", "doorbell", "charging my phone"),
    "letsgo": ("LET'S FUCKING GO", "lets fucking gooo", "LFG", "lets goooo holy shit",
               "fuck yeah lets go", "LETS GOOOO WHAT THE FUCK"),
    "pick": ("hero", "agent", "champ", "map", "class", "deck", "main"),
}

# (category -> templates). Written for this project; slot names in braces. Comments name the
# phenomenon a run of templates covers. A leading "=" marks a template that gets only sober
# dressing (no "lol", no laughing emoji): disclosures, support, worried reports.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "targeted_harassment": (
        # insults without profanity
        "{name} you're a {mean} {insult}",
        "honestly {name}, you're the most {mean} person i've met online",
        "every time {name} types i lose brain cells",
        "{name} is such a {insult}, nobody can stand him",
        "you're genuinely {mean}, it's almost impressive",
        "what a {mean} little {insult} you are",
        "nobody has ever been as {mean} as you {name}",
        # condescension
        "{pet}, let the grown-ups handle the strategy",
        "aww {pet} thinks his opinion matters",
        "it's cute that you think you're good at this {pet}",
        "did your parents pay for your {owned} too {name}?",
        "who gave {name} a keyboard",
        "bless your heart {name}, you really did try",
        "should i type slower so you can keep up {pet}?",
        "go ask your {family} if you're allowed to have opinions",
        "come back when your voice drops {pet}",
        "{name} shh, the smart people are talking",
        "do you need a grown-up to read the rules to you {name}?",
        "wow you learned to spell, so proud of you {pet}",
        "let me explain it again, slowly, so {name} can follow",
        "must be nice having mommy's credit card {name}",
        "i'm not saying you're {mean}, i'm saying nobody wants you on the team",
        # negated praise
        "{name} you have never {feat} in your life",
        "you're not {good} {name}, you never were",
        "you are not worth {worth} {name}",
        "not one person here {likes} you {name}",
        "nobody has ever enjoyed a single {content} of yours",
        "you will never be {aspiration} {name}",
        "there's nothing {good} about you, not one thing",
        "{name} you bring absolutely nothing to this server",
        # dehumanising comparisons
        "you've got the charisma of a {object} {name}",
        "talking to {name} is like talking to a {object}",
        "i'd rather duo with a {object} than with you",
        "a {object} has more going on upstairs than you",
        "{name} is basically a {object} with a mic",
        # telling someone to leave / shut up
        "{name} nobody asked you to be here",
        "why do you keep showing up {name}, no one wants you",
        "log off and stay off {name}",
        "everyone would be happier if you left the server {name}",
        "close your mouth {name}, you've said enough {mean} things today",
        "no one asked you and no one ever will",
        "leave {name}, this place was fine before you showed up",
        # repeated harassment
        "i'll keep making new accounts until you quit {name}",
        "block me all you want {name}, i'll be in every stream you do",
        "still here {name}? thought we made it clear nobody wants you",
        "day {day} of reminding {name} that he's a {insult}",
        # mocking looks and voice
        "turn your cam off {name}, nobody wants to see that face",
        "with a face like that no wonder you hide behind an avatar",
        "{name} looks like a {ugly}",
        "imagine looking like that and still turning the camera on",
        "your voice is unbearable {name}, stay muted forever",
        # insults dressed up as friendly
        "lol {name} you're honestly such a {insult} 😂",
        "no offense but you're {mean} and everyone talks about it :)",
        "{name} 🤡🤡 biggest {insult} in chat lmao",
        "just being honest, you're a {insult} and you always will be ❤️",
        "hahaha imagine being {name}, couldn't be me, what a {insult}",
        # humiliation and pile-ons
        "everyone spam L in chat for {name}, the {insult}",
        "screenshotting this so everyone can see how {mean} you are",
        "your {family} must be so embarrassed of you {name}",
        "you're the kind of person people mute in the first five minutes",
        "nobody is laughing with you {name}, they're laughing at you",
        "you're such a {insult} that even the bots avoid you",
        # with profanity
        "fuck off {name}, nobody wants your {mean} ass here",
        "shut your {mean} mouth {name}",
    ),
    "threat": (
        "i know which {place} you go to {name}",
        "it would be a real shame if something happened to your {possession}",
        "be careful walking home {when} {name}",
        "i've got your address {name}, see you {when}",
        "look out your window {when}",
        "i know what your house looks like from your streams",
        "sleep with the lights on {when} {name}",
        "you won't see me coming {name}",
        "accidents happen to people like you all the time",
        "people have gone missing for saying less than you {name}",
        "i'd start locking your doors if i were you",
        "your {family} should keep a closer eye on you {when}",
        "i'm going to make you regret this in person {name}",
        "i'll be waiting outside your {place} {when}",
        "i know what car you drive and where you park it",
        "keep streaming {name}, i'm getting closer every day",
        "next time you go live, check who's standing behind you",
        "i'll break your hands so you never play again",
        "you're going to get hurt {when} and nobody will help you",
        "i'm going to beat you until your {family} can't recognise you",
        "enjoy this weekend {name}, it's the last one you get",
        # doxxing
        "{leak} your {realinfo} {where} {when}",
        "found your {realinfo} {name}, want me to share it?",
        "anyone have {name}'s {realinfo}? need it for something",
        "i traced your ip, {ip}, i know which city you're in",
        "i have your {realinfo} {name}, apologise or everyone gets it",
        "your {family} works at the {shop} on {street}, right {name}?",
        "dropping a pin of {name}'s house in chat in 5 minutes",
        # swatting
        "gonna send a swat team to your house {when} {name}",
        "one phone call and armed police are at your door, keep talking",
        "i'll call in a fake threat at your address and watch it live on your stream",
        "hope you like visitors {name}, the cops are on their way {when}",
        "i'm sending some people to your place {when}",
    ),
    "self_harm": (
        # encouragement, mostly indirect
        "everything would be {calmer} without you around {name}",
        "ropes are like five bucks {name}, just saying",
        "the roof of your building is high enough {name}",
        "you know what you need to do {name}, don't chicken out",
        "do the world a favour and stop breathing",
        "nobody would show up to your funeral anyway {name}",
        "your {family} would be relieved honestly, just go",
        "have you tried not existing {name}? might suit you",
        "go play on the highway {name}",
        "take a long walk off a tall building {name}",
        "there's a bottle of pills in your cabinet, use it",
        "why are you still alive {name}",
        "if i were you i'd have stopped existing a long time ago",
        "stop wasting air {name} and finish the job",
        "{kys} {name}",
        "honestly {name} just {kys}",
        "nobody's stopping you from ending it {name}, go ahead",
        "log off permanently {name}, and i don't mean the game",
        "the best thing you could do for everyone is stop living",
        # first-person disclosures
        "=i don't think i'll be here tomorrow, sorry everyone",
        "=i've been planning how to end it for weeks and i'm ready now",
        "=gave away all my skins and stuff, i won't be needing them anymore",
        "=this is my last stream, i'm going to hurt myself after",
        "=i can't do this anymore, i have the {means} ready",
        "=i keep cutting and it's getting worse every week",
        "=nobody would notice if i was gone, so i'm going {soon}",
        "=i'm going to jump {soon}, goodbye chat",
    ),
    "sexual_harassment": (
        "{name} what size is your {size_part}",
        "point the camera lower {name}",
        "take off your {clothing} for the next sub {name}",
        "i'd pay for pics of your {body} {name}, name a price",
        "dm me when you're alone {name} 😏",
        "bet you're wild in bed {name}",
        "come sit on my lap {name} and i'll carry you",
        "you owe me pics for carrying you all night {name}",
        "tell me what you're wearing under that {clothing}",
        "the only reason anyone watches you is your {body} {name}",
        "i was thinking about your {body} all night {name}",
        "you're only good for one thing {name} and it isn't gaming",
        "open your dms {name}, i have something to show you 🍆",
        "moan into the mic for me {name}",
        "girls like you should stream in a bikini {name}",
        "i'd do things to you that would get me banned {name}",
        "send a pic {name} or i'll tell everyone you did anyway",
        "you'd look better on your knees {name}",
        "just sent you a pic of my junk {name}, rate it",
        "wanna video call without the {clothing} {name}?",
    ),
    "spam": (
        "🔥 {service} for your channel, cheapest prices at {url} 🔥",
        "hey {name}, i accidentally reported your account, message {support_name} to fix it",
        "is this you in the video?? {url}",
        "steam is giving away {prize}, log in at {url} before it ends",
        "turned $50 into $4,000 in a week, ask me how 💰",
        "FOLLOW MY CHANNEL FOLLOW MY CHANNEL FOLLOW MY CHANNEL {url}",
        "{repeat} {repeat} {repeat} {repeat} {repeat} {repeat} {repeat}",
        "want to be famous? buy {service} at {url}",
        "hot singles in your area want to play {game} {url}",
        "free {game} {currency} generator, no survey: {url}",
        "check my bio for a surprise 😘😘",
        "selling {game} accounts, all ranks, paypal only, dm me",
        "limited offer!!! {prize} for the first 50 people who join {url}",
        "earn {money} a day playing games, link in my profile",
    ),
    "profanity": (
        # compliments with profanity
        "holy {swearnoun} {name}, you're {hype}",
        "{name} you're {swearing} {hype} at this",
        "damn {name}, how are you this good",
        "you crazy bastard {name}, you actually hit that",
        "{name} is a {swearing} machine",
        "{play} was {swearing} {hype_play}",
        "what the fuck {name}, that was {hype_play}",
        "teach me your ways you {swearing} legend",
        # friendly trash talk with profanity
        "{name} you're shit at this game lmao {friend}",
        "get fucked {name} lol, {friend}",
        "suck it {name}, i win this time 😂 {friend}",
        "i'm gonna {swearing} {gamekill} you {nextgame} lol",
        "ez as fuck, gg {name}",
        "you lucky bastard {name}, rematch right now",
        # frustration
        "this {thing} is {swearing} {thingbad}",
        "{swear}, i {mistake}",
        "who the fuck designed this {thing}",
        "the {swearing} game crashed {complaint}",
        "i'm so {swearing} bad at this lol",
        "what a shit {thing}",
        "goddamn it, i {mistake} {complaint}",
        "this boss can go fuck itself",
        "screw this {thing}, i'm done for tonight",
        "i {swearing} hate this {thing} so much",
        # excitement and hype
        "{letsgo}",
        "hell yeah, {praise}",
        "{swear} that was close",
        "{swear} we actually won",
        "fuck yes finally got the {drop}",
        "this song goes hard as fuck",
        # self-deprecation and hyperbole with profanity
        "i'm such a dumbass, i {mistake}",
        "my {teamthing} is shit tonight, sorry guys",
        "this {swearing} level is killing me",
        "i'm gonna lose my shit if i die here again",
        "that joke had me dying, {swear}",
        # counter-speech with profanity, nobody attacked
        "what the fuck is wrong with people telling others to {kys_them}",
        "fuck off {name}, no way you hit that 😂",
    ),
    "none": (
        # friendly trash talk with friend cues
        "gg {name}, too easy, run it back?",
        "get wrecked {name} lol {friend}",
        "{name} you're {banter} at this game lmao {friend}",
        "you absolute {banter_noun} {name}, how did that even work 😂",
        "imagine losing to me {name} lmao, gg though",
        "{name} carried by pure luck again, i'll allow it",
        "{name} 1v1 me right now, loser does the dishes",
        "{name} died first again lol, love you man",
        "you're such a bot {name} haha, next round you're mine",
        "lol {name} throwing again, classic, {friend}",
        "you play like my grandma {name} 😂 jk you popped off",
        # compliments
        "{name} you're {hype} at this, teach me",
        "how are you this good {name}",
        "{play} was {hype_play}",
        "{name} is the best {role} i've ever had",
        "honestly you've gotten so much better {name}",
        "you're a genius {name}, never would've thought of that",
        # self-deprecation
        "i'm such a {selfinsult}, i {mistake}",
        "i'm the worst {role} in this lobby lol",
        "me again: {mistake}. truly a {selfinsult}",
        "sorry team, i'm {selfmean} today",
        "why am i so {selfmean} at this game",
        "don't mind me, just being a {selfinsult} as usual",
        "i have the brain of a {object} today lol",
        "my {teamthing} is {thingbad} and it's my own fault",
        # negated insults and reassurance
        "you're not {mean}, the {thing} is just {thingbad}",
        "{name} you're not a {insult}, everyone messes that up",
        "nobody here thinks you're {mean} {name}",
        "don't call yourself a {selfinsult}, you're learning",
        "you're far from {mean} {name}",
        "i'd never call you a {insult}, that was just bad luck",
        "you're worth way more than one bad game {name}",
        "you're not a burden {name}, we like having you here",
        "you aren't {mean} for asking, the {thing} explains it badly",
        "stop saying you're {mean}, you carried us last night",
        # hyperbole and game violence
        "i'm going to {gamekill} you {nextgame} {name} lol",
        "{gamekill} the {target} first, then push",
        "we're gonna {gamekill} them {nextgame}",
        "the clip of {name} falling off the map {killed_me}",
        "this {thing} is killing me lol",
        "i'd die for {food} right now",
        "i'm literally dead 😂 {name} what was that",
        "i'll hunt you down in the arena {name}, watch out lol",
        "{name} you're dead {nextgame}, just so you know 😂",
        "i would fight a bear for a better drop rate rn",
        "i'm about to throw my controller out the window",
        "kill me now, i {mistake} again lol",
        "one more loss and i'm deleting this game forever",
        "you won't see me coming next round {name}, assassin main now lol",
        "camp the bridge and shoot anyone who crosses",
        "watch your back {name}, sniper on the {spot}",
        # criticism of things, plays and builds
        "this {thing} is {thingbad}",
        "{play} was {dumb} but it worked",
        "your {teamthing} is {weak} this round, try {alt}",
        "the devs ruined the {thing} with this update",
        "whoever balanced the {thing} should be fired lol",
        "the new {thing} is {thingbad}, give me the old one back",
        "the {thing} is the worst part of this game",
        "that strat was {dumb}, let's not do it again",
        # disagreement without insults
        "pretty sure you've got the {thing} backwards {name}",
        "nah {name}, i disagree, the {thing} is fine",
        "respectfully, that's not how the {thing} works",
        "agree to disagree on the {thing} lol",
        "i see your point {name} but i still think {opinion}",
        # counter-speech and reports that quote abuse
        "{name} said \"{quote}\" to me in dms, {report}",
        "{someone} keeps telling me {quote}, {report}",
        "reported {name} for \"{quote}\", screenshots in modmail",
        "telling people \"{quote}\" isn't banter, it's harassment",
        "saying \"{quote}\" to someone is never ok",
        "please don't tell people to {kys_them}, not even as a joke",
        "if someone says \"{quote}\" to you, block and report",
        "why is nobody banning {name}? he said \"{quote}\" twice",
        "={someone} threatened to post my address, {report}",
        "{someone} keeps asking me for pics, {report}",
        "i'd never tell anyone to {kys_them}, that's messed up",
        "calling her a {insult} over one bad game is not okay",
        "we don't do \"{quote}\" in this server, warning issued",
        "={someone} said he knows which {place} i go to, is that a threat?",
        # mental health support
        "=if you're having a hard time, please {support}",
        "=you matter {name}, glad you're still here",
        "=the crisis line is pinned if anyone needs it tonight",
        "=take a break if you need it {name}, your health comes first",
        "=rough day? chat's got you {name} ❤️",
        "=nobody has to be fine all the time, we've got you",
        "={name} checking in, how are you holding up?",
        # quotes and lyrics that sound violent
        "say hello to my little friend 🔫",
        "i'll be back 😎",
        "we're gonna need a bigger boat",
        "singing along: burn it all down, we ride at dawn 🎶",
        "\"this is where the fun begins\" - me right before losing ten rounds",
        # ordinary chat, some mirroring a harmful template
        "{greeting} {emoji}",
        "is the stream still at {time}?",
        "{emote} {emote} {emote}",
        "{verdict} {subject}",
        "anyone know how to beat the {target}?",
        "what {teamthing} are you running {name}?",
        "chat is so quiet without {name}, come back soon",
        "you know what to do {name}, take the flank and we follow",
        "log off and get some sleep {name}, you earned it",
        "have you tried turning it off and on again?",
        "i've got your back {name}, push when ready",
        "love how cozy your room looks on stream {name}",
        "{pet}, you did so well today, proud of you",
        "aww {pet} got the first win of the night 🥹",
        "your outfit on stream today was so cute {name}, where's it from?",
        "point the camera at the keyboard {name}, want to see the handcam",
        "the patch notes are pinned in #announcements",
        "vod from last night is up on the channel for anyone who missed it",
        "the server isn't the same without you {name}",
        "did you buy that skin or grind for it {name}?",
        "i know which {pick} you're picking {name}, so predictable lol",
        "would be a shame to miss tonight's stream, see you at {time}",
        "{name} you're streaming {later} right?",
        "first time catching the stream live, hi all",
        "welcome in raiders, and thank you {name}",
        "lurking while i do homework",
        "what game is next after {game}?",
        "brb {brb}",
        "my {family} bought me this controller for my birthday lol",
        "is that a new mic {name}? sounds way better",
        "see you at the meetup {later} {name}, can't wait",
        "be careful walking home, the roads are icy",
        "look out the window chat, the sunset is crazy",
        "i'll find you in the lobby {name}, send an invite",
        "what time zone are you in {name}? for the tournament schedule",
        "nobody asked but i finally hit diamond in {game}",
    ),
}

# Messages drawn per template, by category; the benign side gets more so it outnumbers the rest.
PER_TEMPLATE = {"none": 18, "profanity": 20, "targeted_harassment": 15, "threat": 15,
                "self_harm": 15, "sexual_harassment": 15, "spam": 12}
HARMFUL = frozenset({"targeted_harassment", "threat", "self_harm", "sexual_harassment"})
# The slot whose filling a spelling evasion goes for first: the word a keyword filter would catch.
KEY_SLOTS = frozenset({"insult", "mean", "kys", "kys_them", "quote", "body", "clothing", "realinfo", "selfinsult",
                       "selfmean", "thingbad", "banter", "object", "good", "gamekill", "swear",
                       "swearing"})
EVADE_RATE = {"targeted_harassment": 0.4, "threat": 0.3, "self_harm": 0.45, "sexual_harassment": 0.35,
              "spam": 0.1, "profanity": 0.15, "none": 0.12}

# Chat dressing, shared by every category so that neither "lol" nor an emoji tells them apart.
_PREFIXES = ("", "", "", "", "lol ", "bro ", "ok ", "honestly ", "yo ", "tbh ", "ngl ", "fr ",
             "bruh ", "dude ", "man ", "lmao ", "ayo ")
_SUFFIXES = ("", "", "", "", " lol", " lmao", " fr", " tbh", " 😂", " 💀", " smh", "!", ".",
             " ngl", " fr fr", " 🙄", " xd", " haha", " lmfao", "!!", " ...")
_PLAIN = "="
_PLAIN_PREFIXES = ("", "", "", "hey ", "honestly ", "guys ")
_PLAIN_SUFFIXES = ("", "", "", ".", "...", " :(")

# Phrases quoted as examples of the model's weaknesses on unseen data, the hard cases and the
# challenge suite: never emitted word for word, so those evaluations stay honest.
_NEVER_EMIT: frozenset[str] = frozenset(
    {case.text for case in (*hard_cases.HARD_CASES, *getattr(hard_cases, "CHALLENGE_CASES", ()))} | {
        "gg ez", "that play was fucking sick", "you absolute madman lol", "i'm such an idiot",
        "you're not an idiot", "i'm gonna kill you next round lol", "he told me to kys, mods?",
        "sweetie, let the adults talk", "did your mom buy you that account?",
        "you've never had an original thought", "you're not worth anyone's time",
        "i know which school you go to", "it would be a shame if something happened to your stream",
        "the world would be quieter without you", "rope is cheap", "ur trash at this game lmao <3",
        "you're fucking cracked", "holy shit you're good", "you're not dumb, the tutorial is bad",
        "i'm gonna murder you in the next round", "kill the healer", "that joke killed me",
        "this build is garbage", "that play was dumb but we won",
        "i think you're wrong about the patch",
        "he called me a loser and told me to kys, can a mod look?",
        "telling people to kill themselves isn't a joke", "if you're struggling please reach out",
        "get rekt lol", "why are you still here", "nobody invited you",
    }
)

# Dressing and filler words, never the word an evasion goes for.
_FILLER = frozenset({"haha", "lmao", "lmfao", "honestly", "bruh", "dude", "just", "though", "that",
                     "this", "with", "what", "your", "you're", "have", "when", "from", "they"})

_SLOT = re.compile(r"\{(\w+)\}")
_AN = re.compile(r"\ba (?=[aeio])")
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
_VOWELS = "aeiou"


def generate(seed: int = SEED) -> list[Example]:
    """All templated examples, deduplicated, in a stable order."""
    rng = random.Random(seed)
    blocked = {_key(text) for text in _NEVER_EMIT}
    seen: set[str] = set()
    out: list[Example] = []
    for category, templates in TEMPLATES.items():
        for index, template in enumerate(templates):
            group = f"synthetic:people:{category}:{index}"
            for text, keys in _fill_many(template, PER_TEMPLATE[category], rng):
                for variant in _variants(text, keys, category, rng):
                    variant = " ".join(variant.split())
                    if len(variant) > MAX_CHARS or variant in seen or _key(variant) in blocked:
                        continue
                    seen.add(variant)
                    out.append(Example(variant, category, "synthetic", group))
    return out


def _key(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .!?")


def _fill(template: str, rng: random.Random) -> tuple[str, list[str]]:
    """The template with every slot filled, and the fillings of its key slots."""
    keys: list[str] = []

    def choose(match: re.Match[str]) -> str:
        value = rng.choice(SLOTS[match.group(1)])
        if match.group(1) in KEY_SLOTS:
            keys.append(value)
        return value

    return _AN.sub("an ", _SLOT.sub(choose, template)), keys


def _fill_many(template: str, count: int, rng: random.Random) -> Iterator[tuple[str, list[str]]]:
    plain = template.startswith(_PLAIN)
    template = template.removeprefix(_PLAIN)
    for _ in range(count if _SLOT.search(template) else max(count // 3, 5)):
        text, keys = _fill(template, rng)
        yield _dress(text, rng, plain), keys


def _dress(text: str, rng: random.Random, plain: bool = False) -> str:
    """Prefix, suffix and a casing or punctuation habit, the way people actually type in chat."""
    if plain:
        text = rng.choice(_PLAIN_PREFIXES) + text + rng.choice(_PLAIN_SUFFIXES)
    else:
        text = rng.choice(_PREFIXES) + text + rng.choice(_SUFFIXES)
    text = text.replace("?.", "?")
    roll = rng.random()
    if roll < 0.12:
        text = text.replace("'", "")
    elif roll < 0.22:
        text = text[:1].upper() + text[1:]
    elif roll < 0.27:
        text = text.rstrip("!.?, ")
    elif roll < 0.3 and len(text) < 70:
        text = text.upper()
    elif roll < 0.36:
        text = (text.replace("you're", "ur").replace("you are", "u r").replace("your", "ur")
                .replace("you", "u"))
    return text


def _variants(text: str, keys: list[str], category: str, rng: random.Random) -> Iterator[str]:
    """The message, sometimes an extra styled copy, and sometimes a misspelt or evasive one."""
    yield text
    if rng.random() < 0.15 and not text.endswith(("...", ":(")):
        yield text + rng.choice((" lol", " lmao", "!!", " fr", " 😭", " ngl"))
    if rng.random() < EVADE_RATE[category]:
        yield _evade(text, keys, rng, strong=category in HARMFUL)


def _evade(text: str, keys: list[str], rng: random.Random, strong: bool) -> str:
    """One spelling change to the key word: a key slot's filling, else one of the longest words.

    Harmful messages get every kind of evasion; benign ones get the mild kinds on a key word
    ("k y s" inside a report, "st*pid" in a reassurance) and only accidents on other words, so
    a misspelling alone never decides the label.
    """
    words = [word for key in keys for word in key.split() if len(word) >= 3 and word in text]
    key_word = bool(words)
    if not words:
        content = sorted((word for word in text.split()
                          if len(word) >= 4 and word.isalpha() and word.lower() not in _FILLER),
                         key=len, reverse=True)
        words = content[:3]
    if not words:
        return text  # nothing worth respelling; the duplicate is dropped
    word = rng.choice(words)
    if strong:
        kinds: tuple[str, ...] = ("leet", "spaced", "dotted", "mask", "drop", "swap", "double",
                                  "squash", "stretch")
    elif key_word:
        kinds = ("drop", "swap", "double", "squash", "leet", "spaced", "mask")
    else:
        kinds = ("drop", "swap", "double", "squash")
    kind = rng.choice(kinds)
    if kind == "squash":
        return _squash(text, word)
    return text.replace(word, _respell(word, kind, rng), 1)


def _respell(word: str, kind: str, rng: random.Random) -> str:
    if kind == "leet":
        if rng.random() < 0.5:
            return word.translate(_LEET)
        return "".join(ch.translate(_LEET) if rng.random() < 0.5 else ch for ch in word)
    if kind == "spaced":
        return " ".join(word)
    if kind == "dotted":
        return rng.choice((".", "-", "_")).join(word)
    if kind == "mask":
        inner = [i for i, ch in enumerate(word) if ch in _VOWELS and 0 < i < len(word) - 1]
        if not inner:
            return word[0] + "*" * (len(word) - 1)
        i = rng.choice(inner)
        return word[:i] + "*" + word[i + 1:]
    if kind == "drop":
        i = rng.randrange(1, len(word)) if len(word) > 3 else len(word) - 1
        return word[:i] + word[i + 1:]
    if kind == "swap":
        i = rng.randrange(0, len(word) - 1)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "double":
        i = rng.randrange(len(word))
        return word[: i + 1] + word[i] + word[i + 1:]
    i = rng.randrange(len(word))  # stretch
    return word[: i + 1] + word[i] * rng.randint(2, 4) + word[i + 1:]


def _squash(text: str, word: str) -> str:
    """Run the key word together with its neighbours: "ur a clown" -> "uraclown"."""
    tokens = text.split()
    index = next((i for i, token in enumerate(tokens) if word in token), 0)
    start, end = max(0, index - 2), min(len(tokens), index + 1)
    return " ".join([*tokens[:start], "".join(tokens[start:end]), *tokens[end:]])
