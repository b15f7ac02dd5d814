"""Prefix sketches: besides its own latency sketch, every rolled-up row keeps `latency_cum`, the sum
of the sketches of its parent period up to and including itself (an hour's within its UTC day, a
day's within its UTC month). Sketches merge by adding counts, so they also subtract: the sketch of
any run of whole units inside one parent is cum(last unit) - cum(unit before the first), two
sketches however long the run. A 30-day report then merges about six sketches a check instead of
fifty, and a year about thirty instead of 365, with the same counts per bucket: the same
percentiles, exactly. Pure: the terms a window needs, and the SQL that reads them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Unit = Literal["hour", "day"]
HOUR, DAY = 3600, 86400


@dataclass(frozen=True, slots=True)
class Term:
    """sign x (the check's cum as of the last row at or before `at` and at or after `parent`)."""

    at: float  # start of the unit whose cum is read (epoch seconds)
    parent: float  # start of that unit's parent period: rows before it belong to another sum
    sign: int  # +1 or -1


def parent_of(ts: float, unit: Unit) -> float:
    """Start of the period whose units a cum sums: the UTC day of an hour, the UTC month of a day."""
    if unit == "hour":
        return ts // DAY * DAY
    d = datetime.fromtimestamp(ts, UTC)
    return datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()


def next_parent(ts: float, unit: Unit) -> float:
    """Start of the parent period after the one ts is in."""
    if unit == "hour":
        return ts // DAY * DAY + DAY
    d = datetime.fromtimestamp(ts, UTC)
    return datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC).timestamp()


def terms(lo: float, hi: float, unit: Unit) -> list[tuple[float, Term]]:
    """The terms whose signed sum is the sketch of the units [lo, hi) (both on unit boundaries), each
    with the start of its parent period (a key for reports that group by day)."""
    step = HOUR if unit == "hour" else DAY
    out: list[tuple[float, Term]] = []
    x = lo
    while x < hi:
        parent = parent_of(x, unit)
        y = min(hi, next_parent(x, unit))
        out.append((parent, Term(y - step, parent, +1)))
        if x > parent:
            out.append((parent, Term(x - step, parent, -1)))
        x = y
    return out


def signed_sql(table: str, column: str, terms_cte: str, ats: list[float], by_term: str = "") -> str:
    """SQL: (check_name[, the term's key], sign, cum) for every check of CTE `checks` and term of
    terms_cte(term_at, parent, sign[, k]): the check's cum as of the term. Mostly the check has a row at
    the term itself (an equality join: DuckDB reads only those rows); else its last row at or after
    the term's parent and before the term (a row before the parent belongs to another sum). ats:
    the terms' units, written as literals so that DuckDB skips the row groups without them."""
    key = f", c.{by_term}" if by_term else ""
    units = ", ".join(f"to_timestamp({float(at)!r})" for at in sorted(set(ats))) or "NULL"
    keys = f"check_name, term_at, parent, sign{key.replace('c.', '')}"
    return f"""
        WITH ct AS (SELECT * FROM checks CROSS JOIN {terms_cte}),
        exact AS (
            SELECT c.*, x.latency_cum AS cum FROM ct c
            JOIN (SELECT * FROM {table} WHERE {column} IN ({units})) x ON x.check_name = c.check_name AND x.{column} = c.term_at
        ),
        missing AS (SELECT * FROM ct ANTI JOIN exact USING ({keys})),
        found AS (
            SELECT c.*, max(x.{column}) AS u FROM missing c
            JOIN {table} x ON x.check_name = c.check_name AND x.{column} >= c.parent AND x.{column} < c.term_at GROUP BY ALL
        )
        SELECT c.check_name{key}, c.sign, c.cum FROM exact c WHERE c.cum IS NOT NULL
        UNION ALL
        SELECT c.check_name{key}, c.sign, x.latency_cum FROM found c
        JOIN {table} x ON x.check_name = c.check_name AND x.{column} = c.u WHERE x.latency_cum IS NOT NULL"""


def window_terms(
    a: float, b: float, da: float, db: float, raw_from: float, end: float
) -> tuple[list[tuple[float, Term]], list[tuple[float, Term]], float]:
    """A report window's rolled-up part as prefix terms: (hourly terms, daily terms, end of the rolled-up
    hours). The rolled-up hours are [a, b) and, where raw rows are gone, the hours before raw_from (up to
    the window's end); of those the UTC days [da, db) come from results_daily."""
    hours_end = max(b, min(raw_from, math.ceil(end / HOUR) * HOUR))
    hourly = terms(a, da, "hour") + terms(db, hours_end, "hour") if da < db else terms(a, hours_end, "hour")
    return hourly, terms(da, db, "day"), hours_end
