"""Pure: the status page's HTML from its data (page.status_data), readable without JavaScript:
server-drawn SVG for the daily bars and the response-time line; status.js only adds live updates."""

from __future__ import annotations

from functools import cache
from html import escape
from importlib import resources
from typing import Any

from pulse_agent.alerts.template import human_duration
from pulse_agent.result import from_iso, iso
from pulse_agent.status.page import OVERALL_TEXT, STATE_TEXT
from pulse_agent.status.sql import WINDOWS

BAR_LEVELS = ((99.9, "ok"), (99.0, "minor"), (95.0, "major"), (-1.0, "bad"))  # daily uptime >= level -> class
CHART_W, CHART_H = 240, 40


@cache
def static_text(name: str) -> str:
    """A file shipped in pulse_agent/status/static."""
    return resources.files("pulse_agent.status").joinpath("static", name).read_text(encoding="utf-8")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def pct_text(value: float | None) -> str:
    """99.95 -> '99.95%', 100 -> '100%', None -> 'no data'."""
    if value is None:
        return "no data"
    text = f"{value:.3f}".rstrip("0").rstrip(".") if value < 100 else "100"
    return f"{text}%"


def ms_text(value: float | None) -> str:
    """A response time for people: '42 ms', '1.25 s'."""
    if value is None:
        return "no data"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def when(iso_text: str) -> str:
    """'2026-12-01T22:10:05.123Z' -> <time> showing '2026-12-01 22:10 UTC'."""
    return f'<time datetime="{_e(iso_text)}">{_e(iso_text[:16].replace("T", " "))} UTC</time>'


def bar_class(pct: float | None) -> str:
    """CSS class of one day of the 90-day bar."""
    if pct is None:
        return "none"
    return next(name for level, name in BAR_LEVELS if pct >= level)


def daily_bars(daily: dict[str, Any]) -> str:
    """One SVG of the days, one path per class (90 x 1,000 rects would make a huge page); its label says it in words."""
    pcts: list[float | None] = daily["uptime_pct"]
    paths: dict[str, list[str]] = {}
    for i, pct in enumerate(pcts):
        paths.setdefault(bar_class(pct), []).append(f"M{i} 0h0.7v10h-0.7z")
    first = from_iso(daily["from"] + "T00:00:00Z")
    measured = [(i, p) for i, p in enumerate(pcts) if p is not None]
    below = sorted((p, i) for i, p in measured if p < 99.9)
    label = f"Daily uptime, last {len(pcts)} days: {len(measured)} days measured"
    if measured:
        label += f", {len(measured) - len(below)} at 99.9% or better"
        label += "".join(f"; {iso(first + i * 86400.0)[:10]}: {pct_text(p)}" for p, i in below[:3])
    body = "".join(f'<path class="b-{name}" d="{"".join(p)}"/>' for name, p in paths.items())
    return (f'<svg class="bars" viewBox="0 0 {len(pcts)} 10" preserveAspectRatio="none" role="img" aria-label="{_e(label)}">'
            f"<title>{_e(label)}</title>{body}</svg>")  # fmt: skip


def sparkline(points: list[dict[str, Any]], start: float, end: float) -> str:
    """The last 24 h of response time as an SVG line (x: time, y: ms from 0 to the highest point)."""
    if not points:
        return '<p class="rt-none">No response times in the last 24 h.</p>'
    values = [p["ms"] for p in points]
    top = max(values) or 1.0
    span = (end - start) or 1.0
    coords = []
    for p in points:
        x = max(0.0, min(1.0, (from_iso(p["ts"]) - start) / span)) * CHART_W
        y = CHART_H - 2 - (p["ms"] / top) * (CHART_H - 4)
        coords.append(f"{x:.1f},{y:.1f}")
    ordered = sorted(values)
    summary = f"median {ms_text(ordered[len(ordered) // 2])}, highest {ms_text(top)}, latest {ms_text(values[-1])}"
    if len(coords) == 1:  # one point: a short dash (a dot would be stretched with the chart)
        x_text, y_text = coords[0].split(",")
        coords = [f"{max(0.0, float(x_text) - 4):.1f},{y_text}", coords[0]]
    label = f"Response time, last 24 h: {summary}"
    return (f'<div class="rt-head" aria-hidden="true"><span>Response time, 24 h</span><span>{_e(summary)}</span></div>'
            f'<svg class="rt" viewBox="0 0 {CHART_W} {CHART_H}" preserveAspectRatio="none" role="img" aria-label="{_e(label)}">'
            f'<title>{_e(label)}</title><polyline points="{" ".join(coords)}"/></svg>')  # fmt: skip


def state_badge(state: str) -> str:
    """The coloured word for a state (colour is never the only sign: the word is there)."""
    return f'<span class="state s-{_e(state)}" data-state="{_e(state)}">{_e(STATE_TEXT[state])}</span>'


