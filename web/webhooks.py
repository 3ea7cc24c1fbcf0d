"""Platform webhooks: verify the platform's signature, normalise, then the same intake as the API.

The work is only queued here, so every platform gets its answer within its deadline. A refused
delivery is logged with the connector's reason, which never contains message text.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, make_response, request
from marshmallow import ValidationError

from app import metrics
from app.platforms import ENDPOINTS, Inbound, WebhookRejected
from app.schemas import event_schema
from web.errors import error_response
from web.intake import accept

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")
log = logging.getLogger(__name__)

# What each platform expects when a delivery is simply accepted (Twitch's samples use 204).
DEFAULT_STATUS = {"twitch": 204, "slack": 200, "discord": 202, "discord_interactions": 202, "web": 202}
ROUTES = {"twitch": "/twitch", "slack": "/slack", "discord": "/discord",
          "discord_interactions": "/discord/interactions", "web": "/web"}


def receive(name: str) -> Response | tuple[Response, int]:
    endpoint = ENDPOINTS[name]
    raw = request.get_data(cache=False)
    settings = current_app.config["SETTINGS"]
    key = getattr(settings, endpoint.key_setting, "")
    try:
        endpoint.verify(request.headers, raw, key, time.time())
        inbound = endpoint.parse(request.headers, raw)
    except WebhookRejected as exc:
        log.warning("webhook %s refused: %s %s", name, exc.status, exc.reason)
        metrics.INGEST_REJECTED.labels(f"webhook_{exc.status}").inc()
        return error_response(exc.status, exc.reason)
    if inbound.notes:
        log.info("webhook %s notes: %s", name, sorted(inbound.notes))
    try:
        schema = event_schema(True, settings.MAX_MESSAGE_CHARS)  # built once, as the API's
        events = schema.load(inbound.events) if inbound.events else []
    except ValidationError as exc:
        # The connector produced something our contract refuses: log field names only.
        log.error("webhook %s produced invalid events: %s", name, sorted(exc.messages))
        return error_response(400, "Delivery could not be normalised into events.")
    summary: dict[str, Any] = accept(f"webhook:{name}", list(events)) if events else {}
    return _reply(name, inbound, summary)


def _reply(name: str, inbound: Inbound, summary: dict[str, Any]) -> Response | tuple[Response, int]:
    if inbound.reply is not None:
        status, body, headers = inbound.reply
        response = make_response(body if isinstance(body, str) else jsonify(body), status)
        response.headers.update(headers)
        return response
    status = DEFAULT_STATUS[name]
    if status == 204:
        return Response(status=204)
    return jsonify(summary), status


def _register() -> None:
    for name, path in ROUTES.items():
        bp.add_url_rule(path, f"receive_{name}", lambda name=name: receive(name), methods=["POST"])


_register()
