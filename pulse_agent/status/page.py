"""Pure: the status page's data (what GET /api/v1/status answers and the HTML shows) from the
config, live states and stored figures. Only names, states, figures, times and error kinds go in:
never a URL, header, body, label (but the grouping one) or error text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pulse_agent.config.model import CheckSpec, MaintenanceWindow, StatusPageSpec
from pulse_agent.result import iso
from pulse_agent.status.sql import WINDOWS, Figures

State = Literal["up", "degraded", "down", "maintenance", "not_run"]
STATE_TEXT: dict[str, str] = {"up": "Up", "degraded": "Degraded", "down": "Down", "maintenance": "Maintenance", "not_run": "Not run yet"}
OVERALL_TEXT: dict[str, str] = {
    "up": "All systems operational",
    "degraded": "Some systems degraded",
    "down": "Some systems down",
    "maintenance": "Maintenance in progress",
    "not_run": "Waiting for the first checks",
}
DAYS = 90
UPCOMING_S = 30 * 86400.0  # maintenance windows shown this far ahead
OTHER = "Other"


@dataclass(frozen=True, slots=True)
class Live:
    """What the running agent knows of a check now: its newest result and whether it is in maintenance."""

    last_ts: float | None  # None: no run since the agent started
    ok: bool = False
    degraded: bool = False
    response_time_ms: float | None = None
    in_maintenance: bool = False


def state_of(live: Live) -> State:
    """The state shown for a check: maintenance wins, then the newest result."""
    if live.in_maintenance:
        return "maintenance"
    if live.last_ts is None:
        return "not_run"
    if not live.ok:
        return "down"
    return "degraded" if live.degraded else "up"


def overall(states: Iterable[str]) -> State:
    """The page's headline state: the worst of its checks'."""
    seen = set(states)
    for state in ("down", "degraded", "maintenance", "up"):
        if state in seen:
            return state  # type: ignore[return-value]
    return "not_run"


def visible(page: StatusPageSpec, checks: Iterable[CheckSpec]) -> list[CheckSpec]:
    """The checks the page shows, in config order."""
    return [c for c in checks if page.shows(c)]


def with_stored(live: Live, stored: tuple[float, bool, bool] | None) -> Live:
    """A check with no run since start shows its newest stored run (a restart does not blank the page)."""
    if live.last_ts is not None or stored is None:
        return live
    ts, ok, degraded = stored
    return Live(ts, ok, degraded, None, live.in_maintenance)


def _pct(runs: int, ok: int) -> float | None:
    return round(100.0 * ok / runs, 3) if runs else None


def check_entry(page: StatusPageSpec, spec: CheckSpec, live: Live, figures: Figures, today: int) -> dict[str, Any]:
    """One check as the page shows it."""
    windows = figures.windows.get(spec.name, {})
    stored_days = figures.days.get(spec.name, {})
    first = today - DAYS + 1
    counts = [stored_days.get(day, (0, 0)) for day in range(first, today + 1)]
    daily = {"from": iso(first * 86400.0)[:10], "runs": [runs for runs, _ in counts], "uptime_pct": [_pct(*c) for c in counts]}
    return {
        "id": spec.name,
        "name": page.public_name(spec.name),
        "group": dict(spec.labels).get(page.group_by) if page.group_by else None,
        "state": state_of(live),
        "last_checked": iso(live.last_ts) if live.last_ts is not None else None,
        "uptime_pct": {k: _pct(*windows.get(k, (0, 0, None))[:2]) for k in WINDOWS},
        "runs": {k: windows.get(k, (0, 0, None))[0] for k in WINDOWS},
        "response_time_ms": {k: _ms(windows.get(k, (0, 0, None))[2]) for k in WINDOWS},
        "daily": daily,
        "response_times": [{"ts": iso(t), "ms": round(ms, 1)} for t, ms in figures.series.get(spec.name, [])],
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def groups(page: StatusPageSpec, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks in groups by page.group_by (sorted by name, 'Other' last); one unnamed group without it."""
    if not page.group_by:
        return [{"name": None, "state": overall(e["state"] for e in entries), "checks": entries}]
    by: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by.setdefault(entry["group"] or OTHER, []).append(entry)
    names = sorted(n for n in by if n != OTHER) + ([OTHER] if OTHER in by else [])
    return [{"name": n, "state": overall(e["state"] for e in by[n]), "checks": by[n]} for n in names]


def incidents(page: StatusPageSpec, figures: Figures, now: float) -> list[dict[str, Any]]:
    """Open and recently resolved incidents, newest first, with durations (an open one's runs to now)."""
    return [
        {
            "id": ident,
            "check": check,
            "name": page.public_name(check),
            "open": resolved is None,
            "opened_at": iso(opened),
            "resolved_at": iso(resolved) if resolved is not None else None,
            "duration_s": round((now if resolved is None else resolved) - opened, 3),
            "error_kind": kind,
        }
        for ident, check, opened, resolved, kind in figures.incidents
    ]


def maintenance(page: StatusPageSpec, checks: list[CheckSpec], now: float) -> list[dict[str, Any]]:
    """Ongoing and upcoming (30 days) maintenance windows, soonest first, each with the checks it covers."""
    openings: dict[MaintenanceWindow, tuple[float, float] | None] = {}
    covered: dict[tuple[float, float], list[str]] = {}
    for spec in checks:
        for window in spec.maintenance:
            if window not in openings:
                openings[window] = _opening(window, now)
            span = openings[window]
            if span is not None and spec.name not in covered.setdefault(span, []):
                covered[span].append(spec.name)
    return [
        {
            "starts_at": iso(start),
            "ends_at": iso(end),
            "ongoing": start <= now,
            "checks": names,
            "names": [page.public_name(n) for n in names],
        }
        for (start, end), names in sorted(covered.items())
    ]


def _opening(window: MaintenanceWindow, now: float) -> tuple[float, float] | None:
    """The window's current opening, else its next within UPCOMING_S; None when neither."""
    opened = window.start.previous_due(now)
    if opened is not None and opened + window.duration > now:
        return opened, opened + window.duration
    following = window.start.next_due(now)
    if following is None or following - now > UPCOMING_S:
        return None
    return following, following + window.duration


def status_data(page: StatusPageSpec, checks: list[CheckSpec], live: Mapping[str, Live], figures: Figures, now: float) -> dict[str, Any]:
    """The whole page as JSON-ready data: GET /api/v1/status, and what the HTML is made of."""
    today = int(now // 86400)
    entries = [check_entry(page, c, with_stored(live[c.name], figures.last.get(c.name)), figures, today) for c in checks]
    return {
        "title": page.title,
        "description": page.description,
        "logo_url": page.logo_url,
        "generated_at": iso(now),
        "state": overall(e["state"] for e in entries),
        "groups": groups(page, entries),
        "incidents": incidents(page, figures, now),
        "maintenance": maintenance(page, checks, now),
    }
