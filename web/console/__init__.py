"""The moderators' console under /admin: server-rendered pages, plain forms, a little JavaScript."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")


def register(app: object) -> None:
    """Import the views (they attach to ``bp``) and mount the blueprint and the appeals API."""
    from flask import Flask

    from web.console import access, account, flower, pages, policy, reports, review  # noqa: F401
    from web.console.api import bp as api

    assert isinstance(app, Flask)
    app.register_blueprint(bp)
    app.register_blueprint(api)
