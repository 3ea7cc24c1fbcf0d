"""Reason: one recommended action per risky event, from an LLM or the deterministic fallback.

``decide`` never blocks past its deadline (the context + reasoning budget, 5 s by default): the LLM
gets ``LLM_TIMEOUT_S`` per call, one retry if time is left, and then the fallback decides. Every
failure (timeout, 429/5xx, refusal, an answer outside the schema) is recorded in the evidence
chain, and the decision says which path was used (``provider`` openai | local | fallback). An LLM
answer more than one step stricter than the fallback's baseline is not applied: it becomes
``human_review`` (a message that talks the model into a ban still reaches a person, not the ban).

``record`` writes the decision once: the event row is locked and must still await a decision, the
action id is derived from (platform, event_id, action_type) and inserted with ON CONFLICT DO
NOTHING, an ``audit_log`` row is appended and the event becomes ``decided``. The caller commits,
then ``publish``es to ``events:actions_pending`` and sends ``act.apply``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from app import fallback, metrics, streams
from app.llm.base import LLMError, LLMTimeout, Provider
from app.llm.prompt import build_messages, evidence_for_prompt
from app.llm.schema import LLMDecision, parse_decision
from app.models import Action, AuditLog, Event
from app.pipeline.context import SANCTIONS, awaiting_decision, event_summary

log = logging.getLogger(__name__)
MIN_ATTEMPT_S = 0.3  # no point starting an LLM call with less time than this left
RECORD_RESERVE_S = 0.25  # kept back from the budget for writing and publishing the decision
SESSION_FLAGS = fallback.SESSION_FLAGS


@dataclass(frozen=True)
class Decision:
    action_type: str
    duration_hours: float | None
    reason_code: str
    confidence: float
    reasoning: str
    provider: str  # openai | local | fallback
    model: str
    evidence_chain: list[dict[str, Any]]


def action_id_for(platform: str, event_id: str, action_type: str) -> str:
    """Deterministic: a retried decision of the same type can only find its own row."""
    return hashlib.sha256(f"{platform}:{event_id}:{action_type}".encode()).hexdigest()[:32]


def deadline_for(started_at_ms: float, budget_s: float) -> float:
    """The monotonic instant by which an answer is needed, counted from when context gathering began."""
    left = started_at_ms / 1000 + budget_s - RECORD_RESERVE_S - time.time()
    return time.monotonic() + left


def decide(event: dict[str, Any], context: dict[str, Any], *, provider: Provider | None, policy: str,
           llm_timeout_s: float, deadline: float) -> Decision:
    """``event`` is the context's event summary plus ``content``."""
    baseline = fallback.decide(event, context, policy=policy)
    chain = evidence_chain(event, context)
    if provider is None:
        return _from_verdict(baseline, chain)
    suggested = {"action_type": baseline.action_type, "duration_hours": baseline.duration_hours}
    messages = build_messages(event["content"], evidence_for_prompt(event, context, suggested), policy)
    answer, failures = ask(provider, messages, llm_timeout_s=llm_timeout_s, deadline=deadline)
    ref = f"{provider.name}:{provider.model}"
    if answer is None:
        chain.append({"kind": "llm", "ref": ref, "detail": {"outcome": "fell_back", "failures": failures}})
        return _from_verdict(baseline, chain)
    overruled = _too_strict(answer, baseline)
    chain.append({"kind": "llm", "ref": ref, "detail": {
        "outcome": "overruled" if overruled else "answered", "failures": failures,
        "answer": {"action_type": answer.action_type, "duration_hours": answer.duration_hours,
                   "confidence": answer.confidence},
        "baseline": {"action_type": baseline.action_type, "duration_hours": baseline.duration_hours}}})
    if overruled:
        reasoning = (f"The model recommended {answer.action_type}, more than one step stricter than the evidence-"
                     f"based baseline ({baseline.action_type}); a moderator decides. Model: {answer.reasoning}")
        return Decision("human_review", None, "llm_baseline_disagreement", min(answer.confidence, 0.5),
                        reasoning, provider.name, provider.model, chain)
    return Decision(answer.action_type, answer.duration_hours, answer.reason_code, answer.confidence,
                    answer.reasoning, provider.name, provider.model, chain)


def ask(provider: Provider, messages: list[dict[str, Any]], *, llm_timeout_s: float, deadline: float
        ) -> tuple[LLMDecision | None, list[str]]:
    """At most two calls inside the deadline; the validated answer or None, and what went wrong."""
    failures: list[str] = []
    for attempt in (1, 2):
        left = deadline - time.monotonic()
        if left < MIN_ATTEMPT_S:
            failures.append(f"attempt {attempt}: skipped, {max(left, 0):.2f} s left in the budget")
            break
        timeout = min(llm_timeout_s, left)
        try:
            return parse_decision(_call(provider, messages, timeout)), failures
        except LLMError as exc:
            if isinstance(exc, LLMTimeout):
                metrics.LLM_TIMEOUT.labels(provider.name).inc()
            failures.append(f"attempt {attempt}: {exc.reason}: {str(exc)[:300]}")
            log.info("LLM %s attempt %d failed: %s", provider.name, attempt, exc)
            if not exc.retryable or attempt == 2:
                break
            time.sleep(min(0.1 + random.random() * 0.1, max(0.0, deadline - time.monotonic() - MIN_ATTEMPT_S)))
    return None, failures


_pool: ThreadPoolExecutor | None = None


