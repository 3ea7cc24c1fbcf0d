"""The deterministic reasoner: the decision when no LLM is configured or the LLM failed, and the
baseline an LLM answer is checked against.

It scores severity on the action ladder (0 none, 1 warning, 2 timeout, 3 mute, 4 ban):

1. content: a base per risk category, moved by how far the risk score is past the middle of the
   risky band, plus the screening rules that fired;
2. precedents: each similar past incident with a known action votes for that action's severity,
   weighted by similarity; pending decisions count half; an action that was reversed or overturned
   on appeal votes two steps *below* what was done (moderators said it was too much). The more and
   the closer the precedents, the more they weigh (up to 60%);
3. the author: violations on record, earlier sanctions that were reversed (a false positive against
   this author calls for caution), and reputation;
4. the conversation: escalation past 0.5 and a pile-on on the same target.

Self-harm always goes to a person; spam is removed rather than sanctioned; when the precedents and
the content disagree by more than two and a half steps, a person decides. Confidence comes from the screening
model's confidence, the distance to the nearest step boundary and how much the precedents agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ml.screening import TRUST_FLAGS

VERSION = "fallback-v1"
SEVERITY = {"none": 0, "warning": 1, "delete_message": 1, "timeout": 2, "mute": 3, "ban": 4}
CATEGORY_BASE = {"threat": 3.0, "hate": 2.6, "sexual_harassment": 2.6, "targeted_harassment": 1.6,
                 "profanity": 0.6, "spam": 1.0, "none": 0.3, "self_harm": 0.0}
RISK_PIVOT, RISK_SLOPE = 0.85, 4.0
RULE_BONUS, RULE_CAP = 0.2, 0.6
MIN_SIMILARITY = 0.55
MAX_PRECEDENT_SHARE = 0.6
CONFLICT_GAP = 2.5  # precedents and content further apart than this: a person decides
OUTCOME_WEIGHT = {"applied": 1.0, "dry_run": 1.0, "pending": 0.5, "failed": 0.5}
AGAINST = {"reversed", "overturned"}
# Session flags are weighed as session evidence, not as content rules.
SESSION_FLAGS = {"escalating_session", "pile_on", "repeated_targeting", "repeat_offender"}
# Flags that say something about the message's situation or the model, not a rule that fired on
# its content: a victim answering back, or a model unsure of itself, must not add severity.
NOT_RULES = SESSION_FLAGS | {"answering_harasser"} | TRUST_FLAGS


@dataclass(frozen=True)
class Verdict:
    action_type: str
    duration_hours: float | None
    reason_code: str
    confidence: float
    reasoning: str
    severity: float
    breakdown: dict[str, float] = field(default_factory=dict)


def decide(event: dict[str, Any], context: dict[str, Any], *, policy: str = "graduated_escalation") -> Verdict:
    category = event.get("risk_category") or "none"
    risk = float(event.get("risk_score") or 0.0)
    notes: list[str] = [f"Screened as {category} at risk {risk:.2f}."]
    content = _content(category, risk, event.get("flags") or [], notes)
    prec_sev, share, agreement = _precedents(context.get("precedents") or [], notes)
    severity = (1 - share) * content + share * prec_sev if share else content
    history = _history(context.get("author") or {}, policy, notes)
    session = _session(context.get("session") or {}, notes)
    severity = max(0.0, min(4.5, severity + history + session))
    breakdown = {"content": round(content, 3), "precedents": round(prec_sev, 3), "precedent_share": round(share, 3),
                 "history": round(history, 3), "session": round(session, 3), "severity": round(severity, 3)}

    confidence = _confidence(event, severity, agreement, context.get("author") or {})
    action, hours, code = _action(category, severity)
    if category == "self_harm":
        action, hours, code, confidence = "human_review", None, "self_harm_risk", 0.9
        notes.append("Self-harm content goes to a person, never to an automatic sanction.")
    elif "model_uncertain" in (event.get("flags") or []) and action != "none":
        action, hours, code = "human_review", None, "model_uncertain"
        confidence = min(confidence, 0.5)
        notes.append("The screening model could not read this message well "
                     f"({', '.join(f for f in event.get('flags') or [] if f in TRUST_FLAGS)}): a moderator decides.")
    elif share >= 0.3 and abs(content - prec_sev) > CONFLICT_GAP:
        action, hours, code = "human_review", None, "conflicting_precedents"
        confidence = min(confidence, 0.5)
        notes.append(f"Precedents (severity {prec_sev:.1f}) and content (severity {content:.1f}) disagree: "
                     "a moderator should decide.")
    notes.append(f"Severity {severity:.2f} on the 0-4 ladder: {_describe(action, hours)}.")
    return Verdict(action, hours, code, confidence, " ".join(notes), round(severity, 3), breakdown)


def _content(category: str, risk: float, flags: list[str], notes: list[str]) -> float:
    rules = [f for f in flags if f not in NOT_RULES]
    bonus = min(RULE_CAP, RULE_BONUS * len(rules))
    if rules:
        notes.append(f"Rules fired: {', '.join(rules)}.")
    return CATEGORY_BASE.get(category, 1.0) + RISK_SLOPE * (risk - RISK_PIVOT) + bonus


def _precedents(precedents: list[dict[str, Any]], notes: list[str]) -> tuple[float, float, float]:
    """(weighted severity of the precedents, their share of the decision, their agreement 0-1)."""
    votes: list[tuple[float, float]] = []
    against = 0
    for p in precedents:
        action, outcome = p.get("action_taken"), p.get("action_outcome") or "pending"
        similarity = float(p.get("similarity") or 0.0)
        if action not in SEVERITY or similarity < MIN_SIMILARITY:
            continue
        closeness = min(1.0, (similarity - 0.5) / 0.5)
        if outcome in AGAINST:
            votes.append((closeness, max(0.0, SEVERITY[action] - 2.0)))
            against += 1
        elif outcome in OUTCOME_WEIGHT:
            votes.append((closeness * OUTCOME_WEIGHT[outcome], float(SEVERITY[action])))
    if not votes:
        notes.append("No similar past incident with a known outcome." if not precedents else
                     f"{len(precedents)} similar incident(s), none close enough with a known outcome.")
        return 0.0, 0.0, 0.5
    total = sum(w for w, _ in votes)
    mean = sum(w * v for w, v in votes) / total
    spread = math.sqrt(sum(w * (v - mean) ** 2 for w, v in votes) / total)
    share = min(MAX_PRECEDENT_SHARE, total / (total + 1.5))
    best = max(precedents, key=lambda p: float(p.get("similarity") or 0))
    notes.append(f"{len(votes)} similar incident(s) weigh in at severity {mean:.1f} (closest {best.get('similarity')}: "
                 f"{best.get('action_taken') or 'no action yet'}, {best.get('action_outcome') or 'pending'})"
                 + (f"; {against} of them reversed or overturned, which counts against." if against else "."))
    return mean, share, max(0.0, 1.0 - spread / 2.0)


def _history(author: dict[str, Any], policy: str, notes: list[str]) -> float:
    violations = int(author.get("violation_count") or 0)
    reversed_count = int(author.get("reversed_count") or 0)
    reputation = float(author.get("reputation") if author.get("reputation") is not None else 0.5)
    # graduated_escalation raises the sanction per violation at the act stage: only nudge here.
    per_violation = 0.25 if policy == "graduated_escalation" else 0.5
    delta = per_violation * min(violations, 3) - 0.3 * min(reversed_count, 2) + 0.8 * (0.5 - reputation)
    if violations or reversed_count or abs(reputation - 0.5) > 0.1:
        notes.append(f"Author: {violations} violation(s) on record, {reversed_count} reversed, "
                     f"reputation {reputation:.2f}.")
    else:
        notes.append("Author has no record.")
    return delta


def _session(session: dict[str, Any], notes: list[str]) -> float:
    escalation = float(session.get("escalation_score") or 0.0)
    delta = max(0.0, escalation - 0.5) * 1.6
    if session.get("pile_on"):
        delta += 0.5
    if escalation >= 0.5 or session.get("pile_on"):
        notes.append(f"Conversation escalation {escalation:.2f}" + (", a pile-on on the same target." if
                                                                     session.get("pile_on") else "."))
    return delta


def _confidence(event: dict[str, Any], severity: float, agreement: float, author: dict[str, Any]) -> float:
    model = float(event.get("confidence") if event.get("confidence") is not None else 0.5)
    margin = min(abs(severity - b) for b in (0.5, 1.5, 2.5, 3.4))
    value = 0.3 + 0.3 * model + 0.25 * min(margin, 0.5) / 0.5 + 0.15 * agreement
    if author.get("reversed_count"):
        value -= 0.1
    return round(max(0.05, min(0.99, value)), 3)


def _action(category: str, severity: float) -> tuple[str, float | None, str]:
    code = category if category != "none" else "elevated_risk"
    if severity < 0.5:
        return "none", None, code
    if category == "spam":
        return "delete_message", None, "spam"
    if severity < 1.5:
        return "warning", None, code
    if severity < 2.5:
        return "timeout", 1.0 if severity < 2.0 else 24.0, code
    if severity < 3.4:
        return "mute", 24.0 if severity < 3.0 else 168.0, code
    return "ban", None, code


def _describe(action: str, hours: float | None) -> str:
    return f"{action} for {hours:g} h" if hours else action
