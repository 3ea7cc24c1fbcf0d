"""Every error is JSON with a message that says what to do next."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

HINTS = {
    400: "Fix the fields listed in 'errors' and send the request again.",
    401: "Send a valid key in the X-API-Key header (keys are configured with API_KEYS).",
    404: "Check the path or the id.",
    405: "Check the HTTP method for this endpoint.",
    413: "Split the request: send at most MAX_BATCH_EVENTS events per request, under MAX_CONTENT_LENGTH bytes.",
    415: "Send the body as JSON with 'Content-Type: application/json'.",
    429: "Slow down: retry after the number of seconds in the Retry-After header.",
    503: "A dependency is unavailable; retry shortly. Nothing from this request was accepted.",
}


def error_response(status: int, message: str, **extra: object) -> tuple[object, int]:
    body = {"error": message, "status": status, "hint": HINTS.get(status, "")} | extra
    return jsonify(body), status


def register(app: Flask) -> None:
    @app.before_request
    def _refuse_nul():  # type: ignore[no-untyped-def]
        # PostgreSQL cannot compare against a string holding NUL: an id like "%00" in a path or a
        # query was a 500 from the driver. No id or parameter of ours may contain one.
        if "\x00" in request.path or any("\x00" in v for v in request.args.values()):
            return error_response(400, "A path or query parameter contains a NUL character.")
        return None

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        response, code = error_response(status, exc.description or exc.name)
        if exc.response is not None:  # e.g. 429 carries Retry-After
            for key, value in exc.response.headers.items():
                if key.lower() != "content-type" and key.lower() != "content-length":
                    response.headers[key] = value
        return response, code