def check_item(check: dict[str, Any], start: float, end: float) -> str:
    """One check: name, state, uptimes, daily bars, response-time line."""
    uptimes = "".join(
        f"<div><dt>{_e(k.replace('h', ' h').replace('d', ' days'))}</dt><dd>{_e(pct_text(check['uptime_pct'][k]))}</dd></div>"
        for k in WINDOWS
    )
    last = f"Last checked {when(check['last_checked'])}" if check["last_checked"] else "Not checked yet"
    rt = check["response_time_ms"]["24h"]
    return f"""<li class="check" id="check-{_e(check["id"])}" data-check="{_e(check["id"])}">
<div class="head"><h3>{_e(check["name"])}</h3>{state_badge(check["state"])}</div>
<p class="last"><span data-last>{last}</span> · <span>typical response {_e(ms_text(rt))}</span></p>
<dl class="uptime" aria-label="Uptime">{uptimes}</dl>
{daily_bars(check["daily"])}
<div class="bar-legend" aria-hidden="true"><span>{_e(check["daily"]["from"])}</span><span>today</span></div>
{sparkline(check["response_times"], start, end)}
</li>"""


def incident_list(items: list[dict[str, Any]]) -> str:
    """Open and recent incidents, or a sentence saying there are none."""
    if not items:
        return "<p>No incidents in the last 7 days.</p>"
    rows = []
    for i in items:
        kind = f" ({_e(i['error_kind'])})" if i["error_kind"] else ""
        if i["open"]:
            what = f"<strong>Ongoing</strong>: down since {when(i['opened_at'])}, for {_e(human_duration(i['duration_s']))}{kind}"
        else:
            what = f"Resolved: down from {when(i['opened_at'])} to {when(i['resolved_at'])}, {_e(human_duration(i['duration_s']))}{kind}"
        rows.append(
            f'<li class="incident{" open" if i["open"] else ""}" data-check="{_e(i["check"])}">'
            f'<span class="who">{_e(i["name"])}</span> {what}</li>'
        )
    return f'<ul class="incidents">{"".join(rows)}</ul>'


def maintenance_list(items: list[dict[str, Any]]) -> str:
    """Ongoing and upcoming maintenance windows, or a sentence saying there are none."""
    if not items:
        return "<p>No maintenance planned in the next 30 days.</p>"
    rows = [
        f"<li>{'<strong>Now</strong>: ' if m['ongoing'] else ''}{when(m['starts_at'])} to {when(m['ends_at'])}: "
        f"{_e(', '.join(m['names']))}</li>"
        for m in items
    ]
    return f'<ul class="maintenance">{"".join(rows)}</ul>'


def render(data: dict[str, Any], now: float, events_url: str | None) -> str:
    """The whole page; events_url (the public live feed) turns on live updates when JavaScript runs."""
    start = now - WINDOWS["24h"]
    groups = []
    for n, group in enumerate(data["groups"]):
        items = "".join(check_item(c, start, now) for c in group["checks"])
        if group["name"] is None:
            groups.append(f'<section aria-labelledby="g{n}"><h2 id="g{n}">Checks</h2><ul class="checks">{items}</ul></section>')
        else:
            groups.append(f'<section aria-labelledby="g{n}"><h2 id="g{n}">{_e(group["name"])} {state_badge(group["state"])}</h2>'
                          f'<ul class="checks">{items}</ul></section>')  # fmt: skip
    if not data["groups"] or not any(g["checks"] for g in data["groups"]):
        groups = ['<section aria-labelledby="g0"><h2 id="g0">Checks</h2><p>No checks are shown on this page.</p></section>']
    logo = f'<img class="logo" src="{_e(data["logo_url"])}" alt="" width="40" height="40">' if data["logo_url"] else ""
    description = f'<p class="description">{_e(data["description"])}</p>' if data["description"] else ""
    live = f' data-events="{_e(events_url)}"' if events_url else ""
    state = data["state"]
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{_e(data["title"])}</title>
<style>{static_text("status.css")}</style>
</head>
<body{live}>
<a class="skip" href="#main">Skip to the checks</a>
<header>
<div class="title">{logo}<h1>{_e(data["title"])}</h1></div>
{description}
<p class="overall o-{_e(state)}" id="overall" data-state="{_e(state)}">{_e(OVERALL_TEXT[state])}</p>
</header>
<main id="main">
{"".join(groups)}
<section aria-labelledby="incidents-h" id="incidents"><h2 id="incidents-h">Incidents</h2>{incident_list(data["incidents"])}</section>
<section aria-labelledby="maintenance-h" id="maintenance">
<h2 id="maintenance-h">Maintenance</h2>{maintenance_list(data["maintenance"])}</section>
</main>
<footer>
<p>Updated {when(data["generated_at"])}. <span id="live" role="status" aria-live="polite"></span></p>
<p>Uptime counts runs outside maintenance windows; daily bars are UTC days.</p>
</footer>
<script src="/status/status.js" defer></script>
</body>
</html>
"""
