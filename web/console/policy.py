"""The policy page: every editable setting, where its value comes from, and (for admins) a form."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, g, redirect, render_template, request, url_for

from app import policies
from app.console import policy_store
from app.redis_client import get_redis
from web.console import bp
from web.console.access import notify

HELP = {
    "SCREENING_THRESHOLD": "Risk at or above this goes to reasoning and review (0-1).",
    "ACTION_POLICY": f"Default policy: {', '.join(policies.POLICIES)}.",
    "ACTION_POLICY_SCOPES": "Per platform or channel, comma-separated: discord=severity_based, web:lobby=...",
    "ACTIONS_DRY_RUN": "true: record every decision, call no platform.",
    "DRY_RUN_CHANNELS": "Dry-run scopes, comma-separated: twitch, discord:1234 ...",
    "DAILY_ACTION_QUOTA": "Automatic actions per platform per UTC day before the rest go to review (0 = none).",
    "EXEMPT_USERS": "Never acted on automatically: platform:user_id or user_id, comma-separated.",
    "EXEMPT_ROLES": "Authors holding one of these roles are never acted on automatically.",
}


@bp.route("/policy", methods=["GET", "POST"])
def policy() -> Any:
    settings, client = current_app.config["SETTINGS"], get_redis()
    errors: dict[str, str] = {}
    submitted: dict[str, str] = {}
    if request.method == "POST":
        if not g.account.can("admin"):
            abort(403, description="Changing the policy needs the admin role.")
        submitted = {name: request.form[name] for name in policy_store.EDITABLE if name in request.form}
        try:
            changed = policy_store.save(settings, client, policy_store.parse(submitted),
                                        actor=f"moderator:{g.account.username}")
        except policy_store.PolicyError as exc:
            errors = exc.errors
        else:
            notify(f"Policy saved: {', '.join(changed) or 'nothing changed'}. It applies from the next event.")
            return redirect(url_for("console.policy"))
    current = policy_store.effective(settings, client)
    rows = [{"name": name, "value": submitted.get(name, policy_store.as_text(getattr(current, name))),
             "default": policy_store.as_text(getattr(settings, name)), "help": HELP[name],
             "error": errors.get(name)} for name in policy_store.EDITABLE]
    return render_template("console/policy.html", rows=rows, sources=policy_store.sources(settings, client),
                           editable=g.account.can("admin")), 400 if errors else 200
