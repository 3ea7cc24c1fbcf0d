"""Screen: rules + model + conversation for a batch of events, then persist and publish.

Order matters for idempotency (acks_late redelivers a batch whose worker died):
1. drop events that PostgreSQL already holds as screened (a redelivery screens nothing twice);
2. score the rest in one batched model call, each message with the turn it answers in its
   conversation (``session:{id}:turns``: the latest between the same two people, see
   app.sessions.queue_turns);
3. update their sessions atomically in Redis: the conversation raises the risk of a hostile
   message in a heating session, from a repeat targeter or in a pile-on (app/sessions.py);
4. write events, authors, session snapshots and alerts in one transaction;
5. only after the commit, mirror to ``events:screened`` (and ``events:reasoning_queue`` for risky
   events, ``events:alerts`` for alerts) and cache the authors' new standing: a reader never sees a
   row that is not there. Items read from the ``events:raw`` consumer group are acknowledged in the
   same Redis call that mirrors them (app.streams.Mirror), so an event committed by a reader that
   died before mirroring it is still pending, and whoever claims it mirrors the row PostgreSQL holds
   (``BatchResult.stored``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import redis
from sqlalchemy.orm import Session as DbSession

from app import metrics, standing, streams
from app.config import Settings
from app.console import policy_store
from app.pipeline import screen_store, windows
from app.sessions import SessionParams, SessionResult, SessionStore, SessionUpdate, Turn, is_plea, queue_turns

# Categories that never count as hostile for the conversation signals: profanity and spam alone never
# heat a session, which is what keeps friendly banter from escalating. Anything else counts once its
# risk passes the session model's ``min_boost`` (a "none" at 0.45 means the model is torn).
NOT_HOSTILE = frozenset({"profanity", "spam"})
HOSTILE = frozenset({"targeted_harassment", "hate", "threat", "sexual_harassment", "self_harm"})


class Screening(Protocol):
    risk_score: float
    risk_category: str
    confidence: float
    flags: list[str]
    model_version: str
    embedding: list[float] | None
    embedding_model: str | None


class Screener(Protocol):
    model_version: str

    def screen(self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None
               ) -> Sequence[Screening]: ...  # ml.screening's also takes shed_below (only passed when shedding)


@dataclass(frozen=True)
class Screened:
    event: dict[str, Any]
    received_at_ms: int
    prediction: dict[str, Any]
    status: str
    embedding: list[float] | None = None
    embedding_model: str | None = None
    stream_id: str | None = None  # its events:raw entry, when read through the consumer group


@dataclass(frozen=True)
class BatchResult:
    screened: list[Screened]  # screened and written by this batch
    sessions: dict[str, dict[str, Any]]
    alerts: list[dict[str, Any]]
    stored: list[Screened] = field(default_factory=list)  # screened before (a claimed entry): mirror as stored
    acks: list[str] = field(default_factory=list)  # entries of events screened and mirrored before
    standings: list[tuple[tuple[str, str], dict[str, Any]]] = field(default_factory=list)  # cached once committed


def prediction_dict(event_id: str, result: Screening, elapsed_ms: float) -> dict[str, Any]:
    """The RiskPrediction contract of the design (plus the model's own score before context)."""
    return {
        "event_id": event_id,
        "risk_score": round(float(result.risk_score), 4),
        "risk_category": result.risk_category,
        "confidence": round(float(result.confidence), 4),
        "flags": list(result.flags),
        "screening_time_ms": round(elapsed_ms, 3),
        "model_version": result.model_version,
        "model_risk_score": round(float(result.risk_score), 4),
    }


def event_time_ms(event: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(event["metadata"]["timestamp"]).timestamp() * 1000)


def target_of(event: dict[str, Any]) -> str | None:
    """Whom a message addresses: the event's recipient, else the first mention."""
    if event.get("user_id"):
        return str(event["user_id"])
    mentions = event.get("metadata", {}).get("mentions") or []
    return str(mentions[0]) if mentions else None


def score(screener: Screener, events: Sequence[dict[str, Any]], contexts: Sequence[Sequence[str]] | None = None,
          shed_below: float = 0.0) -> tuple[list[dict[str, Any]], list[Screening]]:
    """Screen the events; ``contexts[i]`` are the messages before event i in its conversation.
    ``shed_below`` > 0: screening is behind, the cascade clears more (see ``Settings.SCREENING_SHED_AFTER_MS``)."""
    started = time.perf_counter()
    options = {"shed_below": shed_below} if shed_below > 0 else {}
    results = windows.screen_whole(screener, [e["content"] for e in events], contexts, **options)  # long ones whole
    per_event_ms = (time.perf_counter() - started) * 1000 / max(len(events), 1)
    predictions = [prediction_dict(e["event_id"], r, per_event_ms) for e, r in zip(events, results, strict=True)]
    for p in predictions:
        metrics.SCREENING_DURATION.observe(p["screening_time_ms"])
    return predictions, results


def session_update(event: dict[str, Any], prediction: dict[str, Any], prior: float) -> SessionUpdate:
    """What the session layer is told of one screened message: live screening and replay alike."""
    return SessionUpdate(event["event_id"], event["session_id"], event_time_ms(event), prediction["model_risk_score"],
                         prediction["risk_category"] not in NOT_HOSTILE, event["author_id"], target_of(event),
                         prior, prediction["risk_category"], is_plea(event["content"]),
                         "model_uncertain" in prediction["flags"])


def apply_sessions(store: SessionStore, events: Sequence[dict[str, Any]], predictions: Sequence[dict[str, Any]],
                   priors: dict[tuple[str, str], float]) -> dict[str, SessionResult]:
    """Update each conversation and fold its verdict into the prediction (final risk and flags).

    The final risk is the session's: the model's probability with the conversation's evidence
    added in log-odds (capped), or damped for a person the session protects (app/sessions.py)."""
    updates = [session_update(e, p, priors.get((e["platform"], e["author_id"]), 0.0))
               for e, p in zip(events, predictions, strict=True)]
    places = {e["session_id"]: (e["platform"], e["channel_id"]) for e in events}
    results = store.update(updates, places)
    for e, p in zip(events, predictions, strict=True):
        verdict = results[e["session_id"]].verdicts.get(e["event_id"])
        if verdict is not None:
            # The session's verdict stands: raised by context, or damped for a victim answering back.
            p["risk_score"] = round(verdict.final_risk, 4)
            p["flags"] = p["flags"] + [f for f in verdict.flags if f not in p["flags"]]
    return results


def alert_rows(results: dict[str, SessionResult], platform_of: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for session_id, result in results.items():
        for alert in result.alerts:
            ident = f"{session_id}|{alert['kind']}|{alert.get('target', '')}|{alert.get('eid', alert.get('ts'))}"
            rows.append({
                "alert_id": hashlib.sha256(ident.encode()).hexdigest()[:32], "kind": alert["kind"],
                "session_id": session_id, "platform": platform_of[session_id], "event_id": alert.get("eid"),
                "target_user_id": alert.get("target"), "authors": sorted(alert.get("authors") or []),
                "escalation_score": result.contract["escalation_score"],
                "detail": {"at_ms": alert.get("ts"), "message_count": result.contract["message_count"]},
            })
    return rows


def screen_batch(items: Sequence[dict[str, Any]], *, screener: Screener, db: DbSession,
                 client: redis.Redis, settings: Settings, params: SessionParams | None = None,
                 shed_below: float = 0.0) -> BatchResult:
    """Screen queued items ({"event", "received_at"}) and persist; the caller commits, then publishes.
    ``shed_below``: the caller found screening behind (tasks/screen.py ``shed_setting``)."""
    done = screen_store.screened_keys(db, [_key(i) for i in items])
    todo = _unique([i for i in items if (i["event"]["platform"], i["event"]["event_id"]) not in done])
    kept = {id(i) for i in todo}
    # An entry claimed from a dead reader may have been committed but never mirrored: mirror the
    # stored row. Any other entry of an event already screened is a duplicate: acknowledge it.
    again = [i for i in items if id(i) not in kept and i.get("claimed") and _key(i) in done]
    acks = [i["stream_id"] for i in items if id(i) not in kept and i.get("stream_id")
            and not (i.get("claimed") and _key(i) in done)]
    if not todo:
        return BatchResult([], {}, [], stored=screen_store.load_screened(db, again), acks=acks)
    events = [i["event"] for i in todo]
    # One Redis round trip before the model: log the turns (and find the one each message answers),
    # read the authors' cached standing and whether the console changed the policy (its threshold
    # applies without a restart; the session settings are not the console's).
    pipe = client.pipeline(transaction=False)
    read_turns = queue_turns(pipe, [Turn(e["session_id"], e["event_id"], event_time_ms(e), e["author_id"],
                                         target_of(e), e["content"]) for e in events], settings.SESSION_TTL_S)
    read_priors = standing.queue_priors(pipe, [(e["platform"], e["author_id"]) for e in events])
    read_policy = policy_store.queue_effective(pipe, settings)
    replies = pipe.execute()
    settings = read_policy(replies)
    contexts = read_turns(replies)
    predictions, raw = score(screener, events, contexts, shed_below)
    priors = read_priors(replies, db)
    params = params or SessionParams(ttl=settings.SESSION_TTL_S, window=settings.SESSION_WINDOW,
                                     threshold=settings.SCREENING_THRESHOLD)
    results = apply_sessions(SessionStore(client, params), events, predictions, priors)
    threshold = settings.SCREENING_THRESHOLD
    screened = [Screened(i["event"], int(i["received_at"]), p,
                         "needs_review" if p["risk_score"] >= threshold else "screened", r.embedding,
                         r.embedding_model, i.get("stream_id"))
                for i, p, r in zip(todo, predictions, raw, strict=True)]
    sessions = {sid: r.contract for sid, r in results.items()}
    alerts = alert_rows(results, {e["session_id"]: e["platform"] for e in events})
    now = datetime.now(UTC)
    written = screen_store.save_events(db, screened, now)
    if len(written) < len(screened):  # another reader committed some of them meanwhile: theirs stands
        again += [i for i in todo if _key(i) not in written]
        screened = [item for item in screened if (item.event["platform"], item.event["event_id"]) in written]
    totals = screen_store.save_authors(db, screened, now)
    screen_store.save_sessions(db, {sid: r.contract for sid, r in results.items() if r.snapshot})
    screen_store.save_alerts(db, alerts)
    return BatchResult(screened, sessions, alerts, stored=screen_store.load_screened(db, again), acks=acks,
                       standings=standing.of_rows(totals))


def publish(client: redis.Redis, result: BatchResult, maxlen: int, embedding_ttl_s: int) -> list[Screened]:
    """Mirror the committed batch into the streams (and cache embeddings for the context stage and
    the authors' standings), acknowledging consumer-group entries in the same call. Returns what this
    call mirrored: an entry acknowledged meanwhile by another reader is theirs to mirror, never
    mirrored twice."""
    items = result.screened + result.stored
    if not items and not result.acks and not result.standings:
        return []
    pipe = client.pipeline(transaction=False)
    mirror = streams.Mirror(client)
    screened_at = int(time.time() * 1000)
    for item in items:
        e = item.event
        session = result.sessions.get(e["session_id"], {})
        data = {"event": e, "risk_prediction": item.prediction, "status": item.status,
                "session": {"session_id": e["session_id"], "escalation_score": session.get("escalation_score"),
                            "message_count": session.get("message_count")}}
        mirror.add(item.stream_id, e["event_id"], e["platform"], json.dumps(data, separators=(",", ":")),
                   item.received_at_ms, screened_at, item.status == "needs_review")
        if _caches_embedding(item):
            pipe.set(f"embedding:{e['event_id']}", _pack(item.embedding, item.embedding_model), ex=embedding_ttl_s)
    for stream_id in result.acks:
        mirror.add(stream_id)
    mirror.run(pipe, maxlen)
    for alert in result.alerts:
        streams.add_many(pipe, streams.ALERTS, [streams.entry(alert["event_id"] or "", alert["platform"], alert)],
                         maxlen)
    standing.queue_cache(pipe, result.standings)  # the authors' new totals, now that they are committed
    replies = pipe.execute()
    mine = replies[sum(_caches_embedding(item) for item in items)]
    return [item for item, flag in zip(items, mine, strict=False) if int(flag) == 1]


def _caches_embedding(item: Screened) -> bool:
    """Only what goes on to the context stage keeps its vector (``embedding:{event_id}``, 7 days):
    caching every event's would hold ~3.5 kB per message, hundreds of GB a day at 1,000 events/s,
    for vectors nobody reads. The context stage encodes anything else it is asked about."""
    return item.embedding is not None and item.status == "needs_review"


def _pack(embedding: Sequence[float], model: str | None) -> str:
    """The cache format of app.llm.embeddings: the model names the vector space, so the context
    stage reuses the vector only when it embeds with the same model."""
    return json.dumps({"model": model, "dim": len(embedding), "vector": [round(float(x), 6) for x in embedding]},
                      separators=(",", ":"))


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return item["event"]["platform"], item["event"]["event_id"]


def _unique(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A batch can hold the same event twice (the sweeper and a late redelivery); keep the first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for item in items:
        key = (item["event"]["platform"], item["event"]["event_id"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
