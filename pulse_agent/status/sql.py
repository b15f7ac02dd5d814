"""The status page's queries: every visible check's figures in one read, from hourly rollups for
rolled-up hours and raw results after them, so 90 days cost the same as one whatever raw retention is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from pulse_agent.store.db import utc

WINDOWS: dict[str, float] = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "90d": 90 * 86400.0}
DAY_US = 86_400_000_000
BUCKET_S = 300  # raw results are charted in 5-minute medians; rolled-up hours by their hourly median
RECENT_S = 7 * 86400.0  # resolved incidents shown for this long

# Rolled-up hours are whole: an hour counts in a window when it overlaps it (its edge rounds to the hour).
_SOURCE = """
    src AS (
        SELECT check_name, hour AS t, runs, ok_runs, p50_ms * runs AS ms_sum, CASE WHEN p50_ms IS NULL THEN 0 ELSE runs END AS ms_n
        FROM results_hourly
        WHERE hour > $start - INTERVAL 1 HOUR AND hour < $cut AND check_name IN (SELECT unnest($checks))
        UNION ALL
        SELECT check_name, ts, 1, ok::INTEGER, response_time_ms, CASE WHEN response_time_ms IS NULL THEN 0 ELSE 1 END
        FROM results
        WHERE ts >= greatest($cut, $start) AND NOT maintenance AND check_name IN (SELECT unnest($checks))
    )"""


def _window_columns() -> str:
    columns = []
    for key in WINDOWS:
        inside = f"t >= $w{key} - INTERVAL 1 HOUR AND (t >= $w{key} OR t < $cut)"  # rollups overlap, raw exact
        columns.append(
            f"sum(runs) FILTER (WHERE {inside}) AS runs_{key}, sum(ok_runs) FILTER (WHERE {inside}) AS ok_{key}, "
            f"sum(ms_sum) FILTER (WHERE {inside}) AS ms_sum_{key}, sum(ms_n) FILTER (WHERE {inside}) AS ms_n_{key}"
        )
    return ",\n           ".join(columns)


CUT_SQL = "SELECT coalesce(max(hour) + INTERVAL 1 HOUR, '-infinity'::TIMESTAMPTZ) FROM results_hourly"
FIGURES_SQL = f"""
    WITH {_SOURCE}
    SELECT check_name, epoch_us(t) // {DAY_US} AS day, sum(runs) AS runs, sum(ok_runs) AS ok_runs,
           {_window_columns()}
    FROM src GROUP BY GROUPING SETS ((check_name, day), (check_name))"""

SERIES_SQL = f"""
    SELECT check_name, epoch(hour) AS t, p50_ms AS ms FROM results_hourly
    WHERE hour > $start - INTERVAL 1 HOUR AND hour < $cut AND p50_ms IS NOT NULL AND check_name IN (SELECT unnest($checks))
    UNION ALL
    SELECT check_name, (epoch_us(ts) // {BUCKET_S * 1_000_000}) * {BUCKET_S} AS t, median(response_time_ms) FROM results
    WHERE ts >= greatest($cut, $start) AND NOT maintenance AND response_time_ms IS NOT NULL
      AND check_name IN (SELECT unnest($checks))
    GROUP BY ALL
    ORDER BY check_name, t"""

LAST_SQL = """
    SELECT check_name, epoch(max(ts)), arg_max(ok, ts), arg_max(degraded, ts) FROM results
    WHERE ts >= $start AND check_name IN (SELECT unnest($checks)) GROUP BY ALL"""

INCIDENTS_SQL = """
    SELECT id, check_name, epoch(opened_at), epoch(resolved_at), first_error_kind FROM incidents
    WHERE check_name IN (SELECT unnest($checks)) AND (resolved_at IS NULL OR resolved_at >= $recent) AND source IS NULL
    ORDER BY opened_at DESC LIMIT 100"""


@dataclass(frozen=True, slots=True)
class Figures:
    """Stored history of the visible checks, as plain rows (page.py makes the page of them)."""

    windows: dict[str, dict[str, tuple[int, int, float | None]]]  # check -> window -> (runs, ok runs, mean response ms)
    days: dict[str, dict[int, tuple[int, int]]]  # check -> UTC day number -> (runs, ok runs)
    series: dict[str, list[tuple[float, float]]]  # check -> [(epoch s, median ms)] over the last 24 h
    last: dict[str, tuple[float, bool, bool]]  # check -> (ts, ok, degraded) of its newest stored run in 24 h
    incidents: list[tuple[str, str, float, float | None, str | None]]  # id, check, opened, resolved, first error kind


def figures(con: duckdb.DuckDBPyConnection, checks: list[str], now: float, *, need_last: list[str] | None = None) -> Figures:
    """Everything the page shows from the database for checks, as of now (four queries, none per check)."""
    [(cut,)] = con.execute(CUT_SQL).fetchall()  # raw results count from here on, rollups before
    params: dict[str, Any] = {"checks": checks, "start": utc(now - WINDOWS["90d"]), "cut": cut}
    params.update({f"w{key}": utc(now - seconds) for key, seconds in WINDOWS.items()})
    windows: dict[str, dict[str, tuple[int, int, float | None]]] = {}
    days: dict[str, dict[int, tuple[int, int]]] = {}
    for row in con.execute(FIGURES_SQL, params).fetchall():
        name, day = row[0], row[1]
        if day is not None:
            days.setdefault(name, {})[int(day)] = (int(row[2]), int(row[3]))
            continue
        per: dict[str, tuple[int, int, float | None]] = {}
        for i, key in enumerate(WINDOWS):
            runs, ok, ms_sum, ms_n = row[4 + 4 * i : 8 + 4 * i]
            per[key] = (int(runs or 0), int(ok or 0), float(ms_sum) / int(ms_n) if ms_n else None)
        windows[name] = per
    series: dict[str, list[tuple[float, float]]] = {}
    day_ago = {"checks": checks, "start": utc(now - WINDOWS["24h"]), "cut": cut}
    for name, t, ms in con.execute(SERIES_SQL, day_ago).fetchall():
        series.setdefault(name, []).append((float(t), float(ms)))
    last = {}
    if need_last:
        rows = con.execute(LAST_SQL, {"checks": need_last, "start": utc(now - WINDOWS["24h"])}).fetchall()
        last = {name: (float(ts), bool(ok), bool(degraded)) for name, ts, ok, degraded in rows}
    incidents = [
        (str(i), str(c), float(o), None if r is None else float(r), k)
        for i, c, o, r, k in con.execute(INCIDENTS_SQL, {"checks": checks, "recent": utc(now - RECENT_S)}).fetchall()
    ]
    return Figures(windows, days, series, last, incidents)
