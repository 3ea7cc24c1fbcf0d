"""Conversation benchmark: does seeing the conversation find repeat offenders without false flags?

    make eval-sessions
    python -m bench.eval_sessions --limit 200
    python -m bench.eval_sessions --split calibration   # where to choose knobs; report held out

Real ordered conversations (the held-out ConvAbuse conversations and ToxiChat threads of the
model's own split, so none was trained on) plus the scenario families of bench/scenarios (help
requests, "please stop", bystanders defending, game-like team chat, banter, slow escalation,
raids, a victim answering back; each family on both splits) are replayed through the
webhook code path: each message is POSTed to /v1/events/ingest with its timestamp, and the batch
the webhook queued is screened by the same function the screening worker runs. The whole replay
runs twice on fresh state, with the session signals off (the model and rules alone) and on, and the
two are printed side by side.

Per participant: recall of repeat offenders (two or more abusive messages in the conversation),
recall of anyone who wrote something abusive, messages until their first flag, precision of
flagged participants (did they write anything abusive), and the false-flag rate on participants
who wrote nothing abusive; overall and per source. Then which clean participants the session
signals flagged or cleared and the session flags on their messages, the message at which each
raid's pile-on was detected, what each written scenario did (flags per participant, alerts), and
the time the session update adds per message.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "ml" / "data"
KEY = "eval-key"
OVERRIDES: dict[str, float] = {}  # --param name=value: try other SessionParams
THRESHOLD = 0.7


@dataclass
class Message:
    author: str
    target: str | None
    text: str
    abusive: bool
    at_s: float


@dataclass
class Conversation:
    name: str
    source: str
    messages: list[Message]
    raid_target: str | None = None  # scenarios: the person a raid is aimed at


@dataclass
class Outcome:
    flagged: dict[tuple[str, str], list[bool]] = field(default_factory=lambda: defaultdict(list))
    abusive: dict[tuple[str, str], list[bool]] = field(default_factory=lambda: defaultdict(list))
    raid_detected_at: dict[str, int | None] = field(default_factory=dict)
    flags: dict[tuple[str, str], list[list[str]]] = field(default_factory=lambda: defaultdict(list))
    all_flags: dict[tuple[str, str], list[list[str]]] = field(default_factory=lambda: defaultdict(list))
    session_ms: list[float] = field(default_factory=list)
    alerts: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    records: list[dict[str, Any]] = field(default_factory=list)  # every message, for --dump


# --- conversations -------------------------------------------------------------------------------

def convabuse(limit: int, split: str = "heldout") -> list[Conversation]:
    from ml.training.datasets import split_of

    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with open(DATA / "convabuse" / "ConvAbuseEMNLPvalid.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[row["conv_id"]].append(row)
    with open(DATA / "convabuse" / "ConvAbuseEMNLPtrain.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[row["conv_id"]].append(row)
    out = []
    for conv_id, turns in sorted(rows.items()):
        if split_of(f"convabuse:{conv_id}") != split or len(turns) < 2:
            continue
        messages: list[Message] = []
        for i, row in enumerate(sorted(turns, key=lambda r: float(r["example_id"]))):
            user = f"user-{conv_id}"
            agent = f"agent-{conv_id}"  # one chatbot session each: not one account across all of them
            messages.append(Message(agent, user, row["agent"], False, i * 40))
            messages.append(Message(user, agent, row["user"], _convabuse_abusive(row), i * 40 + 20))
        out.append(Conversation(f"convabuse:{conv_id}", "convabuse", messages))
    return out[:limit]


def _convabuse_abusive(row: dict[str, str]) -> bool:
    from ml.training.datasets import _convabuse_label  # the model's own reading of the annotator votes

    return _convabuse_label(row) != "none"


def toxichat(limit: int, split: str = "heldout") -> list[Conversation]:
    from ml.training.datasets import split_of

    out = []
    for name in ("train.jsonl", "dev.jsonl"):
        with open(DATA / "toxichat" / name, encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                if split_of(f"toxichat:{name}:{index}") != split:
                    continue
                turns = json.loads(line)["reddit_thread"]
                messages, previous = [], None
                for i, turn in enumerate(turns):
                    author = f"t{name.split('.')[0]}{index}-{i}"  # one account per turn, never shared across files
                    messages.append(Message(author, previous, turn["text"].replace("Title:", "").strip(),
                                            turn["offense_label"] == "Offensive", i * 60))
                    previous = author
                out.append(Conversation(f"toxichat:{name}:{index}", "toxichat", messages))
    return out[:limit]


def scenarios(split: str = "heldout") -> list[Conversation]:
    """Written for this benchmark (bench/scenarios/families.py): families of sessions with known
    ground truth, each family with sessions on both splits."""
    from bench.scenarios.families import sessions

    return [Conversation(name, "scenarios", [Message(*line) for line in lines], raid_target=target)
            for _family, name, lines, target in sessions(split)]


# --- replay --------------------------------------------------------------------------------------

def replay(conversations: list[Conversation], *, enabled: bool, env: dict[str, str]) -> Outcome:
    from app import standing, streams
    from app.config import Settings, set_settings
    from app.db import session_scope
    from app.pipeline import screen
    from app.redis_client import redis_for
    from app.sessions import SessionParams
    from ml.screening import get_screener
    from web import create_app

    settings = Settings.from_mapping(env | {"API_KEYS": KEY, "INGEST_RATE_PER_S": "1e9", "INGEST_BURST": "1000000000"})
    client = create_app(env | {"API_KEYS": KEY, "INGEST_RATE_PER_S": "1e9", "INGEST_BURST": "1000000000"}).test_client()
    set_settings(settings)
    rds = redis_for(settings.redis_url)
    screener = get_screener(settings.SCREENING_MODEL)
    params = SessionParams(**{"threshold": settings.SCREENING_THRESHOLD, "enabled": enabled, **OVERRIDES})
    _time_session_updates(rds, params)
    outcome = Outcome()
    base = 1_790_000_000.0
    for n, conv in enumerate(conversations):
        if n and n % 50 == 0:
            print(f"    {'on ' if enabled else 'off'}: {n}/{len(conversations)} conversations", flush=True)
        channel = conv.name.replace(":", "-")
        raid_authors: set[str] = set()
        for i, m in enumerate(conv.messages):
            event = {"event_id": f"{channel}-{i}", "platform": "web", "author_id": m.author, "user_id": m.target,
                     "channel_id": channel, "content": m.text[:8000] or ".", "metadata": {"timestamp": base + m.at_s}}
            resp = client.post("/v1/events/ingest", json=event, headers={"X-API-Key": KEY})
            assert resp.status_code == 202, resp.get_json()
            [(entry_id, fields)] = rds.xrange(streams.RAW)
            rds.delete("screening")  # the queued message is consumed right here, by the worker's function
            item = {"event": json.loads(fields["data"]), "received_at": int(fields["received_at"])}
            rds.xdel(streams.RAW, entry_id)
            started = time.perf_counter()
            with session_scope() as db:
                result = screen.screen_batch([item], screener=screener, db=db, client=rds, settings=settings,
                                             params=params)
            standing.cache(rds, result.standings)  # as the worker's mirror call does once committed
            outcome.session_ms.append((time.perf_counter() - started) * 1000)
            [done] = result.screened
            key = (conv.name, m.author)
            outcome.flagged[key].append(done.prediction["risk_score"] >= THRESHOLD)
            outcome.abusive[key].append(m.abusive)
            outcome.flags[key].append(done.prediction["flags"] if done.prediction["risk_score"] >= THRESHOLD else [])
            outcome.all_flags[key].append(list(done.prediction["flags"]))
            outcome.alerts[conv.name] += [a["kind"] for a in result.alerts]
            outcome.records.append({"conversation": conv.name, "author": m.author, "target": m.target,
                                    "text": m.text, "abusive": m.abusive,
                                    "risk": round(done.prediction["risk_score"], 4),
                                    "model_risk": round(done.prediction.get("model_risk_score", -1.0), 4),
                                    "category": done.prediction["risk_category"], "flags": done.prediction["flags"]})
            if conv.raid_target and m.target == conv.raid_target:
                raid_authors.add(m.author)
                if "pile_on" in done.prediction["flags"] and conv.name not in outcome.raid_detected_at:
                    outcome.raid_detected_at[conv.name] = len(raid_authors)
        if conv.raid_target:
            outcome.raid_detected_at.setdefault(conv.name, None)
    return outcome


def _time_session_updates(rds: Any, params: Any) -> None:
    """Warm the Lua script cache so the first conversation does not pay for loading it."""
    from app.sessions import SessionStore, SessionUpdate

    SessionStore(rds, params).update([SessionUpdate("warm", "web:warm", 0, 0.0, False, "w", None)],
                                     {"web:warm": ("web", "warm")})


def session_update_latency(env: dict[str, str], n: int = 2000) -> dict[str, float]:
    """What the session model adds to screening a message, in ms, timed per message over ``n``
    messages in 20 channels of 7 authors: the session update alone (one Lua call), and all the
    session work the worker does for a message (the turn log that picks the turn it answers, the
    author's standing, the session update)."""
    from app import standing
    from app.db import session_scope
    from app.redis_client import redis_for
    from app.sessions import SessionParams, SessionStore, SessionUpdate, Turn, queue_turns

    rds = redis_for(env["REDIS_URL"])
    store = SessionStore(rds, SessionParams())
    # Steady state: the worker caches each author's standing after every batch it screens
    # (app.pipeline.screen.publish), so only an author's very first message reads PostgreSQL.
    standing.cache(rds, [(("web", f"a{k}"), standing.standing_of(40, k % 3, 0)) for k in range(7)])
    alone, whole = [], []
    with session_scope() as db:
        for i in range(n):
            session, author, target = f"web:lat{i % 20}", f"a{i % 7}", f"a{(i + 1) % 7}"
            ts = 1_790_000_000_000 + i * 1000
            update = SessionUpdate(f"lat{i}", session, ts, 0.5, i % 3 == 0, author, target)
            started = time.perf_counter()
            pipe = rds.pipeline(transaction=False)  # as app.pipeline.screen.screen_batch does it
            read_turns = queue_turns(pipe, [Turn(session, f"lat{i}", ts, author, target, "an ordinary message")], 1800)
            read_priors = standing.queue_priors(pipe, [("web", author)])
            replies = pipe.execute()
            read_turns(replies)
            read_priors(replies, db)
            middle = time.perf_counter()
            store.update([update], {session: ("web", f"lat{i % 20}")})
            ended = time.perf_counter()
            alone.append((ended - middle) * 1000)
            whole.append((ended - started) * 1000)
    alone.sort()
    whole.sort()
    return {"p50_ms": alone[n // 2], "p99_ms": alone[int(n * 0.99)],
            "whole_p50_ms": whole[n // 2], "whole_p99_ms": whole[int(n * 0.99)]}


# --- metrics -------------------------------------------------------------------------------------

def participant_metrics(outcome: Outcome, source: str | None = None) -> dict[str, Any]:
    keys = [k for k in outcome.flagged if source is None or k[0].startswith(source)]
    repeat = [k for k in keys if sum(outcome.abusive[k]) >= 2]
    clean = [k for k in keys if not any(outcome.abusive[k])]
    flagged = [k for k in keys if any(outcome.flagged[k])]
    caught = [k for k in repeat if any(outcome.flagged[k])]
    until = []
    for k in caught:
        abusive_seen = 0
        for was_abusive, was_flagged in zip(outcome.abusive[k], outcome.flagged[k], strict=True):
            abusive_seen += was_abusive
            if was_flagged:
                until.append(max(abusive_seen, 1))
                break
    abusive = [k for k in keys if any(outcome.abusive[k])]
    return {
        "participants": len(keys), "repeat_offenders": len(repeat), "clean": len(clean),
        "recall_repeat": _ratio(len(caught), len(repeat)),
        "recall_any_abusive": _ratio(sum(1 for k in abusive if any(outcome.flagged[k])), len(abusive)),
        "precision_flagged": _ratio(sum(1 for k in flagged if any(outcome.abusive[k])), len(flagged)),
        "false_flag_rate": _ratio(sum(1 for k in clean if any(outcome.flagged[k])), len(clean)),
        "msgs_to_first_flag": round(statistics.mean(until), 2) if until else None,
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


SESSION_FLAGS = ("escalating_session", "repeated_targeting", "pile_on", "repeat_offender", "answering_harasser",
                 "asking_for_help", "defending_target", "under_attack", "ignored_request_to_stop",
                 "persistent_hostility")


def table(off: Outcome, on: Outcome) -> str:
    rows = ["participants", "repeat_offenders", "clean", "recall_repeat", "recall_any_abusive", "precision_flagged",
            "false_flag_rate", "msgs_to_first_flag"]
    out = []
    for source in (None, "convabuse", "toxichat", "scenario"):
        a, b = participant_metrics(off, source), participant_metrics(on, source)
        out.append(f"\n{source or 'all'}:{'':<14}{'sessions off':>14}{'sessions on':>14}")
        for row in rows:
            out.append(f"  {row:<22}{_fmt(a[row]):>14}{_fmt(b[row]):>14}")
    out.append("\n" + false_flag_changes(off, on))
    for name in on.raid_detected_at:
        out.append(f"\nraid {name}: detected at author #{off.raid_detected_at.get(name)} (off) vs "
                   f"#{on.raid_detected_at[name]} (on)")
    out.append("\n" + family_table(off, on))
    out.append("\n" + scenario_summary(off, on))
    return "\n".join(out)


def family_table(off: Outcome, on: Outcome) -> str:
    """Per scenario family, sessions off -> on: repeat offenders caught, and clean participants
    (victims, people asking for help, defenders, bystanders, friends) flagged, and flagged twice."""
    lines = [f"scenario families (off -> on): {'sessions':>8} {'repeat caught':>16} {'clean flagged':>16} "
             f"{'clean flagged 2x':>18}"]
    families = sorted({k[0].split(":")[1] for k in on.flagged if k[0].startswith("scenario:")})
    for family in families:
        keys = [k for k in on.flagged if k[0].startswith(f"scenario:{family}:")]
        repeat = [k for k in keys if sum(on.abusive[k]) >= 2]
        clean = [k for k in keys if not any(on.abusive[k])]

        def caught(o: Outcome, ks: list[tuple[str, str]] = repeat) -> str:
            return f"{sum(any(o.flagged[k]) for k in ks)}/{len(ks)}"

        def clean_flagged(o: Outcome, times: int, ks: list[tuple[str, str]] = clean) -> str:
            return f"{sum(sum(o.flagged[k]) >= times for k in ks)}/{len(ks)}"

        lines.append(f"  {family:<28}{len({k[0] for k in keys}):>8} {caught(off) + ' -> ' + caught(on):>16} "
                     f"{clean_flagged(off, 1) + ' -> ' + clean_flagged(on, 1):>16} "
                     f"{clean_flagged(off, 2) + ' -> ' + clean_flagged(on, 2):>18}")
    return "\n".join(lines)


def false_flag_changes(off: Outcome, on: Outcome) -> str:
    """Which participants who wrote nothing abusive the session signals flagged or cleared, and why."""
    added: dict[str, int] = defaultdict(int)
    cleared: dict[str, int] = defaultdict(int)
    n_added, n_cleared, examples = 0, 0, []
    for key, flagged in on.flagged.items():
        if any(on.abusive[key]) or any(flagged) == any(off.flagged[key]):
            continue
        if any(flagged):
            n_added += 1
            for flag in {f for flags in on.flags[key] for f in flags if f in SESSION_FLAGS} or {"(none)"}:
                added[flag] += 1
            examples.append(f"    + {key[0]} {key[1]}")
        else:
            n_cleared += 1
            for flag in {f for flags in on.all_flags[key] for f in flags if f in SESSION_FLAGS} or {"(none)"}:
                cleared[flag] += 1
            examples.append(f"    - {key[0]} {key[1]}")
    lines = [f"false flags the session signals added: {n_added}"
             + (f" (session flags on them: {_counts(added)})" if added else ""),
             f"false flags the session signals cleared: {n_cleared}"
             + (f" (session flags on them: {_counts(cleared)})" if cleared else "")]
    return "\n".join(lines + examples[:20])


def scenario_summary(off: Outcome, on: Outcome) -> str:
    """Per written scenario: who was flagged without and with the session signals, and the session flags."""
    lines = ["scenarios (participant: flagged off -> on; session flags with sessions on):"]
    for name in sorted({k[0] for k in on.flagged if k[0].startswith("scenario:")}):
        lines.append(f"  {name}" + (f"  alerts: {_counts(_tally(on.alerts[name]))}" if on.alerts[name] else ""))
        for key in [k for k in on.flagged if k[0] == name]:
            flags = _tally(f for flags in on.all_flags[key] for f in flags if f in SESSION_FLAGS)
            mark = "abusive" if any(on.abusive[key]) else "clean"
            lines.append(f"    {key[1]:<10} {mark:<8} {sum(off.flagged[key])}/{len(off.flagged[key])} -> "
                         f"{sum(on.flagged[key])}/{len(on.flagged[key])} flagged"
                         + (f"  [{_counts(flags)}]" if flags else ""))
    return "\n".join(lines)


def _tally(items: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item] += 1
    return counts


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


# --- driver --------------------------------------------------------------------------------------

def fresh_state(env: dict[str, str]) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    from app.db import sqlalchemy_url
    from app.redis_client import redis_for

    redis_for(env["REDIS_URL"]).flushdb()
    url = make_url(sqlalchemy_url(env["DATABASE_URL"])).set(drivername="postgresql")
    conn = psycopg2.connect(url.render_as_string(hide_password=False))
    with conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute("TRUNCATE events, users, sessions, actions, audit_log, alerts")
    conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=400, help="conversations per dataset")
    parser.add_argument("--split", choices=("heldout", "calibration"), default="heldout",
                        help="which conversations: the held-out split (the figures to report) or the calibration "
                             "split (never trained on either: choose knobs there, then report held out once)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a SessionParams knob, e.g. --param w_heat=0.15")
    parser.add_argument("--dump", type=Path, metavar="DIR",
                        help="write every message's outcome (text, label, risk, flags) to DIR/off.jsonl and on.jsonl")
    args = parser.parse_args(argv)
    for item in args.param:
        name, _, value = item.partition("=")
        OVERRIDES[name] = float(value)
    import subprocess

    from app.embedded import EmbeddedPostgres, EmbeddedRedis

    conversations = convabuse(args.limit, args.split) + toxichat(args.limit, args.split) + scenarios(args.split)
    messages = sum(len(c.messages) for c in conversations)
    print(f"{args.split} split: {len(conversations)} conversations, {messages} messages", flush=True)
    with tempfile.TemporaryDirectory(prefix="safety-eval-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        rd = EmbeddedRedis(Path(tmp) / "redis").start()
        try:
            env = {**os.environ, "DATABASE_URL": pg.url, "REDIS_URL": rd.url, "LOG_LEVEL": "WARNING"}
            subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True,
                           capture_output=True)
            results = {}
            for enabled in (False, True):
                fresh_state(env)
                print(f"replaying with session signals {'on' if enabled else 'off'}...", flush=True)
                results[enabled] = replay(conversations, enabled=enabled, env=env)
            fresh_state(env)
            latency = session_update_latency(env)
        finally:
            rd.stop()
            pg.stop()
    print(table(results[False], results[True]))
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        for enabled, outcome in results.items():
            with open(args.dump / f"{'on' if enabled else 'off'}.jsonl", "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(record) + "\n" for record in outcome.records)
        print(f"outcomes of every message written to {args.dump}/off.jsonl and on.jsonl")
    on = results[True].session_ms
    print(f"\nscreening per message incl. session update and PostgreSQL writes (sessions on): "
          f"p50 {statistics.median(on):.2f} ms")
    print(f"session update alone (Lua, one call per message): p50 {latency['p50_ms']:.3f} ms, "
          f"p99 {latency['p99_ms']:.3f} ms")
    print(f"all session work per message (turn log, author standing, session update): "
          f"p50 {latency['whole_p50_ms']:.3f} ms, p99 {latency['whole_p99_ms']:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
