"""The Celery application. Workers start with ``celery -A tasks.celery_app worker -Q <queue>``."""

from celery import Celery

app = Celery("safety", include=["tasks.screen", "tasks.maintenance", "tasks.act"])
app.config_from_object("celery_config")


def enqueue_screening(items: list[dict]) -> None:
    """One message per webhook request: the worker screens the whole batch in one model call."""
    app.send_task("screen.batch", args=[items], queue="screening")


def enqueue_context(refs: list[dict]) -> None:
    """Start the slow chain for each risky event: one ``context.gather`` message per event (ids, not objects)."""
    for ref in refs:
        app.send_task("context.gather", args=[ref], queue="reasoning")
