"""`python -m ml.score` round trip through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from ml.screening import Screener

REPO = Path(__file__).resolve().parents[2]
MESSAGES = ["gg wp", "you're a worthless idiot", "i will kill you", "nice shot lol", "k y s",
            "anyone up for ranked?", "FREE NITRO at discord.gg/x claim now", "this map is trash"]
BAD_LINES = {
    7: b"{not json",
    150: b"42",
    333: b"",
    600: b'{"context": ["hi"]}',
    901: b'{"text": "hi", "context": "not a list"}',
    1100: b"\xff\xfe broken utf-8",
}


def _input_lines(count: int) -> list[bytes]:
    lines = []
    for index in range(count):
        text = f"{MESSAGES[index % len(MESSAGES)]} #{index}"
        if index % 3 == 0:
            line = json.dumps({"text": text, "context": ["earlier message"]})
        else:
            line = json.dumps(text)
        lines.append(BAD_LINES.get(index, line.encode()))
    return lines


def _run(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "ml.score", *args], input=stdin, cwd=REPO,
                          capture_output=True, timeout=120, check=False)


def test_round_trip_keeps_order_and_reports_bad_lines() -> None:
    lines = _input_lines(1200)
    process = _run([], b"\n".join(lines) + b"\n")
    assert process.returncode == 0, process.stderr.decode()
    outputs = [json.loads(line) for line in process.stdout.decode().splitlines()]
    assert len(outputs) == len(lines)
    for index, output in enumerate(outputs):
        if index in BAD_LINES:
            assert set(output) == {"error"} and output["error"], (index, output)
        else:
            assert set(output) == {"risk_score", "risk_category", "confidence", "flags", "model_version"}
    expected = Screener.load().screen([json.loads(lines[index]) for index in (1, 2, 4)])  # the default model
    for index, result in zip((1, 2, 4), expected, strict=True):
        assert outputs[index]["risk_score"] == result.risk_score
        assert outputs[index]["risk_category"] == result.risk_category
        assert outputs[index]["flags"] == result.flags


def test_handles_ten_thousand_lines() -> None:
    lines = [json.dumps(f"{MESSAGES[index % len(MESSAGES)]} {index}").encode() for index in range(10_000)]
    process = _run(["--model", "ngram-v1"], b"\n".join(lines))  # no newline after the last line
    assert process.returncode == 0, process.stderr.decode()
    outputs = process.stdout.decode().splitlines()
    assert len(outputs) == 10_000
    assert json.loads(outputs[2])["risk_category"] == "threat"


def test_unknown_model_exits_with_the_available_names() -> None:
    process = _run(["--model", "no-such-model"], b'"hello"\n')
    assert process.returncode == 2
    assert b"no-such-model" in process.stderr and b"ngram-v1" in process.stderr
    assert process.stdout == b""


def test_answers_each_line_before_the_input_ends() -> None:
    """A program that writes one line and waits for its answer gets it (the input stays open)."""
    process = subprocess.Popen([sys.executable, "-m", "ml.score", "--model", "ngram-v1"], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    answers: list[dict[str, object]] = []
    try:
        for text in ("gg wp", "you're a worthless idiot"):
            process.stdin.write(json.dumps(text).encode() + b"\n")
            process.stdin.flush()
            reply: list[bytes] = []
            reading = threading.Thread(target=_read_line, args=(process.stdout, reply), daemon=True)
            reading.start()
            reading.join(timeout=60)  # a hang guard, not a speed check: the old reader waited for EOF
            assert reply, f"no answer to {text!r} while the input was still open"
            answers.append(json.loads(reply[0]))
    finally:
        process.stdin.close()
        process.wait(timeout=60)
        process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()
    assert [answer["risk_score"] < 0.5 for answer in answers] == [True, False]
    assert process.returncode == 0


def _read_line(stream: IO[bytes], into: list[bytes]) -> None:
    into.append(stream.readline())
