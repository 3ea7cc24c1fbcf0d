"""The review queue: list (live-refreshed rows), claim, release and decide."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, g, jsonify, redirect, render_template, request, url_for

from app.config import PLATFORMS
from app.console import review
from app.redis_client import get_redis
from web.console import bp, effects
from web.console.access import notify, requires
from web.console.forms import page_number

CATEGORIES = ("targeted_harassment", "hate", "threat", "sexual_harassment", "self_harm", "profanity", "spam")


def _filters() -> review.Filters:
    platform = request.args.get("platform", "")
    if platform and platform not in PLATFORMS:
        abort(400, description=f"Unknown platform {platform!r}.")
    return review.Filters(platform=platform, channel=request.args.get("channel", "")[:128],
                          category=request.args.get("category", "")[:32])


@bp.get("/")
def home() -> Any:
    return redirect(url_for("console.queue"))


@bp.get("/queue")
def queue() -> Any:
    data = review.page(get_redis(), _filters(), page_number())
    return render_template("console/queue.html", data=data, filters=_filters(), platforms=PLATFORMS,
                           categories=CATEGORIES, choices=review.ACTION_CHOICES)


@bp.get("/queue/rows")
def queue_rows() -> Any:
    data = review.page(get_redis(), _filters(), page_number())
    return render_template("console/_queue_rows.html", data=data, choices=review.ACTION_CHOICES)


@bp.post("/queue/<platform>/<path:event_id>/claim")
@requires("moderator")
def claim(platform: str, event_id: str) -> Any:
    ttl = current_app.config["SETTINGS"].CONSOLE_CLAIM_TTL_S
    holder = review.claim(get_redis(), platform, event_id, g.account.username, ttl)
    mine = holder == g.account.username
    if _wants_json():
        return jsonify({"claimed_by": holder, "mine": mine}), 200 if mine else 409
    if not mine:
        notify(f"{holder} is already working on {event_id}.", "error")
    return redirect(_back())


@bp.post("/queue/<platform>/<path:event_id>/release")
@requires("moderator")
def release(platform: str, event_id: str) -> Any:
    review.release(get_redis(), platform, event_id, g.account.username)
    return redirect(_back())


@bp.post("/queue/<platform>/<path:event_id>/decide")
@requires("moderator")
def decide(platform: str, event_id: str) -> Any:
    form = request.form
    try:
        hours = float(form["duration_hours"]) if form.get("duration_hours", "").strip() else None
    except ValueError:
        abort(400, description="The duration is a number of hours.")
    if hours is not None and not 0 < hours <= 24 * 365:
        abort(400, description="The duration is between 0 and 8760 hours.")
    try:
        action_id = review.resolve(get_redis(), platform, event_id, moderator=g.account.username,
                                   decision=form.get("decision", ""), action_type=form.get("action_type") or None,
                                   duration_hours=hours, note=form.get("note", "")[:500],
                                   claim_ttl_s=current_app.config["SETTINGS"].CONSOLE_CLAIM_TTL_S)
    except review.ReviewError as exc:
        abort(exc.status, description=str(exc))
    if action_id is None:
        notify(f"Dismissed {event_id}.", "ok")
    else:
        result = effects.apply_now(action_id)
        notify(f"{event_id}: " + (f"{result.action.get('action_type')} {result.status}" if result
                                 else "queued; the platform is busy and the actions worker will retry"), "ok")
    return redirect(_back())


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _back() -> str:
    target = request.form.get("next", "")
    return target if target.startswith("/admin") and not target.startswith("//") else url_for("console.queue")