def _call(provider: Provider, messages: list[dict[str, Any]], timeout_s: float) -> str:
    """The HTTP client's timeouts are per read; this bounds the whole call, however the server dribbles."""
    global _pool
    if _pool is None:  # created lazily: never inherited across a worker fork
        _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm")
    future = _pool.submit(provider.complete, messages, timeout_s=timeout_s)
    try:
        return future.result(timeout=timeout_s + 0.05)
    except FutureTimeout:
        future.cancel()
        raise LLMTimeout(f"no complete answer within {timeout_s:.2f} s") from None


def _too_strict(answer: LLMDecision, baseline: fallback.Verdict) -> bool:
    if answer.action_type in ("human_review", "none"):
        return False
    asked = fallback.SEVERITY[answer.action_type]
    if baseline.action_type == "human_review":
        return asked >= fallback.SEVERITY["timeout"]
    return asked > fallback.SEVERITY[baseline.action_type] + 1


def _from_verdict(verdict: fallback.Verdict, chain: list[dict[str, Any]]) -> Decision:
    return Decision(verdict.action_type, verdict.duration_hours, verdict.reason_code, verdict.confidence,
                    verdict.reasoning, "fallback", fallback.VERSION, chain)


def evidence_chain(event: dict[str, Any], context: dict[str, Any]) -> list[dict[str, Any]]:
    """What the decision rests on, one ``{kind, ref, detail}`` per piece of evidence."""
    chain: list[dict[str, Any]] = [{"kind": "model_score", "ref": event.get("model_version") or "screening",
                                    "detail": {"risk_score": event.get("risk_score"),
                                               "risk_category": event.get("risk_category"),
                                               "confidence": event.get("confidence")}}]
    chain += [{"kind": "rule", "ref": flag, "detail": "screening rule fired"}
              for flag in event.get("flags") or [] if flag not in SESSION_FLAGS]
    chain += [{"kind": "similar_incident", "ref": p.get("event_id"),
               "detail": {"similarity": p.get("similarity"), "platform": p.get("platform"),
                          "risk_category": p.get("risk_category"), "action_taken": p.get("action_taken"),
                          "action_outcome": p.get("action_outcome")}}
              for p in context.get("precedents") or []]
    if context.get("precedents_unavailable"):
        chain.append({"kind": "similar_incident", "ref": "unavailable",
                      "detail": {"error": context["precedents_unavailable"], "precedents": 0}})
    author = context.get("author") or {}
    chain += [{"kind": "prior_violation", "ref": a["action_id"],
               "detail": {"event_id": a.get("event_id"), "action_type": a.get("action_type"),
                          "status": a.get("status"), "at": a.get("created_at")}}
              for a in author.get("prior_actions") or [] if a.get("action_type") in SANCTIONS]
    if author.get("violation_count") or author.get("reversed_count"):
        chain.append({"kind": "prior_violation", "ref": f"user:{author.get('user_id')}",
                      "detail": {"violation_count": author.get("violation_count"),
                                 "reversed_count": author.get("reversed_count"),
                                 "reputation": author.get("reputation")}})
    session = context.get("session") or {}
    if session.get("source"):
        flags = [f for f in event.get("flags") or [] if f in SESSION_FLAGS]
        chain.append({"kind": "session", "ref": session.get("session_id"),
                      "detail": {key: session.get(key) for key in (
                          "escalation_score", "message_count", "harassment_flags_count", "participant_count",
                          "pile_on")} | {"flags": flags}})
    return chain


def load_for_decision(db: DbSession, ref: dict[str, str]) -> dict[str, Any] | None:
    """The event's content and summary if it still awaits a decision."""
    event = db.scalar(select(Event).where(Event.platform == ref["platform"], Event.event_id == ref["event_id"]))
    if event is None or not awaiting_decision(db, event):
        return None
    return event_summary(event) | {"content": event.content}


def record(db: DbSession, ref: dict[str, str], decision: Decision, *, policy: str,
           duration_ms: float) -> dict[str, Any] | None:
    """Insert the action (once); None when the event was decided meanwhile."""
    event = db.scalar(select(Event).where(Event.platform == ref["platform"], Event.event_id == ref["event_id"])
                      .with_for_update())
    if event is None or not awaiting_decision(db, event):
        return None
    action = {
        "action_id": action_id_for(event.platform, event.event_id, decision.action_type),
        "event_id": event.event_id, "platform": event.platform, "user_id": event.author_id,
        "action_type": decision.action_type, "duration_hours": decision.duration_hours,
        "reason_code": decision.reason_code, "reasoning": decision.reasoning, "confidence": decision.confidence,
        "evidence_chain": decision.evidence_chain, "policy": policy, "provider": decision.provider,
        "status": "pending",
    }
    inserted = db.execute(insert(Action).values(**action).on_conflict_do_nothing().returning(Action.action_id))
    if inserted.scalar() is None:
        return None
    db.add(AuditLog(actor="system", kind="decision", event_id=event.event_id, action_id=action["action_id"],
                    platform=event.platform, detail=asdict(decision) | {"policy": policy,
                                                                        "duration_ms": round(duration_ms, 1)}))
    event.status = "decided"
    return action


def publish(client: redis.Redis, action: dict[str, Any], maxlen: int) -> None:
    pipe = client.pipeline(transaction=False)
    streams.add_many(pipe, streams.ACTIONS_PENDING, [streams.entry(action["event_id"], action["platform"], action)],
                     maxlen)
    pipe.execute()
