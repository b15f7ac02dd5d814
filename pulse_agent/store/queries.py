"""Read queries over the stored history, answering in JSON-ready rows (timestamps as ISO-8601 UTC)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb

from pulse_agent.result import iso
from pulse_agent.store.db import utc

RESULT_COLUMNS = ("ts", "check_name", "ok", "degraded", "status_code", "response_time_ms", "error_kind", "error", "attempts",
                  "scheduled_ts", "dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "cert_expires", "maintenance")  # fmt: skip
INCIDENT_COLUMNS = (
    "id",
    "check_name",
    "opened_at",
    "resolved_at",
    "first_error_kind",
    "first_error",
    "last_notified_at",
    "notifications_sent",
    "acked_at",
    "acked_by",
    "held",
)


def results(con: duckdb.DuckDBPyConnection, check: str, since: float | None, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` results of check at or after since, newest first."""
    sql = f"SELECT {', '.join(RESULT_COLUMNS)} FROM results WHERE check_name = ?"
    params: list[object] = [check]
    if since is not None:
        sql += " AND ts >= ?"
        params.append(utc(since))
    sql += " ORDER BY ts DESC LIMIT ?"
    return _rows(con.execute(sql, [*params, limit]))


def incidents(con: duckdb.DuckDBPyConnection, *, open_only: bool, check: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` incidents (only open ones, of one check, when asked), newest first."""
    where = ["resolved_at IS NULL"] if open_only else []
    params: list[object] = []
    if check is not None:
        where.append("check_name = ?")
        params.append(check)
    sql = f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY opened_at DESC LIMIT ?"
    return _rows(con.execute(sql, [*params, limit]))


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [{n: _json(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _json(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value.timestamp())
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return float(value)
    return value


# Named parameters of every report query: $start, $end (TIMESTAMPTZ), $checks (names; empty = all).
_CHOSEN = "(len($checks) = 0 OR list_contains($checks, check_name))"
_OVERLAPS = f"opened_at < $end AND coalesce(resolved_at, $end) > $start AND {_CHOSEN}"
_INSIDE = "epoch(least(coalesce(resolved_at, $end), $end)) - epoch(greatest(opened_at, $start))"
# Raw results where retention kept them, hourly rollups before that: per check, raw rows count from
# their first hour when it is complete (its run count equals its rollup's), else from the next hour
# (retention cut it); a check with no raw rows left counts from its rollups only.
_SOURCES = f"""
    firsts AS (SELECT check_name, date_trunc('hour', min(ts)) AS first_hour FROM results GROUP BY ALL),
    first_runs AS (
        SELECT f.check_name, f.first_hour, count(*) FILTER (WHERE NOT x.maintenance) AS runs
        FROM firsts f JOIN results x ON x.check_name = f.check_name AND x.ts >= f.first_hour AND x.ts < f.first_hour + INTERVAL 1 HOUR
        GROUP BY ALL
    ),
    bounds AS (
        SELECT f.check_name, CASE WHEN h.check_name IS NULL OR h.runs = f.runs THEN f.first_hour ELSE f.first_hour + INTERVAL 1 HOUR END
               AS raw_from
        FROM first_runs f LEFT JOIN results_hourly h ON h.check_name = f.check_name AND h.hour = f.first_hour
    ),
    r AS (
        SELECT r.* FROM results r LEFT JOIN bounds b USING (check_name)
        WHERE r.ts >= $start AND r.ts < $end AND {_CHOSEN} AND NOT r.maintenance AND r.ts >= b.raw_from
    ),
    h AS (
        SELECT h.* FROM results_hourly h LEFT JOIN bounds b USING (check_name)
        WHERE h.hour >= $start AND h.hour < $end AND {_CHOSEN}
          AND h.hour < coalesce(b.raw_from, 'infinity'::TIMESTAMPTZ)
    )"""


def summary(con: duckdb.DuckDBPyConnection, start: float, end: float, checks: list[str] | None) -> list[dict[str, Any]]:
    """One row per check over [start, end): runs outside maintenance, uptime, failures by kind,
    latency percentiles (raw results only), degraded share, incidents overlapping the window, last result."""
    sql = f"""
    WITH {_SOURCES},
    counts AS (
        SELECT check_name, sum(runs) AS runs, sum(ok_runs) AS ok_runs, sum(degraded_runs) AS degraded_runs FROM (
            SELECT check_name, count(*) AS runs, count(*) FILTER (WHERE ok) AS ok_runs, count(*) FILTER (WHERE degraded) AS degraded_runs
            FROM r GROUP BY ALL
            UNION ALL
            SELECT check_name, sum(runs), sum(ok_runs), sum(degraded_runs) FROM h GROUP BY ALL
        ) GROUP BY ALL
    ),
    kinds AS (
        SELECT check_name, map_from_entries(list(struct_pack(k := error_kind, v := n) ORDER BY n DESC, error_kind)) AS failures_by_kind
        FROM (
            SELECT check_name, error_kind, sum(n)::BIGINT AS n FROM (
                SELECT check_name, coalesce(error_kind, 'internal') AS error_kind, count(*) AS n FROM r WHERE NOT ok GROUP BY ALL
                UNION ALL
                SELECT check_name, unnest(map_keys(failures_by_kind)), unnest(map_values(failures_by_kind)) FROM h
            ) GROUP BY ALL
        ) GROUP BY ALL
    ),
    latency AS (
        SELECT check_name, quantile_cont(response_time_ms, [0.5, 0.95, 0.99]) AS q, max(response_time_ms) AS max_ms,
               max(ts) AS last_ts, arg_max(ok, ts) AS last_ok
        FROM r GROUP BY ALL
    ),
    older_max AS (SELECT check_name, max(max_ms) AS max_ms FROM h GROUP BY ALL),
    inc AS (
        SELECT check_name, count(*) AS incidents, sum({_INSIDE}) AS downtime_s, max({_INSIDE}) AS longest_s
        FROM incidents WHERE {_OVERLAPS} GROUP BY ALL
    )
    SELECT c.check_name, c.runs, c.ok_runs, c.runs - c.ok_runs AS failures, coalesce(k.failures_by_kind, MAP {{}}) AS failures_by_kind,
           round(100.0 * c.ok_runs / c.runs, 4) AS uptime_pct, round(100.0 * c.degraded_runs / c.runs, 4) AS degraded_pct,
           round(l.q[1], 3) AS p50_ms, round(l.q[2], 3) AS p95_ms, round(l.q[3], 3) AS p99_ms,
           round(greatest(l.max_ms, o.max_ms), 3) AS max_ms,
           coalesce(i.incidents, 0) AS incidents, round(coalesce(i.downtime_s, 0), 3) AS downtime_s,
           round(coalesce(i.longest_s, 0), 3) AS longest_s, l.last_ts, l.last_ok
    FROM counts c LEFT JOIN kinds k USING (check_name) LEFT JOIN latency l USING (check_name)
    LEFT JOIN older_max o USING (check_name) LEFT JOIN inc i USING (check_name)
    WHERE c.runs > 0
    ORDER BY c.check_name"""
    return _rows(con.execute(sql, _params(start, end, checks)))


def series(con: duckdb.DuckDBPyConnection, start: float, end: float, checks: list[str] | None, by: str) -> list[dict[str, Any]]:
    """Run figures per check and hour (or day, UTC), in time order; percentiles from raw results only."""
    width_us = {"hour": 3_600_000_000, "day": 86_400_000_000}[by]  # integer buckets: time_bucket() costs 10x
    sql = f"""
    WITH {_SOURCES},
    rows AS (
        SELECT epoch_us(ts) // {width_us} AS k, check_name, count(*) AS runs, count(*) FILTER (WHERE ok) AS ok_runs,
               count(*) FILTER (WHERE degraded) AS degraded_runs, quantile_cont(response_time_ms, [0.5, 0.95, 0.99]) AS q
        FROM r GROUP BY ALL
        UNION ALL
        SELECT epoch_us(hour) // {width_us}, check_name, sum(runs), sum(ok_runs), sum(degraded_runs), NULL FROM h GROUP BY ALL
    )
    SELECT make_timestamptz(k * {width_us}) AS bucket, check_name, sum(runs) AS runs, sum(runs) - sum(ok_runs) AS failures,
           round(100.0 * sum(ok_runs) / sum(runs), 4) AS uptime_pct, round(100.0 * sum(degraded_runs) / sum(runs), 4) AS degraded_pct,
           round(any_value(q[1]) FILTER (WHERE q IS NOT NULL), 3) AS p50_ms,
           round(any_value(q[2]) FILTER (WHERE q IS NOT NULL), 3) AS p95_ms,
           round(any_value(q[3]) FILTER (WHERE q IS NOT NULL), 3) AS p99_ms
    FROM rows GROUP BY k, check_name ORDER BY k, check_name"""
    return _rows(con.execute(sql, _params(start, end, checks)))


def incident_list(con: duckdb.DuckDBPyConnection, start: float, end: float, checks: list[str] | None) -> list[dict[str, Any]]:
    """Incidents overlapping [start, end), oldest first; duration runs to end while open."""
    sql = f"""
    SELECT check_name, id AS incident, opened_at, resolved_at,
           round(epoch(coalesce(resolved_at, $end)) - epoch(opened_at), 3) AS duration_s, first_error_kind, first_error, notifications_sent,
           acked_at, acked_by, held
    FROM incidents WHERE {_OVERLAPS}
    ORDER BY opened_at, check_name"""
    return _rows(con.execute(sql, _params(start, end, checks)))


def json_rows(names: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows of a query as JSON-ready dicts keyed by column name."""
    return [{n: _json(v) for n, v in zip(names, row, strict=True)} for row in rows]


def _params(start: float, end: float, checks: list[str] | None) -> dict[str, object]:
    return {"start": utc(start), "end": utc(end), "checks": list(checks or [])}
