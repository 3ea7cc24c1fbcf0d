"""Prometheus metrics with the specification's names.

Web and worker processes are separate, so when ``PROMETHEUS_MULTIPROC_DIR`` is set (``make run``
and docker compose set it) every process writes its samples there and ``/metrics`` aggregates
them. Queue lengths and consumer lag are read from Redis at scrape time (see web/health.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)

SCREENING_DURATION = Histogram(
    "safety_screening_duration_ms", "Model + rules time per screened event (ms)", buckets=MS_BUCKETS)
INGEST_TO_SCREENED = Histogram(
    "safety_ingest_to_screened_ms", "From webhook acceptance to the screened record (ms)", buckets=MS_BUCKETS)
REASONING_DURATION = Histogram(
    "safety_reasoning_duration_ms", "Context + reasoning time per risky event (ms)", buckets=MS_BUCKETS)
EVENTS_PROCESSED = Counter(
    "safety_events_processed", "Events through each stage, by outcome", ["stage", "outcome"])
ACTION_FAILED = Counter(
    "safety_action_failed", "Platform actions that failed for good", ["platform", "reason"])
LLM_TIMEOUT = Counter(
    "safety_llm_timeout", "LLM calls that timed out", ["provider"])
INGEST_REJECTED = Counter(
    "safety_ingest_rejected", "Ingest requests refused, by reason", ["reason"])
SCREEN_BATCH_EVENTS = Histogram(
    "safety_screen_batch_events", "Events per screening batch (one model call, one transaction)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
SCREEN_RECLAIMED = Counter(
    "safety_screen_reclaimed", "events:raw entries claimed from a screening reader that went quiet")
SCREEN_SHED = Counter(
    "safety_screen_shed", "Events the transformer skipped because screening was behind (SCREENING_SHED_AFTER_MS): "
    "decided by the n-gram model and the rules, flagged shed_under_load")
SCREEN_RETRIES = Counter(
    "safety_screen_retries", "Screening batches retried after a transient failure (Redis, PostgreSQL)")
