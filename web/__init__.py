"""Flask application factory: reads like a table of contents."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    from app.config import Settings, set_settings

    app = Flask(__name__)
    settings = Settings.from_mapping({**os.environ, **(test_config or {})})
    set_settings(settings)
    app.config.from_mapping(SETTINGS=settings, MAX_CONTENT_LENGTH=settings.MAX_CONTENT_LENGTH,
                            JSON_SORT_KEYS=False)
    logging.basicConfig(level=settings.LOG_LEVEL)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    from app.pipeline.ingest import Ingestor
    from app.redis_client import get_redis
    from tasks.celery_app import app as celery

    settings = app.config["SETTINGS"]
    celery.conf.broker_url = settings.broker_url
    app.extensions["ingestor"] = Ingestor(
        get_redis(), rate_per_s=settings.INGEST_RATE_PER_S, burst=settings.INGEST_BURST,
        dedup_ttl_s=settings.DEDUP_TTL_S, stream_maxlen=settings.STREAM_MAXLEN)


def register_blueprints(app: Flask) -> None:
    from web.actions import bp as actions
    from web.api import bp as api
    from web.console import register as register_console
    from web.health import bp as health
    from web.sessions import bp as sessions
    from web.webhooks import bp as webhooks

    app.register_blueprint(api)
    app.register_blueprint(actions)
    app.register_blueprint(sessions)
    app.register_blueprint(webhooks)
    app.register_blueprint(health)
    register_console(app)


def register_error_handlers(app: Flask) -> None:
    from web.errors import register

    register(app)


def register_cli(app: Flask) -> None:
    import click

    @app.cli.command("replay", context_settings={"ignore_unknown_options": True, "help_option_names": []})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def replay(args: tuple[str, ...]) -> None:
        """Replay a window of events:raw in dry-run, or re-drive events:dlq_errors (--help for options)."""
        from app.replay import main

        raise SystemExit(main(list(args), app.config["SETTINGS"]))

    from web.console.cli import users

    app.cli.add_command(users)
