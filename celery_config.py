"""Celery settings: broker, queues, routes, priorities, acknowledgement and time limits.

Urgency comes from dedicated workers per queue (screening never shares a process with LLM calls),
not from message priority alone. No result backend: stages hand work on through queues and streams.
"""

import os

from kombu import Queue

from app.config import get_settings

_settings = get_settings()

broker_url = _settings.broker_url
result_backend = None
task_ignore_result = True

task_queues = (
    Queue("screening"),
    Queue("reasoning"),
    Queue("actions"),
    Queue("maintenance"),
)
task_default_queue = "maintenance"
task_routes = {
    "screen.*": {"queue": "screening"},
    "context.*": {"queue": "reasoning"},
    "reason.*": {"queue": "reasoning"},
    "act.*": {"queue": "actions"},
    "maintenance.*": {"queue": "maintenance"},
}

# A worker killed mid-batch must lose nothing: acknowledge after the task ran, give the message
# back when the worker dies, and make the broker's visibility timeout longer than any task.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = int(os.environ.get("CELERY_PREFETCH", "4"))
task_time_limit = 120
task_soft_time_limit = 100
broker_transport_options = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "600")),
    "queue_order_strategy": "priority",
    "priority_steps": list(range(10)),
}
broker_connection_retry_on_startup = True

task_serializer = "json"
accept_content = ["json"]
worker_send_task_events = True  # Flower
# No "task-sent" events: each would double the broker writes of every webhook request, and Flower
# sees tasks from the worker's "received" events anyway.
task_send_sent_event = False
# screen.batch returns the events it screened; with no result backend Flower still shows it from
# the worker's task-succeeded event.
worker_hijack_root_logger = False

beat_schedule = {
    # screen.batch reads events:raw through its consumer group; this keeps a reader awake when no
    # webhook woke one (a lost wake message) and lets it claim what a dead reader held, within
    # seconds. Expired unread keepalives (workers down) are dropped, not run in a burst.
    "screen-keepalive": {"task": "screen.batch", "schedule": 1.0, "options": {"queue": "screening", "expires": 5}},
    "sweep-stuck-events": {"task": "maintenance.sweep", "schedule": 30.0},
    "sweep-stuck-reasoning": {"task": "maintenance.sweep_reasoning", "schedule": 60.0},
    "sweep-stuck-actions": {"task": "maintenance.sweep_actions", "schedule": 60.0},
    "lift-expired-bans": {"task": "act.expire", "schedule": 60.0},
    "snapshot-sessions": {"task": "maintenance.snapshot_sessions", "schedule": 15.0},
}
