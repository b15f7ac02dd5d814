"""Retention: raw results kept `agent.retention`, hourly rollups kept `agent.rollup`, so old raw
rows can go while a yearly uptime report still works. Each function is one short transaction on
the writer's connection; the agent calls them in turn, so writes never wait long."""

from __future__ import annotations

import duckdb

from pulse_agent.result import utc

BATCH = 10_000  # raw rows deleted per transaction
SETTLE_S = 300.0  # an hour is rolled up once runs that started in it have surely been stored


def roll_up(con: duckdb.DuckDBPyConnection, now: float) -> int:
    """Aggregate every complete hour not rolled up yet (maintenance runs excluded, as in reports);
    how many (hour, check) rows were added."""
    [(done_until, before)] = con.execute("SELECT max(hour) + INTERVAL 1 HOUR, count(*) FROM results_hourly").fetchall()
    con.execute(
        """
        INSERT OR REPLACE INTO results_hourly
        WITH r AS (
            SELECT * FROM results
            WHERE ts >= coalesce(?::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ) AND ts < date_trunc('hour', ?::TIMESTAMPTZ) AND NOT maintenance
        ),
        kinds AS (
            SELECT hour, check_name, map_from_entries(list(struct_pack(k := error_kind, v := n))) AS failures_by_kind
            FROM (SELECT date_trunc('hour', ts) AS hour, check_name, coalesce(error_kind, 'internal') AS error_kind, count(*)::INTEGER AS n
                  FROM r WHERE NOT ok GROUP BY ALL)
            GROUP BY ALL
        )
        SELECT s.hour, s.check_name, s.runs, s.ok_runs, s.degraded_runs, coalesce(k.failures_by_kind, MAP {}),
               s.q[1], s.q[2], s.q[3], s.max_ms
        FROM (SELECT date_trunc('hour', ts) AS hour, check_name, count(*) AS runs, count(*) FILTER (WHERE ok) AS ok_runs,
                     count(*) FILTER (WHERE degraded) AS degraded_runs, quantile_cont(response_time_ms, [0.5, 0.95, 0.99]) AS q,
                     max(response_time_ms) AS max_ms
              FROM r GROUP BY ALL) s
        LEFT JOIN kinds k USING (hour, check_name)
        """,
        [done_until, utc(now - SETTLE_S)],
    )
    [(after,)] = con.execute("SELECT count(*) FROM results_hourly").fetchall()
    return int(after - before)


def delete_raw_batch(con: duckdb.DuckDBPyConnection, cutoff: float) -> int:
    """Delete up to BATCH raw results older than cutoff whose hour is rolled up; how many went."""
    [(rolled_until,)] = con.execute("SELECT max(hour) + INTERVAL 1 HOUR FROM results_hourly").fetchall()
    if rolled_until is None:
        return 0  # nothing is rolled up yet: keep everything
    [(n,)] = con.execute(
        "DELETE FROM results WHERE rowid IN (SELECT rowid FROM results WHERE ts < least(?::TIMESTAMPTZ, ?::TIMESTAMPTZ) LIMIT ?)",
        [utc(cutoff), rolled_until, BATCH],
    ).fetchall()
    return int(n)


def delete_old_rollups(con: duckdb.DuckDBPyConnection, cutoff: float) -> int:
    """Delete hourly rows older than cutoff; how many went."""
    [(n,)] = con.execute("DELETE FROM results_hourly WHERE hour < ?", [utc(cutoff)]).fetchall()
    return int(n)
