"""Replay: a window of ``events:raw`` through the current or a candidate model and action policy, dry-run.

A moderator asks "what would change if the threshold were 0.8, or the model minilm-v5, or the policy
severity_based?" before changing it; this answers from real traffic. Nothing is written anywhere the
system reads: no platform call, no PostgreSQL row, no stream entry, no metric. The conversation
signals (escalation, pile-ons) run on scratch Redis keys of this run (``replay:<run>:...``, deleted
at the end, an hour's TTL in case the run dies), so a replayed message is raised by its replayed
conversation exactly as screening would raise it, and the live sessions are untouched.

Per event the baseline is what the system decided: the ``events`` row (risk, category, status)
and its action (the ``actions`` row, as the policy and the gates left it). The candidate is the
same path run again: model → session → threshold → deterministic reasoner (``app.fallback``, the
decision when no LLM answers; similar past incidents are not searched) → gates → policy. Differences
of the candidate's decision against a baseline decided by an LLM are therefore partly the LLM's.

``redrive`` is the operator's half: after a fix, events that screening dead-lettered go back into
``events:raw`` (screening skips any PostgreSQL already holds as screened) and leave
``events:dlq_errors``. Entries of other stages are listed and left for their sweepers.

    flask --app wsgi replay --since 2026-12-01T10:00 --until 2026-12-01T11:00 --model minilm-v5
    python -m app.replay --channel lobby --threshold 0.8 --json var/replay.json
    python -m app.replay redrive --stage screen
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session as DbSession

from app import fallback, policies, streams
from app.config import Settings
from app.models import Action, Event, User
from app.pipeline import windows
from app.pipeline.context import author_history
from app.pipeline.screen import Screener, event_time_ms, prediction_dict, session_update, target_of
from app.sessions import DIRTY_KEY, TURN_CHARS, SessionParams, SessionStore, session_key

PAGE = 500  # entries read per XRANGE and screened per model call
SCRATCH_TTL_S = 3600
VIOLATIONS = tuple(policies.SEVERITY)


@dataclass(frozen=True)
class Window:
    """Which entries of ``events:raw`` to replay: a time range (entry ids are milliseconds) and filters."""

    since_ms: int | None = None
    until_ms: int | None = None
    channel_id: str | None = None
    session_id: str | None = None
    author_id: str | None = None
    platform: str | None = None
    limit: int | None = None
    shed_only: bool = False  # report only events screening decided while shedding (the rest still replay)

    def keeps(self, event: dict[str, Any]) -> bool:
        return all(want is None or event.get(name) == want for name, want in (
            ("channel_id", self.channel_id), ("session_id", self.session_id), ("author_id", self.author_id),
            ("platform", self.platform)))


@dataclass(frozen=True)
class Candidate:
    screener: Screener
    policy: policies.Policy
    threshold: float
    settings: Settings


@dataclass
class Outcome:
    """One side of the comparison for one event."""

    risk_score: float | None
    risk_category: str | None
    flagged: bool | None
    # the action type, "none", "undecided" for a flagged baseline the reasoning stage has not decided
    # yet (its action is not compared), or "unscreened" for a baseline PostgreSQL does not hold
    action: str
    shed: bool = False  # the baseline was decided while screening shed load: the transformer never read it

    def as_dict(self) -> dict[str, Any]:
        return {"risk_score": self.risk_score, "risk_category": self.risk_category, "flagged": self.flagged,
                "action": self.action}


@dataclass
class Report:
    model: str
    policy: str
    threshold: float
    events: int = 0
    compared: int = 0
    unscreened: int = 0
    categories: dict[str, Counter[str]] = field(default_factory=lambda: {"before": Counter(), "after": Counter()})
    actions: dict[str, Counter[str]] = field(default_factory=lambda: {"before": Counter(), "after": Counter()})
    flagged: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    flipped: list[dict[str, Any]] = field(default_factory=list)
    baseline_models: Counter[str] = field(default_factory=Counter)
    max_risk_change: float = 0.0
    shed: Counter[str] = field(default_factory=Counter)  # baselines decided while shedding: "decided", "changed"

    def add(self, event: dict[str, Any], before: Outcome, after: Outcome) -> None:
        self.events += 1
        if before.action == "unscreened":
            self.unscreened += 1
            return
        self.compared += 1
        self.shed["decided"] += before.shed
        self.max_risk_change = max(self.max_risk_change, abs((after.risk_score or 0.0) - (before.risk_score or 0.0)))
        self.categories["before"][before.risk_category or "none"] += 1
        self.categories["after"][after.risk_category or "none"] += 1
        self.actions["before"][before.action] += 1
        self.actions["after"][after.action] += 1
        self.flagged["before"] += bool(before.flagged)
        self.flagged["after"] += bool(after.flagged)
        same_action = before.action == after.action or before.action == "undecided"
        if (before.flagged, before.risk_category) != (after.flagged, after.risk_category) or not same_action:
            self.transitions[f"{before.risk_category}/{before.action} -> {after.risk_category}/{after.action}"] += 1
            self.shed["changed"] += before.shed
            self.flipped.append({"event_id": event["event_id"], "platform": event["platform"],
                                 "session_id": event.get("session_id"), "content": event["content"][:200],
                                 "shed_under_load": before.shed, "before": before.as_dict(), "after": after.as_dict()})

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "policy": self.policy, "threshold": self.threshold,
                "baseline_models": dict(self.baseline_models), "events": self.events, "compared": self.compared,
                "unscreened": self.unscreened, "flagged": dict(self.flagged),
                "max_risk_change": round(self.max_risk_change, 4), "shed": dict(self.shed),
                "categories": {k: dict(v) for k, v in self.categories.items()},
                "actions": {k: dict(v) for k, v in self.actions.items()},
                "transitions": dict(self.transitions.most_common()), "flipped": self.flipped}


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]  # in time order
    first_ms: int  # when the first of them was accepted (``received_at``, as PostgreSQL holds it)


def read_window(client: redis.Redis, window: Window, page: int = PAGE) -> Iterator[Page]:
    """Pages of events from ``events:raw`` in order, filtered; XRANGE only (the consumer group is not touched)."""
    start = str(window.since_ms) if window.since_ms is not None else "-"
    end = str(window.until_ms) if window.until_ms is not None else "+"
    taken = 0
    while window.limit is None or taken < window.limit:
        entries = client.xrange(streams.RAW, start, end, count=page)
        if not entries:
            return
        batch = []
        for _, fields in entries:
            try:
                event = json.loads(fields["data"])
            except (KeyError, ValueError):
                continue  # screening dead-letters these; nothing to replay
            if window.keeps(event):
                batch.append(event)
        if window.limit is not None:
            batch = batch[:window.limit - taken]
        taken += len(batch)
        if batch:
            first = min(int(f.get("received_at") or sid.split("-")[0]) for sid, f in entries)
            yield Page(sorted(batch, key=event_time_ms), first)
        if len(entries) < page:
            return
        start = "(" + entries[-1][0]


def baseline(db: DbSession, events: Sequence[dict[str, Any]]) -> dict[tuple[str, str], tuple[Event, Action | None]]:
    """What was decided: the event rows and, per event, its action (the applied one first)."""
    keys = [(e["platform"], e["event_id"]) for e in events]
    rows = {(r.platform, r.event_id): r for r in db.scalars(
        select(Event).where(tuple_(Event.platform, Event.event_id).in_(keys)))}
    actions: dict[tuple[str, str], Action] = {}
    rank = {"applied": 0, "dry_run": 1, "pending": 2, "failed": 3, "reversed": 4, "skipped": 5}
    for action in db.scalars(select(Action).where(tuple_(Action.platform, Action.event_id).in_(keys))):
        key = (action.platform, action.event_id)
        if key not in actions or rank.get(action.status, 9) < rank.get(actions[key].status, 9):
            actions[key] = action
    return {key: (row, actions.get(key)) for key, row in rows.items()}


def before_outcome(row: Event | None, action: Action | None, threshold: float) -> Outcome:
    if row is None or row.status == "received":
        return Outcome(None, None, None, "unscreened")
    flagged = (row.risk_score or 0.0) >= threshold
    if action is None:
        decided = "undecided" if flagged and row.status == "needs_review" else "none"
    else:
        decided = "none" if action.status == "skipped" else action.action_type
    return Outcome(row.risk_score, row.risk_category, flagged, decided, "shed_under_load" in (row.flags or []))


class ScratchSessions(SessionStore):
    """The session model on this run's own keys: live sessions and the dirty set stay untouched."""

    def __init__(self, client: redis.Redis, params: SessionParams, run_id: str) -> None:
        super().__init__(client, params)
        self.prefix = f"replay:{run_id}:"
        self.dirty = self.prefix + DIRTY_KEY

    def _send(self, order: Sequence[str], payloads: Sequence[str]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for session_id, payload in zip(order, payloads, strict=True):
            key = self.prefix + session_key(session_id)
            pipe.evalsha(self.script.sha, 2, key, self.dirty, payload)
            pipe.expire(key, SCRATCH_TTL_S)
        pipe.expire(self.dirty, SCRATCH_TTL_S)
        replies = pipe.execute(raise_on_error=False)
        return replies[:-1:2]

    def discard(self) -> None:
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            self.client.delete(*keys)


class Turns:
    """The turn each message answers (app.sessions.queue_turns's rule), kept in memory for the run:
    the latest earlier message between the same two people, or nothing."""

    def __init__(self) -> None:
        self.log: dict[str, list[tuple[int, str, str | None, str]]] = {}

    def answer(self, event: dict[str, Any]) -> list[str]:
        me, target, at = event["author_id"], target_of(event), event_time_ms(event)
        for ts, author, to, text in reversed(self.log.get(event["session_id"], [])):
            if ts < at and author != me and ((target and author == target) or to == me):
                return [text]
        return []

    def add(self, event: dict[str, Any]) -> None:
        entry = (event_time_ms(event), event["author_id"], target_of(event), event["content"][:TURN_CHARS])
        self.log.setdefault(event["session_id"], []).append(entry)


def priors(db: DbSession, events: Sequence[dict[str, Any]], as_of_ms: int,
           threshold: float) -> dict[tuple[str, str], float]:
    """Each author's standing as it was when the page was screened: PostgreSQL's totals less what
    was flagged and sanctioned since (read only; the Redis cache is not filled)."""
    keys = sorted({(e["platform"], e["author_id"]) for e in events})
    since = datetime.fromtimestamp(as_of_ms / 1000, UTC)
    totals = {(p, u): [f, v] for p, u, f, v in db.execute(
        select(User.platform, User.user_id, User.flagged_count, User.violation_count)
        .where(tuple_(User.platform, User.user_id).in_(keys)))}
    for p, u, n in db.execute(select(Event.platform, Event.author_id, func.count()).where(
            tuple_(Event.platform, Event.author_id).in_(keys), Event.received_at >= since,
            Event.risk_score >= threshold).group_by(Event.platform, Event.author_id)):
        totals.get((p, u), [0, 0])[0] -= n
    for p, u, n in db.execute(select(Action.platform, Action.user_id, func.count()).where(
            tuple_(Action.platform, Action.user_id).in_(keys), Action.applied_at >= since,
            Action.status == "applied", Action.action_type.in_(VIOLATIONS)).group_by(Action.platform, Action.user_id)):
        totals.get((p, u), [0, 0])[1] -= n
    return {key: min(1.0, max(0, f + 2 * v) / 6) for key, (f, v) in totals.items()}


def rescreen(candidate: Candidate, sessions: SessionStore, turns: Turns, db: DbSession,
             page: Page) -> list[dict[str, Any]]:
    """Model and conversation for a page of events, as app.pipeline.screen does it, minus every write."""
    events, contexts = page.events, []
    for event in events:
        contexts.append(turns.answer(event))
        turns.add(event)
    results = windows.screen_whole(candidate.screener, [e["content"] for e in events], contexts)
    predictions = [prediction_dict(e["event_id"], r, 0.0) for e, r in zip(events, results, strict=True)]
    standing = priors(db, events, page.first_ms, candidate.settings.SCREENING_THRESHOLD)
    # The same update live screening sends (pleas and model_uncertain included), so a replay of
    # the current model and policy decides what the pipeline decided.
    updates = [session_update(e, p, standing.get((e["platform"], e["author_id"]), 0.0))
               for e, p in zip(events, predictions, strict=True)]
    places = {e["session_id"]: (e["platform"], e["channel_id"]) for e in events}
    verdicts = sessions.update(updates, places)
    for e, p in zip(events, predictions, strict=True):
        result = verdicts[e["session_id"]]
        verdict = result.verdicts.get(e["event_id"])
        if verdict is not None:
            p["risk_score"] = round(verdict.final_risk, 4)
            p["flags"] = p["flags"] + [f for f in verdict.flags if f not in p["flags"]]
        p["session"] = {"escalation_score": result.contract.get("escalation_score", 0.0),
                        "pile_on": "pile_on" in p["flags"]}
    return predictions


def decide(candidate: Candidate, db: DbSession, event: dict[str, Any], prediction: dict[str, Any],
           row: Event | None) -> str:
    """The action the act stage would end with, in dry-run: reasoner, gates, policy."""
    if prediction["risk_score"] < candidate.threshold:
        return "none"
    author = author_history(db, row) if row is not None else {}
    summary = {k: prediction[k] for k in ("risk_score", "risk_category", "confidence", "flags")}
    verdict = fallback.decide(summary | {"content": event["content"]},
                              {"author": author, "session": prediction["session"], "precedents": []},
                              policy=candidate.policy.name)
    if verdict.action_type in ("none", "human_review"):
        return verdict.action_type
    settings = candidate.settings
    if policies.exemption(settings, event["platform"], event["author_id"], event["author_id"], event["metadata"]):
        return "none"
    if "model_uncertain" in prediction["flags"] or verdict.confidence < settings.ACTION_MIN_CONFIDENCE:
        return "human_review"
    step, _ = candidate.policy.decide(policies.Step(verdict.action_type, verdict.duration_hours),
                                      prior_violations(db, event, settings.ESCALATION_WINDOW_DAYS))
    return step.action_type


def prior_violations(db: DbSession, event: dict[str, Any], window_days: int) -> int:
    since = datetime.now(UTC).timestamp() - window_days * 86400
    return db.scalar(select(func.count()).select_from(Action).where(
        Action.platform == event["platform"], Action.user_id == event["author_id"],
        Action.event_id != event["event_id"], Action.action_type.in_(VIOLATIONS),
        Action.status.in_(("applied", "dry_run")),
        Action.applied_at >= datetime.fromtimestamp(since, UTC))) or 0


def run(client: redis.Redis, db: DbSession, window: Window, candidate: Candidate,
        progress: Callable[[int, Report], None] | None = None, run_id: str | None = None) -> Report:
    """Replay the window page by page; ``progress`` hears after each page. Read-only against the system."""
    report = Report(candidate.screener.model_version, candidate.policy.name, candidate.threshold)
    params = SessionParams(ttl=candidate.settings.SESSION_TTL_S, window=candidate.settings.SESSION_WINDOW,
                           threshold=candidate.threshold)
    sessions = ScratchSessions(client, params, run_id or uuid.uuid4().hex[:12])
    turns = Turns()
    try:
        for number, page in enumerate(read_window(client, window), start=1):
            events = page.events
            predictions = rescreen(candidate, sessions, turns, db, page)
            stored = baseline(db, events)
            for event, prediction in zip(events, predictions, strict=True):
                row, action = stored.get((event["platform"], event["event_id"]), (None, None))
                if row is not None and row.model_version:
                    report.baseline_models[row.model_version] += 1
                before = before_outcome(row, action, candidate.settings.SCREENING_THRESHOLD)
                if window.shed_only and not before.shed:
                    continue  # replayed for its conversation, not reported
                after = Outcome(prediction["risk_score"], prediction["risk_category"],
                                prediction["risk_score"] >= candidate.threshold,
                                decide(candidate, db, event, prediction, row))
                report.add(event, before, after)
            db.rollback()  # read-only: end the snapshot between pages
            if progress is not None:
                progress(number, report)
    finally:
        sessions.discard()
    return report


@dataclass
class Redrive:
    redriven: list[str] = field(default_factory=list)  # event ids back in events:raw
    left: list[dict[str, str]] = field(default_factory=list)  # entries of other stages, left in place


def redrive(client: redis.Redis, *, stage: str | None = "screen", event_id: str | None = None,
            dry_run: bool = False, maxlen: int = 1_000_000) -> Redrive:
    """Move screening's dead letters back into ``events:raw`` (each XADD and its XDEL in one MULTI)."""
    out = Redrive()
    for entry_id, fields in client.xrange(streams.DLQ_ERRORS, "-", "+"):
        try:
            data = json.loads(fields.get("data", "{}"))
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if event_id is not None and fields.get("event_id") != event_id:
            continue
        item = data.get("item") or {}
        event = item.get("event") if isinstance(item, dict) else None
        if data.get("stage") != "screen" or not isinstance(event, dict) or stage not in (None, "screen"):
            if stage in (None, data.get("stage")):
                out.left.append({"id": entry_id, "stage": str(data.get("stage")),
                                 "event_id": fields.get("event_id", ""), "error": str(data.get("error", ""))[:200]})
            continue
        if not dry_run:
            pipe = client.pipeline(transaction=True)
            pipe.xadd(streams.RAW, {"event_id": event["event_id"], "platform": event["platform"],
                                    "received_at": str(item.get("received_at") or 0),
                                    "data": json.dumps(event, separators=(",", ":"))},
                      maxlen=maxlen, approximate=True)
            pipe.xdel(streams.DLQ_ERRORS, entry_id)
            pipe.execute()
        out.redriven.append(event["event_id"])
    return out


def parse_time(value: str) -> int:
    """Milliseconds since the epoch from ISO-8601 (UTC if no zone) or a plain millisecond count."""
    if value.isdigit():
        return int(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="replay", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command")
    r = sub.add_parser("redrive", help="put screening's dead letters back into events:raw")
    r.add_argument("--stage", default="screen", help="only this stage's entries (default screen)")
    r.add_argument("--event-id")
    r.add_argument("--dry-run", action="store_true", help="list what would be re-driven, move nothing")
    p.add_argument("--since", type=parse_time, help="ISO-8601 or epoch ms (events:raw entry time)")
    p.add_argument("--until", type=parse_time)
    p.add_argument("--channel")
    p.add_argument("--session")
    p.add_argument("--author")
    p.add_argument("--platform")
    p.add_argument("--limit", type=int)
    p.add_argument("--shed-only", action="store_true",
                   help="report only events decided while screening shed load (what the transformer would have said)")
    p.add_argument("--model", help="SCREENING_MODEL folder under ml/models/ (default: the configured one)")
    p.add_argument("--policy", help="ACTION_POLICY (default: the configured one)")
    p.add_argument("--threshold", type=float, help="SCREENING_THRESHOLD (default: the configured one)")
    p.add_argument("--show", type=int, default=20, help="flipped events to print (all go to --json)")
    p.add_argument("--json", dest="json_path", help="write the full report here")
    return p


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    from app.config import get_settings
    from app.db import session_scope
    from app.redis_client import get_redis

    args = parser().parse_args(argv)
    settings = settings or get_settings()
    client = get_redis()
    if args.command == "redrive":
        done = redrive(client, stage=args.stage or None, event_id=args.event_id, dry_run=args.dry_run,
                       maxlen=settings.STREAM_MAXLEN)
        verb = "would re-drive" if args.dry_run else "re-drove"
        print(f"{verb} {len(done.redriven)} event(s) into {streams.RAW}: {', '.join(done.redriven) or '-'}")
        for entry in done.left:
            print(f"left {entry['id']} ({entry['stage']}, {entry['event_id']}): {entry['error']}")
        return 0
    from ml.screening import Screener

    try:
        candidate = Candidate(Screener.load(args.model or settings.SCREENING_MODEL),
                              policies.policy_for(args.policy or settings.ACTION_POLICY),
                              settings.SCREENING_THRESHOLD if args.threshold is None else args.threshold, settings)
    except ValueError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    window = Window(args.since, args.until, args.channel, args.session, args.author, args.platform, args.limit,
                    args.shed_only)

    def progress(page: int, report: Report) -> None:
        print(f"replay: page {page}, {report.events} events, {len(report.flipped)} flipped", file=sys.stderr)

    with session_scope() as db:
        report = run(client, db, window, candidate, progress)
        db.rollback()
    print(render(report, args.show))
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(report.as_dict(), fh, indent=1)
    return 0


def render(report: Report, show: int = 20) -> str:
    lines = [f"replayed {report.events} events with {report.model}, policy {report.policy}, "
             f"threshold {report.threshold:g} (decided by {', '.join(report.baseline_models) or 'nothing yet'})",
             f"compared {report.compared}; {report.unscreened} not yet screened; "
             f"flagged {report.flagged['before']} -> {report.flagged['after']}; {len(report.flipped)} changed; "
             f"risk moved by up to {report.max_risk_change:.4f}"]
    if report.shed["decided"]:
        lines.append(f"{report.shed['decided']} were decided while screening shed load (the transformer never read "
                     f"them); {report.shed['changed']} of those change")
    for title, table in (("category", report.categories), ("action", report.actions)):
        names = sorted(set(table["before"]) | set(table["after"]))
        lines.append(f"{title:<20} {'before':>8} {'after':>8}")
        lines += [f"  {n:<18} {table['before'][n]:>8} {table['after'][n]:>8}" for n in names]
    if report.transitions:
        lines.append("changes (category/action before -> after):")
        lines += [f"  {count:>6}  {what}" for what, count in report.transitions.most_common()]
    for flip in report.flipped[:show]:
        b, a = flip["before"], flip["after"]
        lines.append(f"  {flip['platform']}:{flip['event_id']} {b['risk_score']} {b['risk_category']}/{b['action']}"
                     f" -> {a['risk_score']} {a['risk_category']}/{a['action']}: {flip['content'][:80]!r}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
