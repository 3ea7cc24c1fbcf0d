"""Event and user pages, one-click reversal, and the appeals queue."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, g, redirect, render_template, request, url_for
from markupsafe import Markup

from app import records
from app.charts import session_risk_svg
from app.config import PLATFORMS
from app.console import appeals, pages, policy_store
from app.pipeline import act
from app.redis_client import get_redis
from web.console import bp, effects
from web.console.access import actor, notify, requires
from web.console.forms import page_number


def _platform(platform: str) -> str:
    if platform not in PLATFORMS:
        abort(404, description=f"Unknown platform {platform!r}.")
    return platform


def _threshold() -> float:
    return policy_store.effective(current_app.config["SETTINGS"], get_redis()).SCREENING_THRESHOLD


@bp.get("/events/<platform>/<path:event_id>")
def event(platform: str, event_id: str) -> Any:
    data = pages.event_page(_platform(platform), event_id)
    if data is None:
        abort(404, description=f"No event {platform}:{event_id}.")
    session = records.session_record(data["event"]["session_id"])
    # Markup: app.charts escapes every text it puts into the SVG.
    chart = Markup(session_risk_svg(session, _threshold())) if session else None
    return render_template("console/event.html", data=data, chart=chart, threshold=_threshold())


@bp.get("/users/<platform>/<path:user_id>")
def user(platform: str, user_id: str) -> Any:
    data = pages.user_page(_platform(platform), user_id, page_number())
    if data["user"] is None and not data["actions"]:
        abort(404, description=f"No {platform} user {user_id!r} has been seen.")
    return render_template("console/user.html", data=data, platform=platform, user_id=user_id)


@bp.post("/actions/<action_id>/reverse")
@requires("moderator")
def reverse(action_id: str) -> Any:
    reason = request.form.get("reason", "").strip()[:500] or "reversed in the console"
    try:
        result = effects.reverse_now(action_id, actor(), reason)
    except act.ActionNotFound:
        abort(404, description=f"No action {action_id!r}.")
    except act.NotReversible as exc:
        abort(409, description=str(exc))
    notify(f"Action {action_id} " + (f"is {result.status}" if result else "reversal queued (platform busy)"))
    return redirect(_back())


@bp.get("/appeals")
def appeal_list() -> Any:
    status = request.args.get("status", "open")
    if status not in appeals.STATUSES:
        abort(400, description=f"status is one of {', '.join(appeals.STATUSES)}.")
    return render_template("console/appeals.html", data=appeals.listing(status, page_number()), status=status,
                           statuses=appeals.STATUSES)


@bp.route("/appeals/new", methods=["GET", "POST"])
@requires("moderator")
def appeal_new() -> Any:
    if request.method == "POST":
        action_id = request.form.get("action_id", "").strip()
        statement = request.form.get("statement", "").strip()
        if not action_id or not statement or len(statement) > 4000:
            abort(400, description="Give the action id and the user's statement (at most 4,000 characters).")
        try:
            appeal, new = appeals.file(action_id, statement, source=actor())
        except appeals.AppealError as exc:
            abort(exc.status, description=str(exc))
        notify(f"Appeal {appeal['appeal_id']} " + ("filed." if new else "was already open for this action."))
        return redirect(url_for("console.appeal", appeal_id=appeal["appeal_id"]))
    return render_template("console/appeal_new.html", action_id=request.args.get("action_id", ""))


@bp.get("/appeals/<appeal_id>")
def appeal(appeal_id: str) -> Any:
    found = appeals.get(appeal_id)
    if found is None:
        abort(404, description=f"No appeal {appeal_id!r}.")
    data = pages.event_page(found["platform"], found["event_id"])
    return render_template("console/appeal.html", appeal=found, data=data)


@bp.post("/appeals/<appeal_id>/decide")
@requires("moderator")
def appeal_decide(appeal_id: str) -> Any:
    outcome, reason = request.form.get("outcome", ""), request.form.get("reason", "")[:2000]
    try:
        decided = appeals.decide(appeal_id, outcome, moderator=g.account.username, reason=reason)
    except appeals.AppealError as exc:
        abort(exc.status, description=str(exc))
    if outcome == "overturned":
        try:
            result = effects.reverse_now(decided["action_id"], actor(), f"appeal {appeal_id} overturned: {reason}")
            notify(f"Appeal overturned; action {decided['action_id']} "
                   + (f"is {result.status}" if result else "reversal queued (platform busy)"))
        except act.NotReversible as exc:
            # Already reversed (or never sent): the appeal stands overturned and the precedent still learns it.
            effects.tell_precedents_overturned(decided)
            notify(f"Appeal overturned; nothing to reverse on the platform ({exc}).")
    else:
        notify(f"Appeal upheld: {reason}")
    return redirect(url_for("console.appeal", appeal_id=appeal_id))


def _back() -> str:
    target = request.form.get("next", "")
    return target if target.startswith("/admin") and not target.startswith("//") else url_for("console.queue")
