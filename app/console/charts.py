"""Small SVG charts for the reports page: a time series of events and flags, and labelled bars."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 200, 48, 28, 24
EVENTS, FLAGGED = "#2e86ab", "#d7263d"


def series_svg(series: Sequence[dict[str, Any]]) -> str:
    parts = [_open("events and flagged messages over time")]
    if not series:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT / 2}">no events in this range</text></svg>')
        return "".join(parts)
    top = max(max(p["events"] for p in series), 1)
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(series), 1)
    for i, point in enumerate(series):
        for value, colour, offset in ((point["events"], EVENTS, 0.0), (point["flagged"], FLAGGED, 0.5)):
            h = plot_h * value / top
            parts.append(f'<rect x="{LEFT + i * step + offset * step * 0.8:.1f}" y="{TOP + plot_h - h:.1f}" '
                         f'width="{max(step * 0.4, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                         f'<title>{escape(point["at"])}: {value}</title></rect>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top}</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}">{escape(series[0]["at"][:16])}</text>')
    parts.append(f'<text x="{WIDTH - 10}" y="{HEIGHT - 8}" text-anchor="end">{escape(series[-1]["at"][:16])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(items: Sequence[tuple[str, float]], title: str, *, percent: bool = False) -> str:
    height = TOP + 22 * max(len(items), 1) + 8
    parts = [_open(title, height)]
    top = max((v for _, v in items), default=0) or 1
    for i, (label, value) in enumerate(items):
        y = TOP + i * 22
        w = (WIDTH - 260) * value / top
        shown = f"{value:.1%}" if percent else f"{value:g}"
        parts.append(f'<text x="150" y="{y + 14}" text-anchor="end">{escape(str(label))}</text>'
                     f'<rect x="158" y="{y + 3}" width="{w:.1f}" height="14" fill="{EVENTS}"/>'
                     f'<text x="{164 + w:.1f}" y="{y + 14}">{shown}</text>')
    if not items:
        parts.append(f'<text x="{LEFT}" y="{TOP + 14}">nothing in this range</text>')
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, height: int = HEIGHT) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} '
            f'{height}" font-family="sans-serif" font-size="11" role="img"><title>{escape(title)}</title>'
            f'<text x="{LEFT}" y="14" font-size="12">{escape(title)}</text>')
