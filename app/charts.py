"""A session's risk over time as a small SVG chart, for moderators who would rather see than read.

Pure string work from the Session contract (``temporal_features``: the risk of each message in the
live window and the gaps between them): one dot per message, red at or above the screening
threshold, a dashed line at the threshold, the time axis in minutes since the window's first
message. No plotting library: the chart is a few dozen SVG elements.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 34, 30
FLAGGED, CALM, LINE = "#d7263d", "#2e86ab", "#8d99ae"


def session_risk_svg(session: dict[str, Any], threshold: float) -> str:
    features = session.get("temporal_features") or {}
    risks = [float(r) for r in features.get("risk_scores") or []]
    offsets = [0.0]
    for gap in features.get("intervals") or []:
        offsets.append(offsets[-1] + float(gap))
    offsets = offsets[: len(risks)]
    span = max(offsets[-1] if offsets else 0.0, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(seconds: float) -> float:
        return LEFT + plot_w * seconds / span

    def y(risk: float) -> float:
        return TOP + plot_h * (1.0 - min(max(risk, 0.0), 1.0))

    title = (f"{session.get('session_id', '')}: {len(risks)} messages in the window, "
             f"escalation {float(session.get('escalation_score') or 0.0):.2f}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="18" font-size="13">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{LINE}"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>')
    parts.append(f'<line class="threshold" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(threshold):.1f}" '
                 f'y2="{y(threshold):.1f}" stroke="{FLAGGED}" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{LEFT + plot_w - 2}" y="{y(threshold) - 4:.1f}" text-anchor="end" '
                 f'fill="{FLAGGED}">threshold {threshold:.2f}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                 f"minutes since the first message in the window ({span / 60:.1f} min)</text>")
    if len(risks) > 1:
        path = " ".join(f"{x(t):.1f},{y(r):.1f}" for t, r in zip(offsets, risks, strict=True))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}"/>')
    for seconds, risk in zip(offsets, risks, strict=True):
        colour = FLAGGED if risk >= threshold else CALM
        parts.append(f'<circle class="message" cx="{x(seconds):.1f}" cy="{y(risk):.1f}" r="4" fill="{colour}">'
                     f"<title>risk {risk:.2f} at {seconds / 60:.1f} min</title></circle>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
