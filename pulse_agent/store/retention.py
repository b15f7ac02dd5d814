"""Retention: raw results kept `agent.retention`, hourly rollups kept `agent.rollup`, so old raw
rows can go while a yearly uptime report still works. Each function is one short transaction on
the writer's connection; the agent calls them in turn, so writes never wait long."""

from __future__ import annotations

import math

import duckdb

from pulse_agent.result import utc
from pulse_agent.store import prefix, sketch

BATCH = 10_000  # raw rows deleted per transaction
SETTLE_S = 300.0  # an hour is rolled up once runs that started in it have surely been stored
# Per hour and check of the rows r: the latency sketch (store/sketch.py).
SKETCHES = f"""
    SELECT hour, check_name, map_from_entries(list(struct_pack(k := k, v := n) ORDER BY k)) AS latency_sketch
    FROM (SELECT date_trunc('hour', ts) AS hour, check_name, {sketch.key_sql("response_time_ms")} AS k, count(*)::INTEGER AS n
          FROM r WHERE response_time_ms IS NOT NULL GROUP BY ALL)
    GROUP BY ALL"""


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
        ),
        sketches AS ({SKETCHES})
        SELECT s.hour, s.check_name, s.runs, s.ok_runs, s.degraded_runs, coalesce(k.failures_by_kind, MAP {}),
               s.q[1], s.q[2], s.q[3], s.max_ms, coalesce(sk.latency_sketch, MAP {}), NULL  -- latency_cum: fill_prefixes
        FROM (SELECT date_trunc('hour', ts) AS hour, check_name, count(*) AS runs, count(*) FILTER (WHERE ok) AS ok_runs,
                     count(*) FILTER (WHERE degraded) AS degraded_runs, quantile_cont(response_time_ms, [0.5, 0.95, 0.99]) AS q,
                     max(response_time_ms) AS max_ms
              FROM r GROUP BY ALL) s
        LEFT JOIN kinds k USING (hour, check_name)
        LEFT JOIN sketches sk USING (hour, check_name)
        """.replace("{SKETCHES}", SKETCHES),
        [done_until, utc(now - SETTLE_S)],
    )
    [(after,)] = con.execute("SELECT count(*) FROM results_hourly").fetchall()
    roll_up_days(con)
    return int(after - before)


# The prefix sketches of every row of one parent period, from the sketches stored in it: each key
# of a check counted from its first unit on, summed over the units so far (a window over the units).
# $p: the parent's start, $next: the next one's.
_FILL = """
    UPDATE {table} x SET latency_cum = coalesce(m.cum, MAP {{}})
    FROM (
        WITH units AS (SELECT check_name, {column} AS u, latency_sketch FROM {table} WHERE {column} >= $p AND {column} < $next),
        s AS (SELECT check_name, u, unnest(map_keys(latency_sketch)) AS k, unnest(map_values(latency_sketch)) AS n FROM units),
        firsts AS (SELECT check_name, k, min(u) AS first_u FROM s GROUP BY ALL),
        cum AS (
            SELECT g.check_name, g.u, g.k, sum(coalesce(s.n, 0)) OVER (PARTITION BY g.check_name, g.k ORDER BY g.u) AS c
            FROM (SELECT units.check_name, units.u, f.k FROM units JOIN firsts f ON units.check_name = f.check_name
                  AND units.u >= f.first_u) g
            LEFT JOIN s USING (check_name, u, k)
        ),
        maps AS (SELECT check_name, u, map_from_entries(list(struct_pack(k := k, v := c::INTEGER) ORDER BY k)) AS cum FROM cum GROUP BY ALL)
        SELECT units.check_name, units.u, maps.cum FROM units LEFT JOIN maps USING (check_name, u)
    ) m
    WHERE x.{column} = m.u AND x.check_name = m.check_name"""


# One unit's prefix sketches when its parent's earlier rows have theirs and no later row has one:
# its own sketch plus the cum of the check's last row before it in the parent (an ASOF join).
# $at: the unit, $p: its parent's start.
_EXTEND = """
    UPDATE {table} x SET latency_cum = coalesce(m.cum, MAP {{}})
    FROM (
        SELECT u.check_name, m.cum FROM (SELECT check_name FROM {table} WHERE {column} = $at) u
        LEFT JOIN (
            SELECT check_name, map_from_entries(list(struct_pack(k := key, v := n) ORDER BY key)) AS cum
            FROM (
                SELECT check_name, key, sum(n)::INTEGER AS n FROM (
                    SELECT check_name, unnest(map_keys(latency_sketch)) AS key, unnest(map_values(latency_sketch)) AS n
                    FROM {table} WHERE {column} = $at AND latency_sketch IS NOT NULL
                    UNION ALL
                    SELECT c.check_name, unnest(map_keys(p.latency_cum)), unnest(map_values(p.latency_cum))
                    FROM (SELECT check_name, {column} FROM {table} WHERE {column} = $at) c
                    ASOF JOIN (SELECT check_name, {column}, latency_cum FROM {table} WHERE {column} >= $p AND {column} < $at) p
                        ON c.check_name = p.check_name AND c.{column} > p.{column}
                ) GROUP BY ALL
            ) GROUP BY ALL
        ) m USING (check_name)
    ) m
    WHERE x.{column} = $at AND x.check_name = m.check_name"""


def fill_prefixes(con: duckdb.DuckDBPyConnection) -> int:
    """Fill prefix sketches (store/prefix.py) where a row lacks its own, oldest first: the oldest such
    unit alone when no later row of its parent period (UTC day of hours, UTC month of days) has one
    (the usual case: a newly rolled-up hour), else its whole period again; how many rows were
    filled (0: nothing left to do). One unit or period per call: a short transaction."""
    tiers: tuple[tuple[str, str, prefix.Unit], ...] = (("results_hourly", "hour", "hour"), ("results_daily", "day", "day"))
    for table, column, unit in tiers:
        [(at,)] = con.execute(f"SELECT epoch(min({column})) FROM {table} WHERE latency_cum IS NULL").fetchall()
        if at is None:
            continue
        parent = prefix.parent_of(at, unit)
        span = {"p": utc(parent), "next": utc(prefix.next_parent(parent, unit))}
        [(later,)] = con.execute(
            f"SELECT count(*) FROM {table} WHERE {column} > $at AND {column} < $next AND latency_cum IS NOT NULL",
            {"at": utc(at), "next": span["next"]},
        ).fetchall()
        if later:
            [(n,)] = con.execute(_FILL.format(table=table, column=column), span).fetchall()
        else:
            [(n,)] = con.execute(_EXTEND.format(table=table, column=column), {"at": utc(at), "p": span["p"]}).fetchall()
        return int(n)
    return 0


def backfill_sketches(con: duckdb.DuckDBPyConnection) -> int:
    """Give the oldest hour rolled up before sketches existed (latency_sketch NULL) whose raw rows
    are still stored its sketches (an empty one for a check without latencies); how many hourly
    rows got one (0: nothing left to do). One hour per call: a short transaction."""
    hour = _first_unsketched(con)
    if hour is None:
        return 0
    [(n,)] = con.execute(
        f"""
        UPDATE results_hourly h SET latency_sketch = coalesce(s.latency_sketch, MAP {{}})
        FROM (SELECT c.check_name, sk.latency_sketch FROM (SELECT check_name FROM results_hourly WHERE hour = $hour) c
              LEFT JOIN (WITH r AS (SELECT * FROM results WHERE ts >= $hour AND ts < $hour + INTERVAL 1 HOUR AND NOT maintenance)
                         {SKETCHES}) sk USING (check_name)) s
        WHERE h.hour = $hour AND h.check_name = s.check_name
        """,
        {"hour": hour},
    ).fetchall()
    # The prefixes of this hour and the day's later hours left this sketch out: fill them again.
    con.execute("UPDATE results_hourly SET latency_cum = NULL WHERE hour = $hour", {"hour": hour})
    return int(n)


def _first_unsketched(con: duckdb.DuckDBPyConnection) -> object:
    """The oldest hour without sketches whose raw rows are still stored (None: none)."""
    [(hour,)] = con.execute(
        "SELECT min(hour) FROM results_hourly WHERE latency_sketch IS NULL AND hour >= date_trunc('hour', (SELECT min(ts) FROM results))"
    ).fetchall()
    return hour


def roll_up_days(con: duckdb.DuckDBPyConnection) -> int:
    """Merge the hourly rows of every complete UTC day not in results_daily yet (a day is complete
    once its last hour is rolled up, and its hours have sketches where raw rows allow): counts
    added, failure kinds and latency sketches merged by adding counts per key; how many (day,
    check) rows were added."""
    [(days_done, hours_done, before)] = con.execute(
        "SELECT (SELECT max(day) + INTERVAL 1 DAY FROM results_daily), (SELECT max(hour) + INTERVAL 1 HOUR FROM results_hourly), "
        "(SELECT count(*) FROM results_daily)"
    ).fetchall()
    if hours_done is None:
        return 0
    pending = _first_unsketched(con)  # a day waits for its hours' sketches (backfill_sketches)
    if pending is not None:
        hours_done = min(hours_done, pending)
    con.execute(
        f"""
        INSERT OR REPLACE INTO results_daily
        WITH hh AS (
            SELECT to_timestamp(epoch(hour)::BIGINT // 86400 * 86400) AS day, * FROM results_hourly
            WHERE hour >= coalesce(?::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ) AND hour < {_DAY_START.format("?::TIMESTAMPTZ")}
        ),
        kinds AS (
            SELECT day, check_name, map_from_entries(list(struct_pack(k := k, v := n) ORDER BY k)) AS failures_by_kind
            FROM (SELECT day, check_name, k, sum(n)::INTEGER AS n
                  FROM (SELECT day, check_name, unnest(map_keys(failures_by_kind)) AS k, unnest(map_values(failures_by_kind)) AS n FROM hh)
                  GROUP BY ALL)
            GROUP BY ALL
        ),
        merged AS (
            SELECT day, check_name, key, sum(n)::INTEGER AS n
            FROM (SELECT day, check_name, unnest(map_keys(latency_sketch)) AS key, unnest(map_values(latency_sketch)) AS n FROM hh)
            GROUP BY ALL
        ),
        sketches AS (
            SELECT day, check_name, map_from_entries(list(struct_pack(k := key, v := n) ORDER BY key)) AS latency_sketch
            FROM merged GROUP BY ALL
        ),
        q AS ({sketch.quantiles_sql("merged", "day, check_name")})
        SELECT s.day, s.check_name, s.runs, s.ok_runs, s.degraded_runs, coalesce(k.failures_by_kind, MAP {{}}), s.max_ms, sk.latency_sketch,
               q.p50, q.p95, q.p99, NULL  -- latency_cum: fill_prefixes
        FROM (SELECT day, check_name, sum(runs) AS runs, sum(ok_runs) AS ok_runs, sum(degraded_runs) AS degraded_runs, max(max_ms) AS max_ms
              FROM hh GROUP BY ALL) s
        LEFT JOIN kinds k USING (day, check_name)
        LEFT JOIN sketches sk USING (day, check_name)
        LEFT JOIN q USING (day, check_name)
        """,
        [days_done, hours_done],
    )
    [(after,)] = con.execute("SELECT count(*) FROM results_daily").fetchall()
    return int(after - before)


_DAY_START = "to_timestamp(epoch({})::BIGINT // 86400 * 86400)"  # UTC, whatever the session's time zone


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
    """Delete hourly rows older than cutoff, and daily rows of days that ended before it; how many hourly rows went.
    The rest of a day (month) cut in two gets its prefixes again from the next fill_prefixes."""
    deleted = 0
    tiers: tuple[tuple[str, str, prefix.Unit, float], ...] = (
        ("results_hourly", "hour", "hour", math.ceil(cutoff / 3600) * 3600),  # hours that began before cutoff
        ("results_daily", "day", "day", math.floor(cutoff / 86400) * 86400),  # days that ended by cutoff
    )
    for table, column, unit, bound in tiers:
        [(n,)] = con.execute(f"DELETE FROM {table} WHERE {column} < $bound", {"bound": utc(bound)}).fetchall()
        if n:  # the kept rows of the period cut in two summed rows now gone: fill_prefixes sums them again
            params = {"bound": utc(bound), "next": utc(prefix.next_parent(bound - 1, unit))}
            con.execute(f"UPDATE {table} SET latency_cum = NULL WHERE {column} >= $bound AND {column} < $next", params)
        if table == "results_hourly":
            deleted = int(n)
    return deleted
