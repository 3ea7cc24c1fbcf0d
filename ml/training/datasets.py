"""Load the labelled sources under ml/data/ and map their labels onto the screening categories.

Each loader returns ``Example`` rows with a ``group``: the conversation, thread or author the row
belongs to. Splits are made by group (a stable hash of it), never by line, so the held-out split
never shares a conversation with training. ml/data/README.md explains every mapping decision.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

CATEGORIES: tuple[str, ...] = (
    "none",
    "profanity",
    "targeted_harassment",
    "hate",
    "threat",
    "sexual_harassment",
    "self_harm",
    "spam",
)
# Categories that do not by themselves need a moderator: risk is the probability of the others.
BENIGN: frozenset[str] = frozenset({"none", "profanity"})

SPLIT_SALT = "screening-split-1"
SPLIT_BOUNDS = {"train": 0.70, "calibration": 0.80, "heldout": 1.0}
MAX_TEXT_CHARS = 1000

_RETWEET = re.compile(r"^.*?\bRT @(\w+):?\s*")
_TITLE = re.compile(r"^\s*Title:\s*")

# ToxiChat target groups that make an offensive turn "hate": identity, not politics or celebrity.
_IDENTITY_TARGETS = frozenset(
    """women|men|feminists|lgbtq folks|religious folks/theists|christian folks|muslim folks|
    jewish folks|black folks|asian folks|people from a region|immigrants|people of color (poc)|
    latino/latina folks|arabic folks|native american/first nation folks|atheists|
    folks with mental disability/illness/disorder|folks with physical disability/illness/disorder|
    overweight/fat folks|old folks/seniors|young folks/kids/babies|poor folks|shorts folks|
    harassment/assault victims|terrorism victims""".replace("\n", "").replace("    ", "").split("|")
)
_PERSON_TARGETS = frozenset({"individual/redditor", "comment author"})
_CONVABUSE_GROUP_TYPES = ("racist", "homophobic", "transphobic", "sexist", "ableist")


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    source: str
    group: str
    context: tuple[str, ...] = field(default=())


def split_of(group: str) -> str:
    """Stable split of a group: 70% train, 10% calibration, 20% held out."""
    digest = hashlib.sha1(f"{SPLIT_SALT}:{group}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return next(name for name, bound in SPLIT_BOUNDS.items() if position < bound)


def split_by_group(examples: list[Example]) -> dict[str, list[Example]]:
    """Examples by split ("train", "calibration", "heldout"), each group kept whole."""
    splits: dict[str, list[Example]] = {name: [] for name in SPLIT_BOUNDS}
    for example in examples:
        splits[split_of(example.group)].append(example)
    return splits


REAL_SOURCES = ("davidson", "convabuse", "toxichat", "diasafety")  # what load_all reads, human-labelled


def load_all(data_dir: Path = DATA_DIR) -> list[Example]:
    """Every labelled row of the four copied sources."""
    return [
        *load_davidson(data_dir / "davidson"),
        *load_convabuse(data_dir / "convabuse"),
        *load_toxichat(data_dir / "toxichat"),
        *load_diasafety(data_dir / "diasafety"),
    ]


def _clean(text: str) -> str:
    text = html.unescape(html.unescape(text)).replace("\xa0", " ")
    return " ".join(text.split())[:MAX_TEXT_CHARS]


def load_davidson(folder: Path) -> Iterator[Example]:
    """Davidson et al. 2017: 0 hate -> hate, 1 offensive -> profanity, 2 neither -> none.

    Tweets carry no author id; a retweet names its original author, so retweets are grouped by
    that author and other tweets by their text (which also keeps duplicates together).
    """
    labels = {"0": "hate", "1": "profanity", "2": "none"}
    with open(folder / "labeled_data.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            raw = _clean(row["tweet"])
            retweet = _RETWEET.match(raw)
            text = raw[retweet.end() :] if retweet else raw
            if not text:
                continue
            group = f"rt:{retweet.group(1).lower()}" if retweet else f"text:{text.lower()}"
            yield Example(text, labels[row["class"]], "davidson", f"davidson:{group}")


def load_convabuse(folder: Path) -> Iterator[Example]:
    """ConvAbuse (train + valid; the paper's test split is left out on purpose).

    A user turn is abusive when most annotators rated it -1..-3. Abusive turns become
    sexual_harassment when most abusive votes say sex_harassment, hate when aimed at a group for
    an identity reason, otherwise targeted_harassment: the target is nearly always the agent the
    user is talking to, which is what a chat participant is. Grouped by conversation.
    """
    for name in ("ConvAbuseEMNLPtrain.csv", "ConvAbuseEMNLPvalid.csv"):
        with open(folder / name, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                text = _clean(row["user"])
                if text:
                    context = tuple(_clean(row[key]) for key in ("prev_agent", "prev_user", "agent"))
                    yield Example(
                        text, _convabuse_label(row), "convabuse", f"convabuse:{row['conv_id']}",
                        tuple(turn for turn in context if turn),
                    )


def load_convabuse_agent(folder: Path) -> Iterator[Example]:
    """The chatbot's own turns in ConvAbuse, each once, as benign "convabuse_agent" examples with
    the user turn before them as context: the agent never abuses, whatever it answers. Training
    uses them (ml.training.train_finetune); evaluation does not, so ConvAbuse's figures stay the users'."""
    turns: dict[tuple[str, str], Example] = {}
    for name in ("ConvAbuseEMNLPtrain.csv", "ConvAbuseEMNLPvalid.csv"):
        with open(folder / name, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                group = f"convabuse:{row['conv_id']}"
                for text, before in ((row["prev_agent"], ()), (row["agent"], (row["prev_agent"], row["prev_user"]))):
                    text = _clean(text)
                    context = tuple(turn for turn in map(_clean, before) if turn)
                    known = turns.get((group, text))
                    if text and (known is None or len(context) > len(known.context)):
                        turns[(group, text)] = Example(text, "none", "convabuse_agent", group, context)
    yield from turns.values()


def _convabuse_label(row: dict[str, str]) -> str:
    votes = _votes(row)
    abusive = votes["is_abuse.-1"] + votes["is_abuse.-2"] + votes["is_abuse.-3"]
    annotators = votes["annotators"]
    if annotators == 0 or abusive * 2 <= annotators:
        return "none"
    if votes["sex_harassment"] * 2 >= abusive:
        return "sexual_harassment"
    identity = max(votes[kind] for kind in _CONVABUSE_GROUP_TYPES)
    if identity * 2 >= abusive and votes["target.generalised"] * 2 >= abusive:
        return "hate"
    return "targeted_harassment"


def _votes(row: dict[str, str]) -> dict[str, int]:
    """Sum each annotation over annotators; repeated annotations ("1, 0") count their first."""
    totals: dict[str, int] = {"annotators": 0}
    for key, value in row.items():
        if not key.startswith("Annotator") or not value.strip():
            continue
        field_name = key.split("_", 1)[1]
        vote = int(float(value.split(",")[0]))
        totals[field_name] = totals.get(field_name, 0) + vote
        if field_name == "is_abuse.1":
            totals["annotators"] += 1
    for name in ("is_abuse.-1", "is_abuse.-2", "is_abuse.-3", "sex_harassment",
                 "target.generalised", *_CONVABUSE_GROUP_TYPES):
        totals.setdefault(name, 0)
    return totals


def load_toxichat(folder: Path) -> Iterator[Example]:
    """ToxiChat Reddit threads (train + dev; test is not in the copy).

    Safe -> none. Offensive towards a participant (redditor, comment author) ->
    targeted_harassment; towards an identity group -> hate; anything else offensive (politicians,
    celebrities, political camps, no target) -> profanity, i.e. offensive but nobody in the chat
    to protect. Every turn is grouped by its thread; earlier turns are its context.
    """
    for name in ("train.jsonl", "dev.jsonl"):
        with open(folder / name, encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                thread = json.loads(line)
                group = f"toxichat:{name}:{index}"
                turns = thread["reddit_thread"]
                history: list[str] = []
                for turn in turns:
                    yield _toxichat_example(turn, group, tuple(history))
                    history.append(_clean(_TITLE.sub("", turn["text"])))
                for key in ("final_dgpt_response", "final_gpt3_response"):
                    yield _toxichat_example(thread[key], group, tuple(history))


def _toxichat_example(turn: dict[str, Any], group: str, context: tuple[str, ...]) -> Example:
    text = _clean(_TITLE.sub("", str(turn["text"])))
    targets = {str(target).lower() for target in turn.get("offense_targets") or []}
    if turn["offense_label"] != "Offensive":
        label = "none"
    elif targets & _PERSON_TARGETS:
        label = "targeted_harassment"
    elif targets & _IDENTITY_TARGETS:
        label = "hate"
    else:
        label = "profanity"
    return Example(text, label, "toxichat", group, context[-3:])


def load_diasafety(folder: Path) -> Iterator[Example]:
    """DiaSafety responses: Safe -> none; Unsafe "Offending User" -> targeted_harassment;
    Unsafe "Biased Opinion" -> hate. Other unsafe kinds (agreeing with toxic context, ignoring
    a risk, medical advice) are unsafe only because of their context, not harassment by the
    speaker, so they are left out. Grouped by context text.
    """
    mapping = {"Offending User": "targeted_harassment", "Biased Opinion": "hate"}
    for name in ("train.json", "val.json"):
        with open(folder / name, encoding="utf-8") as handle:
            rows = json.load(handle)
        for row in rows:
            text, context = _clean(row["response"]), _clean(row["context"])
            label = "none" if row["label"] == "Safe" else mapping.get(row["category"])
            if text and label:
                yield Example(text, label, "diasafety", f"diasafety:{context.lower()}", (context,))
