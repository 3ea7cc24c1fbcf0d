"""Maintenance tasks (queue ``maintenance``, run periodically by beat)."""

from __future__ import annotations

from app import maintenance
from app.config import get_settings
from app.db import session_scope
from app.redis_client import get_redis
from tasks.celery_app import app, enqueue_actions, enqueue_context, wake_screening


@app.task(name="maintenance.sweep", acks_late=True)
def sweep() -> int:
    return maintenance.sweep(get_redis(), wake_screening)


@app.task(name="maintenance.sweep_reasoning", acks_late=True)
def sweep_reasoning() -> int:
    with session_scope() as db:
        return maintenance.sweep_reasoning(get_redis(), db, enqueue_context,
                                           older_than_s=get_settings().REASONING_SWEEP_AFTER_S)


@app.task(name="maintenance.sweep_actions", acks_late=True)
def sweep_actions() -> int:
    with session_scope() as db:
        return maintenance.sweep_actions(get_redis(), db, enqueue_actions,
                                         older_than_s=get_settings().ACTIONS_SWEEP_AFTER_S)


@app.task(name="maintenance.snapshot_sessions", acks_late=True)
def snapshot_sessions() -> int:
    with session_scope() as db:
        return maintenance.snapshot_sessions(get_redis(), db)
