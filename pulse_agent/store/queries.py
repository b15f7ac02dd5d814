"""Read queries over the stored history, answering in JSON-ready rows (timestamps as ISO-8601 UTC)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb

from pulse_agent.result import iso, utc
from pulse_agent.store import prefix, sketch
from pulse_agent.store.table import Form, Table, fetch, plain

RESULT_COLUMNS = ("ts", "check_name", "ok", "degraded", "status_code", "response_time_ms", "error_kind", "error", "attempts",
                  "scheduled_ts", "dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "cert_expires", "maintenance",
                  "http_version", "tls_version", "details")  # fmt: skip
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
    "source",
    "instance",
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


def _iso(column: str) -> str:
    """SQL: a TIMESTAMPTZ as the ISO-8601 UTC text iso() writes (formatting in DuckDB is 20x faster
    than converting each value to a Python datetime)."""
    return f"strftime(timezone('UTC', {column}), '%Y-%m-%dT%H:%M:%S.%gZ')"


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    described = cursor.description or ()
    names = [d[0] for d in described]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    # Only columns of other types are converted, value by value (100,000-row reports: most columns are plain).
    for name, kind in ((d[0], str(d[1])) for d in described):
        if plain(kind):
            continue
        convert = _json_text if kind == "JSON" else _json  # JSON comes back as text: answer it as the JSON it holds
        for row in rows:
            if (value := row[name]) is not None:
                row[name] = convert(value)
    return rows


def fetch_table(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object], form: Form, keep: tuple[str, ...] = ()) -> Table:
    """A read query's answer (parameters by name) as JSON-ready values column by column, or as each
    row's JSON text written by DuckDB (with the values of the columns in keep)."""
    return fetch(con, sql, params, form, _rows, keep)


