"""slo.burn_rate_alerts and rules: from checked YAML to SloAlerts and RuleSpecs, each problem placed. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pulse_agent.config.model import BurnWindow, RuleSpec, SloAlerts
from pulse_agent.durations import parse_duration

Fail = Callable[[tuple[str | int, ...], str], object]  # (key path, message)
SqlProblem = Callable[[str], str | None]  # a rule's SQL -> why it cannot run (validate: parsed and bound by DuckDB)

DEFAULT_SLO_WINDOW = 30 * 86400.0
# The workbook's pairs as shares of the budget spent within the long window; their burn rates
# (share * SLO window / long window) are 14.4, 6, 3 and 1 for a 30-day window.
DEFAULT_SHARES = (
    (3600.0, 300.0, 0.02, "page"),
    (6 * 3600.0, 1800.0, 0.05, "page"),
    (86400.0, 2 * 3600.0, 0.10, "ticket"),
    (3 * 86400.0, 6 * 3600.0, 0.10, "ticket"),
)


def default_pairs(window: float) -> tuple[BurnWindow, ...]:
    """The workbook's pairs for an SLO window of window seconds; long windows past it are left out."""
    return tuple(
        BurnWindow(long, short, round(share * window / long, 6), severity)  # type: ignore[arg-type]
        for long, short, share, severity in DEFAULT_SHARES
        if long <= window
    )


def slo_alerts(raw: Any, notifiers: set[str], fail: Fail) -> SloAlerts | None:
    """The check's `slo` block as burn-rate alerts; None without burn_rate_alerts."""
    if not isinstance(raw, dict) or not isinstance(raw.get("burn_rate_alerts"), dict):
        return None
    alerts = raw["burn_rate_alerts"]
    window = _seconds(raw.get("window"), DEFAULT_SLO_WINDOW, ("slo", "window"), fail)
    if window <= 0:
        fail(("slo", "window"), "must be more than 0")
        window = DEFAULT_SLO_WINDOW
    pairs = default_pairs(window)
    if isinstance(alerts.get("windows"), list):
        pairs = tuple(_pair(i, p, window, fail) for i, p in enumerate(alerts["windows"]) if isinstance(p, dict))
    for severity in ("page", "ticket"):
        _known(alerts.get(severity) or [], notifiers, ("slo", "burn_rate_alerts", severity), fail)
    if not alerts.get("page") and not alerts.get("ticket"):
        fail(("slo", "burn_rate_alerts"), "names no notifier: give page, ticket or both")
    return SloAlerts(window, pairs, tuple(alerts.get("page") or ()), tuple(alerts.get("ticket") or ()))


def _pair(i: int, raw: dict[str, Any], window: float, fail: Fail) -> BurnWindow:
    at = ("slo", "burn_rate_alerts", "windows", i)
    long = _seconds(raw.get("long"), 3600.0, (*at, "long"), fail)
    short = _seconds(raw.get("short"), 300.0, (*at, "short"), fail)
    if not 0 < short < long:
        fail((*at, "short"), f"must be shorter than long ({raw.get('long')}) and more than 0")
    if long > window:
        fail((*at, "long"), f"is longer than the SLO window ({raw.get('long')} > slo.window)")
    rate = raw.get("burn_rate", 1.0)
    if not isinstance(rate, (int, float)):  # a ${VAR}: unset, a placeholder (validate without secrets); set, not a number
        fail((*at, "burn_rate"), f"{rate!r} is not a number")
        rate = 1.0
    return BurnWindow(long, short, float(rate), raw.get("severity", "page"))


def rules(raw: Any, notifiers: set[str], fail: Fail, sql_problem: SqlProblem) -> tuple[RuleSpec, ...]:
    """The top-level `rules` list; duplicate names, unknown notifiers and SQL that cannot run are placed."""
    out: list[RuleSpec] = []
    seen: set[str] = set()
    for i, r in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) or not isinstance(r.get("sql"), str):
            continue
        at: tuple[str | int, ...] = ("rules", i)
        if r["name"] in seen:
            fail((*at, "name"), f"duplicate rule name {r['name']!r}")
        seen.add(r["name"])
        _known(r.get("notify") or [], notifiers, (*at, "notify"), fail)
        every = _seconds(r.get("every"), 60.0, (*at, "every"), fail)
        if every < 1:  # each evaluation is a query on the store's query threads: not a busy loop
            fail((*at, "every"), "must be at least 1s")
        window = _seconds(r.get("window"), 3600.0, (*at, "window"), fail)
        if window <= 0:
            fail((*at, "window"), "must be more than 0")
        if (problem := sql_problem(r["sql"])) is not None:
            fail((*at, "sql"), problem)
        out.append(
            RuleSpec(
                name=r["name"], sql=r["sql"], notify=tuple(r.get("notify") or ()), every=every or 60.0, window=window or 3600.0,
                hold=_seconds(r.get("for"), 0.0, (*at, "for"), fail), description=str(r.get("description") or ""),
            )
        )  # fmt: skip
    return tuple(out)


def _known(names: Iterable[Any], notifiers: set[str], at: tuple[str | int, ...], fail: Fail) -> None:
    for j, name in enumerate(names):
        if name not in notifiers:
            have = ", ".join(sorted(notifiers)) or "none are defined"
            fail((*at, j), f"unknown notifier {str(name)[:60]!r} (notifiers: {have})")


def _seconds(value: Any, default: float, at: tuple[str | int, ...], fail: Fail) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except (ValueError, TypeError, OverflowError) as exc:
        fail(at, str(exc))
        return default
