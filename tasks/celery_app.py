"""The Celery application. Workers start with ``celery -A tasks.celery_app worker -Q <queue>``."""

from celery import Celery

app = Celery("safety", include=["tasks.screen", "tasks.maintenance", "tasks.act", "tasks.context", "tasks.reason"])
app.config_from_object("celery_config")


def wake_screening() -> None:
    """Wake a screening worker: ``screen.batch`` carries nothing; it reads its batch from the
    ``events:raw`` consumer group (app/pipeline/ingest.py decides when a wake is needed)."""
    app.send_task("screen.batch", queue="screening")


def enqueue_context(refs: list[dict]) -> None:
    """Start the slow chain for a batch's risky events: one message, fanned out on the reasoning queue
    into one ``context.gather`` per event (ids, not objects)."""
    if refs:
        app.send_task("context.fan_out", args=[refs], queue="reasoning")


def enqueue_actions(action_ids: list[str]) -> None:
    """``act.apply`` for decided actions, one message each (what the reasoning stage sends)."""
    for action_id in action_ids:
        app.send_task("act.apply", args=[action_id], queue="actions")


def record_outcome(platform: str, event_id: str, action_taken: str | None, action_outcome: str) -> None:
    """Tell the incident store what happened to an event's action (applied, reversed, overturned, ...).

    Sent through the ``reasoning`` queue because only reasoning workers open the store (Qdrant's local
    mode allows one process); call it after the commit that changed the action.
    """
    app.send_task("context.record_outcome", args=[{"platform": platform, "event_id": event_id,
                                                    "action_taken": action_taken, "action_outcome": action_outcome}],
                  queue="reasoning")