def _json_text(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else _json(value)


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
# SLO and rule incidents (source set) are no downtime of a check.
_OVERLAPS = f"source IS NULL AND opened_at < $end AND coalesce(resolved_at, $end) > $start AND {_CHOSEN}"
_INSIDE = "epoch(least(coalesce(resolved_at, $end), $end)) - epoch(greatest(opened_at, $start))"
# Where each part of a window comes from. Complete hours that are rolled up come from
# results_hourly ([$a, $b): counts exact, percentiles from the hours' latency sketches), and of
# those the complete UTC days rolled up into results_daily from there ([$da, $db)); the rest
# from raw results: the window's partial first and last hours and the hours not rolled up yet. Raw
# rows count from $raw_from, the first hour whose raw rows are all there (retention may have cut
# the one before); rolled-up hours before it count whole (rolled-up parts of a window count whole
# hours). Two range scans, not one with OR, so DuckDB skips row groups by their min/max of ts.
_SOURCES = f"""
    r AS (
        SELECT * FROM results WHERE ts >= $start AND ts < least($a, $end) AND ts >= $raw_from AND NOT maintenance AND {_CHOSEN}
        UNION ALL
        SELECT * FROM results WHERE ts >= greatest($b, $start) AND ts < $end AND ts >= $raw_from AND NOT maintenance AND {_CHOSEN}
    ),
    h AS (
        SELECT hour, check_name, runs, ok_runs, degraded_runs, failures_by_kind, max_ms, latency_sketch, p50_ms, p95_ms, p99_ms,
               false AS is_day
        FROM results_hourly
        WHERE hour >= $start AND hour < $end AND {_CHOSEN} AND ((hour >= $a AND hour < $b) OR hour < $raw_from)
          AND NOT (hour >= $da AND hour < $db)
        UNION ALL
        SELECT day, check_name, runs, ok_runs, degraded_runs, failures_by_kind, max_ms, latency_sketch, p50_ms, p95_ms, p99_ms, true
        FROM results_daily WHERE day >= $da AND day < $db AND {_CHOSEN}
    )"""
_KEY = sketch.key_sql("response_time_ms")


def _sketch_quantiles(by: str, prefixed: _Prefixed | None = None, width_us: int = 0) -> str:
    """CTE sk_q: p50/p95/p99 per group (by) that has rolled-up rows: a day bucket that is one daily
    rollup reads the percentiles stored with it; any other group merges its rollups' latency
    sketches with the sketch of its raw rows (store/sketch.py). Groups without rolled-up rows get
    exact percentiles (quantile_cont) elsewhere. Needs CTEs h_keyed and r_keyed with by's columns.
    prefixed: the rollups' part is read as prefix sketches at the window's terms (store/prefix.py;
    the same counts per bucket from a few rows a check), grouped by day buckets of width_us if given."""
    groups = f"(SELECT DISTINCT {by} FROM h_merge)"
    entry = "lambda x: struct_pack(k := x.key, n := x.value::DOUBLE{sign})"
    if prefixed:
        k = f", epoch_us(parent) // {width_us} AS k" if width_us else ""
        term_key = "k" if width_us else ""
        rollups = f"""
            SELECT {by}, list_transform(map_entries(cum), {entry.format(sign=" * sign")}) AS e
            FROM signed SEMI JOIN {groups} USING ({by})"""
        signed = f"""
    checks AS (SELECT DISTINCT check_name FROM h),
    ht AS (
        SELECT unnest($ht_at::TIMESTAMPTZ[]) AS term_at, unnest($ht_parent::TIMESTAMPTZ[]) AS parent, unnest($ht_sign::INTEGER[]) AS sign
    ),
    dt AS (
        SELECT unnest($dt_at::TIMESTAMPTZ[]) AS term_at, unnest($dt_parent::TIMESTAMPTZ[]) AS parent, unnest($dt_sign::INTEGER[]) AS sign
    ),
    signed AS (
        SELECT * FROM ({prefix.signed_sql("results_hourly", "hour", f"(SELECT *{k} FROM ht)", prefixed.hour_ats, term_key)})
        UNION ALL
        SELECT * FROM ({prefix.signed_sql("results_daily", "day", f"(SELECT *{k} FROM dt)", prefixed.day_ats, term_key)})
    ),"""
    else:
        rollups = f"""
            SELECT {by}, list_transform(map_entries(latency_sketch), {entry.format(sign="")}) AS e FROM h_merge"""
        signed = ""
    # Each group's sketch as one sorted list of entries (rollups' and raw rows' buckets), read by
    # sketch.entries_quantiles_sql: no (group, bucket) rows to sum and run a window over.
    return f"""
    h_merge AS (
        SELECT * FROM h_keyed ANTI JOIN (SELECT {by} FROM h_keyed WHERE whole) USING ({by}) WHERE latency_sketch IS NOT NULL
    ),{signed}
    sk AS (
        SELECT {by}, list_sort(flatten(list(e))) AS e FROM (
            {rollups}
            UNION ALL
            SELECT {by}, list(struct_pack(k := key, n := n)) FROM (
                SELECT {by}, {sketch.key_sql("response_time_ms")} AS key, count(*)::DOUBLE AS n
                FROM r_keyed JOIN {groups} USING ({by})
                WHERE response_time_ms IS NOT NULL GROUP BY ALL
            ) GROUP BY ALL
        ) GROUP BY ALL
    ),
    sk_q AS (
        {sketch.entries_quantiles_sql("sk", by)}
        UNION ALL
        SELECT {by}, p50_ms, p95_ms, p99_ms FROM h_keyed WHERE whole
    )"""


# An hour bucket with a rollup is that one rolled-up hour (never mixed with raw rows of it): its
# percentiles were computed exactly when it was rolled up.
_HOURS_AS_ROLLED = "sk_q AS (SELECT k, check_name, p50_ms AS p50, p95_ms AS p95, p99_ms AS p99 FROM h_keyed)"


@dataclass(frozen=True, slots=True)
class _Prefixed:
    """How a window's rolled-up part is read from prefix sketches: the terms as query parameters, and
    the units they read (written into the SQL, so that DuckDB reads only those rows)."""

    params: dict[str, object]
    hour_ats: list[float]
    day_ats: list[float]

    def hourly_only(self) -> _Prefixed:
        """The same without the daily terms."""
        params = {**self.params, "dt_at": [], "dt_parent": [], "dt_sign": []}
        return _Prefixed(params, self.hour_ats, [])


def _window_plan(
    con: duckdb.DuckDBPyConnection, start: float, end: float, *, days: bool = True
) -> tuple[dict[str, object], _Prefixed | None]:
    """$a, $b: the rolled-up complete hours inside [start, end); $da, $db: the rolled-up complete
    days inside those (none when not days); $raw_from: where raw rows are whole. And the parameters
    that read the rolled-up part from prefix sketches, when every row it needs has one (else None)."""
    [(rolled_until, days_until, first)] = con.execute(
        "SELECT (SELECT epoch(max(hour)) + 3600 FROM results_hourly), (SELECT epoch(max(day)) + 86400 FROM results_daily), "
        "(SELECT epoch(min(ts)) FROM results)"
    ).fetchall()
    a = math.ceil(start / 3600) * 3600
    b = max(a, min(math.floor(end / 3600) * 3600, rolled_until if rolled_until is not None else a))
    da = math.ceil(a / 86400) * 86400
    db = max(da, min(math.floor(b / 86400) * 86400, days_until if days_until is not None and days else da))
    raw_from = -math.inf
    if first is not None and rolled_until is not None:
        first_hour = math.floor(first / 3600) * 3600
        raw_from = first_hour + 3600 if first_hour < rolled_until else first_hour  # a rolled-up first hour may be cut
    lowest = datetime.min.replace(tzinfo=UTC)
    params: dict[str, object] = {"a": utc(a), "b": utc(b), "da": utc(da), "db": utc(db),
                                 "raw_from": utc(raw_from) if raw_from != -math.inf else lowest}  # fmt: skip
    hourly, daily, hours_end = prefix.window_terms(a, b, da, db, raw_from, end)
    # From the start of the first parent period: a term subtracts a row before the window's first unit.
    [(missing,)] = con.execute(
        "SELECT (SELECT count(*) FROM results_hourly WHERE hour >= $pa AND hour < $e AND latency_cum IS NULL) + "
        "(SELECT count(*) FROM results_daily WHERE day >= $pda AND day < $db AND latency_cum IS NULL)",
        {"pa": utc(prefix.parent_of(a, "hour")), "e": utc(hours_end), "pda": utc(prefix.parent_of(da, "day")), "db": utc(db)},
    ).fetchall()
    if missing:
        return params, None
    terms: dict[str, object] = {}
    for name, part in (("ht", hourly), ("dt", daily)):
        terms[f"{name}_at"] = [utc(t.at) for _, t in part]
        terms[f"{name}_parent"] = [utc(t.parent) for _, t in part]
        terms[f"{name}_sign"] = [t.sign for _, t in part]
    return params, _Prefixed(terms, [t.at for _, t in hourly], [t.at for _, t in daily])


def summary(
    con: duckdb.DuckDBPyConnection, start: float, end: float, checks: list[str] | None, form: Form = "values", keep: tuple[str, ...] = ()
) -> Table:
    """One row per check over [start, end): runs outside maintenance, uptime, failures by kind,
    latency percentiles (exact over raw results, from sketches where rolled-up hours take part),
    degraded share, incidents overlapping the window, last result."""
    plan, terms = _window_plan(con, start, end)
    sql = f"""
    WITH {_SOURCES},
    h_keyed AS (SELECT check_name, latency_sketch, p50_ms, p95_ms, p99_ms, false AS whole FROM h),
    r_keyed AS (SELECT check_name, response_time_ms FROM r),
    {_sketch_quantiles("check_name", terms)},
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
        SELECT check_name, quantile_cont(response_time_ms, [0.5, 0.95, 0.99]) AS q, max(response_time_ms) AS max_ms FROM r
        WHERE check_name NOT IN (SELECT check_name FROM sk_q) GROUP BY ALL
    ),
    raw_max AS (SELECT check_name, max(response_time_ms) AS max_ms FROM r GROUP BY ALL),
    -- The last result: found among the window's last 5 minutes for a check that runs that often,
    -- else its last hour or two; only checks that did not run then are looked up over the whole
    -- window (each a tail of the window: a check's last result in it is its last in the window).
    latest AS (
        SELECT check_name, max(ts) AS last_ts, arg_max(ok, ts) AS last_ok FROM results
        WHERE ts >= greatest($start, $end - INTERVAL 5 MINUTE) AND ts < $end AND NOT maintenance AND {_CHOSEN} GROUP BY ALL
    ),
    recent AS (
        SELECT * FROM latest
        UNION ALL
        SELECT check_name, max(ts), arg_max(ok, ts) FROM results
        WHERE ts >= greatest($start, $b - INTERVAL 1 HOUR) AND ts < $end AND NOT maintenance AND {_CHOSEN}
          AND check_name IN (SELECT check_name FROM counts EXCEPT SELECT check_name FROM latest)
        GROUP BY ALL
    ),
    last AS (
        SELECT * FROM recent
        UNION ALL
        SELECT check_name, max(ts), arg_max(ok, ts) FROM results
        WHERE ts >= $start AND ts < $end AND NOT maintenance AND {_CHOSEN}
          AND check_name IN (SELECT check_name FROM counts EXCEPT SELECT check_name FROM recent)
        GROUP BY ALL
    ),
    older_max AS (SELECT check_name, max(max_ms) AS max_ms FROM h GROUP BY ALL),
    inc AS (
        SELECT check_name, count(*) AS incidents, sum({_INSIDE}) AS downtime_s, max({_INSIDE}) AS longest_s
        FROM incidents WHERE {_OVERLAPS} GROUP BY ALL
    )
    -- Sums of counts are HUGEINT; as BIGINT (the same values) they come to Python far cheaper.
    SELECT c.check_name, c.runs::BIGINT AS runs, c.ok_runs::BIGINT AS ok_runs, (c.runs - c.ok_runs)::BIGINT AS failures,
           coalesce(k.failures_by_kind, MAP {{}}) AS failures_by_kind,
           round(100.0 * c.ok_runs / c.runs, 4) AS uptime_pct, round(100.0 * c.degraded_runs / c.runs, 4) AS degraded_pct,
           round(coalesce(q.p50, l.q[1]), 3) AS p50_ms, round(coalesce(q.p95, l.q[2]), 3) AS p95_ms,
           round(coalesce(q.p99, l.q[3]), 3) AS p99_ms, round(greatest(m.max_ms, o.max_ms), 3) AS max_ms,
           coalesce(i.incidents, 0) AS incidents, round(coalesce(i.downtime_s, 0), 3) AS downtime_s,
           round(coalesce(i.longest_s, 0), 3) AS longest_s, {_iso("t.last_ts")} AS last_ts, t.last_ok
    FROM counts c LEFT JOIN kinds k USING (check_name) LEFT JOIN latency l USING (check_name) LEFT JOIN sk_q q USING (check_name)
    LEFT JOIN raw_max m USING (check_name) LEFT JOIN older_max o USING (check_name) LEFT JOIN inc i USING (check_name)
    LEFT JOIN last t USING (check_name)
    WHERE c.runs > 0
    ORDER BY c.check_name"""
    return fetch_table(con, sql, {**_params(start, end, checks), **plan, **(terms.params if terms else {})}, form, keep)


def series(con: duckdb.DuckDBPyConnection, start: float, end: float, checks: list[str] | None, by: str, form: Form = "values") -> Table:
    """Run figures per check and hour (or day, UTC), in time order; percentiles as in summary."""
    width_us = {"hour": 3_600_000_000, "day": 86_400_000_000}[by]  # integer buckets: time_bucket() costs 10x
    plan, terms = _window_plan(con, start, end, days=by == "day")
    # Hour buckets read each rolled-up hour as it is; day buckets need only the hourly terms (a whole
    # day reads its stored percentiles; a month's daily terms would land in the bucket of its 1st).
    prefixed = terms.hourly_only() if terms is not None and by == "day" else None
    sql = f"""
    WITH {_SOURCES},
    h_keyed AS (SELECT epoch_us(hour) // {width_us} AS k, check_name, latency_sketch, p50_ms, p95_ms, p99_ms, is_day AS whole FROM h),
    r_keyed AS (SELECT epoch_us(ts) // {width_us} AS k, check_name, response_time_ms FROM r),
    {_sketch_quantiles("k, check_name", prefixed, width_us) if by == "day" else _HOURS_AS_ROLLED},
    raw_q AS (
        SELECT k, check_name, quantile_cont(response_time_ms, [0.5, 0.95, 0.99]) AS q FROM r_keyed ANTI JOIN sk_q USING (k, check_name)
        GROUP BY ALL
    ),
    rows AS (
        SELECT epoch_us(ts) // {width_us} AS k, check_name, count(*) AS runs, count(*) FILTER (WHERE ok) AS ok_runs,
               count(*) FILTER (WHERE degraded) AS degraded_runs
        FROM r GROUP BY ALL
        UNION ALL
        SELECT epoch_us(hour) // {width_us}, check_name, sum(runs), sum(ok_runs), sum(degraded_runs) FROM h GROUP BY ALL
    ),
    totals AS (SELECT k, check_name, sum(runs) AS runs, sum(ok_runs) AS ok_runs, sum(degraded_runs) AS degraded_runs FROM rows GROUP BY ALL)
    SELECT {_iso(f"make_timestamptz(k * {width_us})")} AS bucket, check_name, runs::BIGINT AS runs, (runs - ok_runs)::BIGINT AS failures,
           round(100.0 * ok_runs / runs, 4) AS uptime_pct, round(100.0 * degraded_runs / runs, 4) AS degraded_pct,
           round(coalesce(s.p50, x.q[1]), 3) AS p50_ms, round(coalesce(s.p95, x.q[2]), 3) AS p95_ms,
           round(coalesce(s.p99, x.q[3]), 3) AS p99_ms
    FROM totals LEFT JOIN sk_q s USING (k, check_name) LEFT JOIN raw_q x USING (k, check_name)
    ORDER BY k, check_name"""
    return fetch_table(con, sql, {**_params(start, end, checks), **plan, **(prefixed.params if prefixed else {})}, form)


def incident_list(con: duckdb.DuckDBPyConnection, start: float, end: float, checks: list[str] | None, form: Form = "values") -> Table:
    """Incidents overlapping [start, end), oldest first; duration runs to end while open."""
    sql = f"""
    SELECT check_name, id AS incident, {_iso("opened_at")} AS opened_at, {_iso("resolved_at")} AS resolved_at,
           round(epoch(coalesce(resolved_at, $end)) - epoch(opened_at), 3) AS duration_s, first_error_kind, first_error, notifications_sent,
           {_iso("acked_at")} AS acked_at, acked_by, held
    FROM incidents WHERE {_OVERLAPS}
    ORDER BY opened_at, check_name"""
    return fetch_table(con, sql, _params(start, end, checks), form)


def json_rows(names: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows of a query as JSON-ready dicts keyed by column name."""
    return [{n: _json(v) for n, v in zip(names, row, strict=True)} for row in rows]


def check_names(con: duckdb.DuckDBPyConnection, among: list[str] | None) -> list[str]:
    """Check names in the stored history (rollups, results, incidents), only those among when given
    (each looked up until first found: cheap even over 100 M results)."""
    tables = ("results_daily", "results_hourly", "results", "incidents")
    if among is None:
        union = " UNION ".join(f"SELECT DISTINCT check_name FROM {t}" for t in tables)
        return [name for (name,) in con.execute(union).fetchall()]
    found = []
    for name in among:
        for table in tables:
            if con.execute(f"SELECT 1 FROM {table} WHERE check_name = ? LIMIT 1", [name]).fetchall():
                found.append(name)
                break
    return found


def _params(start: float, end: float, checks: list[str] | None) -> dict[str, object]:
    return {"start": utc(start), "end": utc(end), "checks": list(checks or [])}
