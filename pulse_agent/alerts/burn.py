"""SLO burn-rate evaluation (Google SRE workbook, "Alerting on SLOs", multiwindow multi-burn-rate). Pure.

The burn rate of a window is its error rate divided by the error budget (1 - objective): 1 spends
the budget exactly over the SLO window, 14.4 spends 2 % of a 30-day budget in 1 h. A pair fires
when both its long and its short window burn at least its factor: the long window says enough
budget went, the short one that it is still going (so the alert resets soon after a recovery).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pulse_agent.alerts.condition import Active
from pulse_agent.alerts.template import human_duration
from pulse_agent.config.model import BurnWindow, CheckSpec, SloAlerts

Severity = Literal["page", "ticket"]
WindowPair = BurnWindow  # fire `severity` when both windows (seconds) burn at least `factor`


# The workbook's defaults for a 30-day SLO window.
DEFAULT_PAIRS = (
    WindowPair(3600, 300, 14.4, "page"),
    WindowPair(6 * 3600, 1800, 6.0, "page"),
    WindowPair(86400, 2 * 3600, 3.0, "ticket"),
    WindowPair(3 * 86400, 6 * 3600, 1.0, "ticket"),
)


@dataclass(frozen=True, slots=True)
class Counts:
    """Runs and failed runs in one window (maintenance runs excluded)."""

    runs: int
    failures: int


@dataclass(frozen=True, slots=True)
class Burn:
    """A firing pair with the burn rates that made it fire."""

    pair: WindowPair
    long_rate: float
    short_rate: float


def burn_rate(counts: Counts, objective: float) -> float:
    """Error rate over the error budget; 0 for a window without runs (no evidence is no burn)."""
    if counts.runs == 0:
        return 0.0
    budget = 1 - objective / 100
    return (counts.failures / counts.runs) / budget


def evaluate(objective: float, pairs: Sequence[WindowPair], counts: Mapping[float, Counts]) -> list[Burn]:
    """The pairs that fire, given the counts of every window the pairs name (objective in percent)."""
    burns = []
    for pair in pairs:
        long_rate, short_rate = burn_rate(counts[pair.long], objective), burn_rate(counts[pair.short], objective)
        if long_rate >= pair.factor and short_rate >= pair.factor:
            burns.append(Burn(pair, long_rate, short_rate))
    return burns


def windows(pairs: Iterable[WindowPair]) -> list[float]:
    """Every window length the pairs need, shortest first."""
    return sorted({w for p in pairs for w in (p.long, p.short)})


def window_counts(history: Iterable[tuple[float, bool]], now: float, lengths: Iterable[float]) -> dict[float, Counts]:
    """Counts per window (now - length, now] of (ts, ok) runs; what the store's query answers."""
    runs = sorted((ts, ok) for ts, ok in history if ts <= now)
    times = [ts for ts, _ in runs]
    failed = list(itertools.accumulate((0 if ok else 1 for _, ok in runs), initial=0))  # failures before index i
    out = {}
    for length in lengths:
        first = bisect.bisect_right(times, now - length)
        out[length] = Counts(len(runs) - first, failed[-1] - failed[first])
    return out


def budget_left(objective: float, counts: Counts) -> float:
    """Share of the error budget left over the SLO window (negative when overspent); 1 without runs."""
    if counts.runs == 0:
        return 1.0
    allowed = counts.runs * (1 - objective / 100)
    return 1 - counts.failures / allowed if allowed > 0 else (1.0 if counts.failures == 0 else -float("inf"))


def slo_windows(alerts: SloAlerts) -> list[float]:
    """Every window length one check's burn-rate alerts need counts for: its pairs' and its SLO window."""
    return sorted({*windows(alerts.pairs), alerts.window})


def describe(objective: float, alerts: SloAlerts, burns: Sequence[Burn], budget: Counts) -> str:
    """The figures of a message: objective, budget left, and each firing pair's burn rates."""
    left = budget_left(objective, budget)
    lines = [f"SLO {objective:g}% over {human_duration(alerts.window)}: {left * 100:.1f}% of the error budget left"]
    for b in burns:
        p = b.pair
        lines.append(
            f"burn rate {b.long_rate:.1f}x over {human_duration(p.long)} and {b.short_rate:.1f}x over {human_duration(p.short)}"
            f" (fires at {p.factor:g}x)"
        )
    return "\n".join(lines)


def slo_actives(spec: CheckSpec, counts: Mapping[float, Counts]) -> list[Active]:
    """The severities of spec's burn-rate alerts that fire on these counts (those with notifiers only)."""
    alerts, objective = spec.slo_alerts, spec.slo
    if alerts is None or objective is None:
        return []
    out = []
    for severity in ("page", "ticket"):
        if not (alerts.page if severity == "page" else alerts.ticket):
            continue
        burns = evaluate(objective, [p for p in alerts.pairs if p.severity == severity], counts)
        if burns:
            out.append(Active(spec.name, f"slo:{severity}", "", spec.labels, describe(objective, alerts, burns, counts[alerts.window])))
    return out


def budget_line(spec: CheckSpec, counts: Mapping[float, Counts]) -> str | None:
    """How much of spec's error budget is left, for a recovered message."""
    if spec.slo_alerts is None or spec.slo is None:
        return None
    return describe(spec.slo, spec.slo_alerts, [], counts[spec.slo_alerts.window])
