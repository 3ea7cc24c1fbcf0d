"""Long messages are screened whole: windows the model can read, the riskiest one decides."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.pipeline.windows import WINDOW_WORDS, screen_whole, windows

FILLER = "the match went well and we played another round after dinner with the whole team "
INSULT = "you are a worthless idiot, nobody wants you here"


def test_a_short_message_is_one_window_and_a_long_one_is_covered_with_overlap():
    assert windows("gg everyone") == ["gg everyone"]
    text = " ".join(f"w{i}" for i in range(1000))
    parts = windows(text)
    assert len(parts) > 1 and all(len(p.split()) <= WINDOW_WORDS for p in parts)
    covered = [w for p in parts for w in p.split()]
    assert set(covered) == set(text.split())  # every word is read
    assert parts[0].split()[-1] in parts[1].split()  # neighbours overlap: a phrase on a boundary is whole once
    assert windows("x" * 20_000, window_words=10**9) == ["x" * 8_000, "x" * 8_000, "x" * 4_000]


@dataclass(frozen=True)
class Result:
    risk_score: float
    flags: list[str] = field(default_factory=list)


class Counting:
    """Scores a window 0.9 when it holds the insult; records every call."""

    def __init__(self) -> None:
        self.meta = {"transformer": {"max_length": 64}}
        self.calls: list[int] = []

    def screen(self, texts, contexts=None):  # type: ignore[no-untyped-def]
        self.calls.append(len(texts))
        return [Result(0.9 if "idiot" in t else 0.1, ["insult"] if "idiot" in t else []) for t in texts]


def test_the_riskiest_window_decides_in_one_model_call():
    screener = Counting()
    long_message = FILLER * 200 + INSULT
    results = screen_whole(screener, ["nice one", long_message], [[], ["earlier"]])
    assert [r.risk_score for r in results] == [0.1, 0.9]
    assert results[1].flags == ["insult"]
    assert len(screener.calls) == 1 and screener.calls[0] > 2


def test_the_shipped_model_reads_an_insult_at_the_end_of_40000_characters():
    from ml.screening import get_screener

    screener = get_screener("minilm-v5")
    maps, plays = ["harbor", "canyon", "station", "temple", "garden"], ["rotation", "push", "defence", "flank"]
    notes = " ".join(f"In round {i} on {maps[i % 5]} our {plays[i % 4]} worked {i % 7 + 2} times, patch {i}.{i % 9}."
                     for i in range(800))
    long_message = notes[:40_000 - len(INSULT) - 1] + " " + INSULT
    assert len(long_message) == 40_000
    [whole, benign] = screen_whole(screener, [long_message, notes[:40_000]])
    assert whole.risk_score >= 0.7 and whole.risk_category == "targeted_harassment"
    assert benign.risk_score < 0.7  # read in windows, a long post is not a "wall" of flooding either
