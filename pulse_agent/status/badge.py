"""Pure: badges (SVG in shields.io's flat style, or shields.io endpoint JSON) from a check's page entry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from html import escape
from typing import Any, Literal

from pulse_agent.status.html import ms_text, pct_text
from pulse_agent.status.page import STATE_TEXT

Kind = Literal["status", "uptime", "response-time"]
COLORS = {"brightgreen": "#4c1", "green": "#97ca00", "yellowgreen": "#a4a61d", "yellow": "#dfb317", "orange": "#fe7d37",
          "red": "#e05d44", "blue": "#007ec6", "lightgrey": "#9f9f9f"}  # fmt: skip
STATE_COLORS = {"up": "brightgreen", "degraded": "yellow", "down": "red", "maintenance": "blue", "not_run": "lightgrey"}
UPTIME_COLORS = ((99.9, "brightgreen"), (99.0, "green"), (97.0, "yellowgreen"), (95.0, "yellow"), (90.0, "orange"), (-1.0, "red"))
MS_COLORS = ((300.0, "brightgreen"), (1000.0, "green"), (2000.0, "yellow"), (5000.0, "orange"), (float("inf"), "red"))


@dataclass(frozen=True, slots=True)
class Badge:
    """What a badge says: label, message and a shields.io colour name."""

    label: str
    message: str
    color: str

    def json(self) -> str:
        """shields.io's endpoint format (https://shields.io/badges/endpoint-badge)."""
        return json.dumps({"schemaVersion": 1, "label": self.label, "message": self.message, "color": self.color})

    def svg(self) -> str:
        """A flat badge; widths estimated from the text (Verdana 11px averages about 7 px a character)."""
        left, right = _width(self.label), _width(self.message)
        total, fill = left + right, COLORS[self.color]
        label, message, title = escape(self.label), escape(self.message), escape(f"{self.label}: {self.message}")
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{title}">'
            f"<title>{title}</title>"
            '<linearGradient id="s" x2="0" y2="100%">'
            '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
            f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
            f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
            f'<rect x="{left}" width="{right}" height="20" fill="{fill}"/>'
            f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
            f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
            f'<text x="{left / 2}" y="15" fill="#010101" fill-opacity=".3">{label}</text><text x="{left / 2}" y="14">{label}</text>'
            f'<text x="{left + right / 2}" y="15" fill="#010101" fill-opacity=".3">{message}</text>'
            f'<text x="{left + right / 2}" y="14">{message}</text></g></svg>'
        )


def _width(text: str) -> int:
    return 10 + 7 * len(text)


def _level(value: float, levels: tuple[tuple[float, str], ...], *, at_least: bool) -> str:
    return next(color for bound, color in levels if (value >= bound if at_least else value < bound))


def badge(entry: dict[str, Any], kind: Kind, window: str | None) -> Badge:
    """The badge of kind for a check's page entry (page.check_entry); window is one of sql.WINDOWS."""
    if kind == "status":
        return Badge(entry["name"], STATE_TEXT[entry["state"]].lower(), STATE_COLORS[entry["state"]])
    assert window is not None
    if kind == "uptime":
        pct = entry["uptime_pct"][window]
        color = "lightgrey" if pct is None else _level(pct, UPTIME_COLORS, at_least=True)
        return Badge(f"uptime {window}", pct_text(pct), color)
    ms = entry["response_time_ms"][window]
    color = "lightgrey" if ms is None else _level(ms, MS_COLORS, at_least=False)
    return Badge(f"response time {window}", ms_text(ms), color)


def etag(body: str) -> str:
    """A strong validator of a badge's bytes."""
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
