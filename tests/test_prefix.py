"""Prefix sketches (store/prefix.py): the terms of a window sum exactly its units' sketches, and
reports read from prefixes give the same numbers as reports that merge every rolled-up row, on a
real DuckDB file across month boundaries, with gaps, after rollup retention cut a day and a month."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import duckdb
import pytest

from pulse_agent.store import prefix, queries, retention
from pulse_agent.store.migrations import migrate

HOUR, DAY = 3600, 86400
NOW = datetime(2027, 1, 15, 8, 20, 34, tzinfo=UTC).timestamp()  # mid-hour, mid-day, mid-month


def t(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("lo", "hi", "unit", "expected"),
    [
        ("2027-01-15T03:00", "2027-01-15T07:00", "hour", [("2027-01-15T06:00", +1), ("2027-01-15T02:00", -1)]),
        ("2027-01-15T00:00", "2027-01-15T07:00", "hour", [("2027-01-15T06:00", +1)]),  # from the day's start: one term
        ("2027-01-14T22:00", "2027-01-15T02:00", "hour",
         [("2027-01-14T23:00", +1), ("2027-01-14T21:00", -1), ("2027-01-15T01:00", +1)]),
        ("2026-12-30T00:00", "2027-01-03T00:00", "day", [("2026-12-31T00:00", +1), ("2026-12-29T00:00", -1), ("2027-01-02T00:00", +1)]),
        ("2026-01-01T00:00", "2027-01-01T00:00", "day", [(f"2026-{m:02d}-{d}T00:00", +1) for m, d in
                                                          zip(range(1, 13), (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), strict=True)]),
        ("2027-01-15T03:00", "2027-01-15T03:00", "hour", []),
    ],
)  # fmt: skip
def test_a_window_is_a_few_terms_per_parent_period(lo, hi, unit, expected):
    assert [(term.at, term.sign) for _, term in prefix.terms(t(lo), t(hi), unit)] == [(t(at), sign) for at, sign in expected]


@pytest.mark.parametrize("seed", range(20))
def test_the_signed_terms_sum_exactly_the_units_of_the_window(seed):
    """Against a brute-force sum: random sketches on random units (gaps included), any window."""
    rng = random.Random(seed)
    unit: prefix.Unit = rng.choice(["hour", "day"])
    step = HOUR if unit == "hour" else DAY
    origin = t("2026-11-20T00:00")
    units = sorted(origin + step * i for i in rng.sample(range(24 * 70 if unit == "hour" else 400), 300))
    sketches = {u: Counter({rng.randint(-5, 5): rng.randint(1, 9) for _ in range(rng.randint(0, 4))}) for u in units}
    cums, running, parent = {}, Counter(), None
    for u in units:
        if prefix.parent_of(u, unit) != parent:
            running, parent = Counter(), prefix.parent_of(u, unit)
        running = running + sketches[u]
        cums[u] = running

    def cum_as_of(at: float, parent: float) -> Counter:
        kept = [u for u in units if parent <= u <= at]
        return cums[kept[-1]] if kept else Counter()

    for _ in range(30):
        a, b = sorted(rng.sample(range(len(units)), 2))
        lo, hi = units[a] - step * rng.randint(0, 3), units[b] + step * rng.randint(0, 3)
        got = Counter()
        for _, term in prefix.terms(lo, hi, unit):
            got.update({k: term.sign * n for k, n in cum_as_of(term.at, term.parent).items()})
        want = sum((sketches[u] for u in units if lo <= u < hi), Counter())
        assert +got == want


def seed(con: duckdb.DuckDBPyConnection) -> None:
    """Three checks over 50 days up to NOW, a run every 5 minutes; `gappy` skips 2 of 7 hours and
    every 5th day; `late` starts mid-December; their own latency shapes."""
    con.execute("SELECT setseed(0.7)")
    con.execute(
        f"""INSERT INTO results (ts, check_name, ok, degraded, response_time_ms, error_kind, attempts, maintenance)
        SELECT to_timestamp(ts), c, random() > 0.02, false,
               CASE c WHEN 'steady' THEN 20 + 80 * random() WHEN 'gappy' THEN exp(3 + 2 * random())
                      ELSE CASE WHEN random() < 0.9 THEN 10 + 10 * random() ELSE 800 + 400 * random() END END,
               NULL, 1, false
        FROM (SELECT {NOW - 50 * DAY} + (i // 3) * 300 + i % 3 AS ts, (['steady', 'gappy', 'late'])[1 + i % 3] AS c
              FROM range({50 * 288 * 3}) r(i))
        WHERE NOT (c = 'gappy' AND ((ts // 3600)::BIGINT % 7 IN (2, 5) OR (ts // 86400)::BIGINT % 5 = 0))
          AND NOT (c = 'late' AND ts < {t("2026-12-17T13:30")})"""
    )


def maintain(con: duckdb.DuckDBPyConnection, raw_cutoff: float, rollup_cutoff: float) -> None:
    """What the agent's storage maintenance does, in its order."""
    retention.roll_up(con, NOW)
    while retention.delete_raw_batch(con, raw_cutoff):
        pass
    retention.delete_old_rollups(con, rollup_cutoff)
    while retention.fill_prefixes(con):
        pass


WINDOWS = [
    (NOW - 30 * DAY, NOW),  # the standard 30 days: mid-hour edges, raw and rolled-up parts
    (NOW - 7 * DAY, NOW),
    (NOW - 45 * DAY, NOW),  # reaches past rollup retention
    (t("2026-12-01T00:00"), t("2027-01-01T00:00")),  # a whole month
    (t("2026-12-20T05:30"), t("2027-01-02T17:45")),  # across the year's end
    (t("2026-12-17T13:00"), t("2026-12-17T15:00")),  # two hours of one day
    (t("2026-12-01T10:00"), t("2026-12-20T00:00")),  # from mid-day on a month's 1st: --by day's first bucket
    (t("2027-01-01T06:30"), t("2027-01-10T00:00")),
]


@pytest.mark.timeout(300)  # refills every hour of 50 days one transaction at a time: over a minute on a loaded machine
def test_reports_from_prefixes_equal_reports_merging_every_rolled_up_row(tmp_path):
    db = tmp_path / "p.duckdb"
    with duckdb.connect(str(db)) as con:
        migrate(con)
        seed(con)
        # Raw rows kept 10 days; rollups cut mid-day and mid-month (the kept rows' prefixes are summed again).
        maintain(con, NOW - 10 * DAY, t("2026-12-03T14:10"))
        [(days, nulls)] = con.execute("SELECT count(*), count(*) - count(latency_cum) FROM results_daily WHERE day < '2026-12-31'").fetchall()
        assert days > 0 and nulls == 0
        by_prefix = [(queries.summary(con, lo, hi, None), queries.series(con, lo, hi, None, "day")) for lo, hi in WINDOWS]
        assert queries._window_plan(con, *WINDOWS[0])[1] is not None  # the prefixes were used
        con.execute("UPDATE results_hourly SET latency_cum = NULL")  # the same reports merging every rolled-up row
        con.execute("UPDATE results_daily SET latency_cum = NULL")
        assert queries._window_plan(con, *WINDOWS[0])[1] is None
        by_rows = [(queries.summary(con, lo, hi, None), queries.series(con, lo, hi, None, "day")) for lo, hi in WINDOWS]
        # Filled again from nothing by maintenance, the prefixes give the same answers once more.
        while retention.fill_prefixes(con):
            pass
        again = [(queries.summary(con, lo, hi, None), queries.series(con, lo, hi, None, "day")) for lo, hi in WINDOWS]
    for (lo, hi), mine, theirs, refilled in zip(WINDOWS, by_prefix, by_rows, again, strict=True):
        assert mine == theirs == refilled, (lo, hi)
        assert any(row["p95_ms"] is not None for row in mine[0])


@pytest.mark.timeout(300)  # seeds and refills 50 days of hours like the test above: near a minute on a loaded machine
def test_a_sketch_filled_late_for_an_hour_is_summed_again_into_its_days_prefixes(tmp_path):
    db = tmp_path / "p.duckdb"
    with duckdb.connect(str(db)) as con:
        migrate(con)
        seed(con)
        maintain(con, NOW - 40 * DAY, NOW - 49 * DAY)
        hour = t("2027-01-14T03:00")
        window = (hour - 3 * HOUR + 900, hour + 5 * HOUR + 900)
        after_it = (hour + HOUR, hour + 5 * HOUR)  # its prefix is subtracted here: it must not be skipped while refilled
        before, before_after_it = queries.summary(con, *window, None), queries.summary(con, *after_it, None)
        # An upgraded file: that hour was rolled up without a sketch; backfill gives it one later.
        con.execute("UPDATE results_hourly SET latency_sketch = NULL WHERE hour = to_timestamp(?)", [hour])
        con.execute("UPDATE results_hourly SET latency_cum = NULL WHERE hour >= to_timestamp(?)", [hour])
        while retention.fill_prefixes(con):
            pass
        assert retention.backfill_sketches(con) > 0
        assert queries.summary(con, *after_it, None) == before_after_it  # read from every row meanwhile
        while retention.fill_prefixes(con):
            pass
        assert queries.summary(con, *window, None) == before
        assert queries.summary(con, *after_it, None) == before_after_it
