"""SLO burn-rate evaluation over synthetic histories: which window pairs must and must not fire. Pure."""

from __future__ import annotations

import pytest

from pulse_agent.alerts.burn import DEFAULT_PAIRS, Counts, WindowPair, budget_left, burn_rate, evaluate, window_counts, windows

NOW = 10 * 86400.0
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0


def history(every: float, span: float, failing: list[tuple[float, float, float]]) -> list[tuple[float, bool]]:
    """A run every `every` s over the last `span` s; in each (start_ago, end_ago, share) the share of runs fails."""
    runs = []
    n = int(span // every)
    for i in range(n):
        ts = NOW - span + (i + 1) * every
        ago = NOW - ts
        share = next((s for start, end, s in failing if end <= ago < start), 0.0)
        # spread failures evenly: run i fails when the running share crosses an integer
        runs.append((ts, int((i + 1) * share) == int(i * share)))
    return runs


def fired(objective: float, runs) -> set[tuple[float, float]]:
    counts = window_counts(runs, NOW, windows(DEFAULT_PAIRS))
    return {(b.pair.long, b.pair.short) for b in evaluate(objective, DEFAULT_PAIRS, counts)}


PAGE_1H, PAGE_6H, TICKET_1D, TICKET_3D = ((p.long, p.short) for p in DEFAULT_PAIRS)


ALL = {PAGE_1H, PAGE_6H, TICKET_1D, TICKET_3D}


# Objective 99.9 %: the budget is 0.1 % of runs; an error rate r burns at r / 0.1 %.
@pytest.mark.parametrize(
    ("case", "failing", "expected"),
    [
        ("all good", [], set()),
        ("2% for the last hour: 1h/5m at 20x; 6h only 3.3x", [(HOUR, 0, 0.02)], {PAGE_1H}),
        ("1% for the last hour: 10x is under 14.4x", [(HOUR, 0, 0.01)], set()),
        ("2% for an hour that ended 10 minutes ago: the 5m window is clean", [(HOUR + 10 * MIN, 10 * MIN, 0.02)], set()),
        ("1% for 6h: 6h/30m at 10x; 1d only 2.5x", [(6 * HOUR, 0, 0.01)], {PAGE_6H}),
        ("0.5% for a day: 5x, under both pages; 1d/2h and 3d/6h (1.7x) ticket", [(DAY, 0, 0.005)], {TICKET_1D, TICKET_3D}),
        ("0.2% for 3 days: 2x, 3d/6h only", [(3 * DAY, 0, 0.002)], {TICKET_3D}),
        ("0.2% for 3 days that stopped 7h ago: the 6h window is clean", [(3 * DAY, 7 * HOUR, 0.002)], set()),
        ("0.05% for 3 days: within budget", [(3 * DAY, 0, 0.0005)], set()),
        ("a total outage for the last 10 minutes spends 23% of a 30-day budget: every pair", [(10 * MIN, 0, 1.0)], ALL),
        ("1.5% for 6h: 15x, every pair", [(6 * HOUR, 0, 0.015)], ALL),
    ],
)
def test_window_pairs_that_must_and_must_not_fire(case, failing, expected):
    runs = history(3.0, 3 * DAY + HOUR, failing)  # a run every 3 s: the 5m window holds 100
    assert fired(99.9, runs) == expected, case


def test_burn_rate_budget_and_empty_windows():
    assert burn_rate(Counts(1000, 1), 99.9) == pytest.approx(1.0)
    assert burn_rate(Counts(0, 0), 99.9) == 0.0  # no runs, no burn
    assert budget_left(99.9, Counts(10_000, 5)) == pytest.approx(0.5)
    assert budget_left(99.9, Counts(10_000, 20)) == pytest.approx(-1.0)
    assert budget_left(99.9, Counts(0, 0)) == 1.0


def test_custom_pairs():
    pair = WindowPair(600, 60, 2.0, "ticket")
    counts = {600: Counts(60, 6), 60: Counts(6, 1)}  # 10% and 16.7% errors against a 99% objective: 10x and 16.7x
    assert [(b.long_rate, round(b.short_rate, 1)) for b in evaluate(99.0, [pair], counts)] == [(pytest.approx(10.0), 16.7)]
    assert evaluate(99.0, [WindowPair(600, 60, 12.0, "page")], counts) == []


def test_the_default_pairs_are_the_workbooks_budget_shares_scaled_to_the_slo_window():
    from pulse_agent.config.slo_rules import default_pairs

    assert [(p.long, p.short, p.factor, p.severity) for p in default_pairs(30 * 86400)] == [
        (3600, 300, 14.4, "page"), (21600, 1800, 6.0, "page"), (86400, 7200, 3.0, "ticket"), (259200, 21600, 1.0, "ticket"),
    ]  # fmt: skip
    # 7 days: the same shares of a smaller budget (2 % in 1 h is 3.36x); a 1-day SLO keeps only the pairs that fit in it
    assert [p.factor for p in default_pairs(7 * 86400)] == [3.36, 1.4, 0.7, 0.233333]
    assert [p.long for p in default_pairs(86400)] == [3600, 21600, 86400]
