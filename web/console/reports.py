"""Reports over a date range with charts, and the decision log as CSV."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, render_template, stream_with_context
from markupsafe import Markup

from app.console import policy_store, reports
from app.console.charts import bars_svg, series_svg
from app.redis_client import get_redis
from web.console import bp
from web.console.flower import PREFIX, public_url
from web.console.forms import date_range


@bp.get("/reports")
def report_page() -> Any:
    start, end = date_range()
    settings = current_app.config["SETTINGS"]
    threshold = policy_store.effective(settings, get_redis()).SCREENING_THRESHOLD
    data = reports.report(reports.Range(start, end))
    by_type: dict[str, int] = {}
    for row in data["actions"]:
        by_type[row["action_type"]] = by_type.get(row["action_type"], 0) + row["count"]
    # Markup: the charts are built from numbers, and app.console.charts escapes every label.
    charts = {"series": Markup(series_svg(data["series"])),
              "actions": Markup(bars_svg(sorted(by_type.items(), key=lambda kv: -kv[1]), "actions by type")),
              "overturns": Markup(bars_svg([(r["key"], r["overturn_rate"]) for r in data["overturns"]["category"]],
                                           "overturn rate by category", percent=True))}
    return render_template("console/reports.html", data=data, charts=charts, start=start, end=end,
                           threshold=threshold, flower_url=public_url(settings.FLOWER_URL).rstrip("/") + PREFIX + "/")


@bp.get("/reports/decisions.csv")
def decisions_csv() -> Response:
    start, end = date_range()
    name = f"decisions-{start:%Y%m%d}-{end:%Y%m%d}.csv"
    return Response(stream_with_context(reports.decision_log_csv(reports.Range(start, end))), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
