"""Latency sketches: a fixed logarithmic-bucket histogram (DDSketch's log mapping without its
bucket collapsing). A value v lands in bucket ceil(log_gamma(v)); every value of a bucket is within
ALPHA (1 %) of the bucket's representative value, so a quantile read from the merged buckets is
within 1 % of the exact value of the same rank. Buckets are fixed, so sketches of any hours merge
by adding counts per bucket, exactly; stored per hour and check as MAP(SMALLINT, INTEGER) in
results_hourly. Why not collapsing DDSketch: response times span 0.001 ms .. 1 day, which is 1,600
buckets at most and a few dozen per check-hour in practice, so there is nothing to collapse, and a
fixed mapping keeps merging plain SQL (sum per key). Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

ALPHA = 0.01  # relative accuracy
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
MIN_MS = 0.001  # smaller values (0 included) share the lowest bucket


# SQL: the bucket of a response time column x (DuckDB), and a bucket k's representative value.
def key_sql(x: str) -> str:
    """SQL expression: the bucket of the value of column x."""
    return f"ceil(ln(greatest({x}, {MIN_MS})) / {LN_GAMMA!r})::SMALLINT"


def value_sql(k: str) -> str:
    """SQL expression: the representative value (ms) of bucket k."""
    return f"(2 * exp({k} * {LN_GAMMA!r}) / {GAMMA + 1!r})"


def quantiles_sql(merged: str, by: str) -> str:
    """SQL: p50, p95, p99 per group (columns by) of a relation merged(by..., key, n) holding each
    group's merged sketch, one row per key; the same rank as quantile() below."""
    rank_key = "min(key) FILTER (WHERE upto > floor({q} * (total - 1)))"
    picks = ", ".join(f"{value_sql(rank_key.format(q=q))} AS p{round(q * 100)}" for q in (0.5, 0.95, 0.99))
    cumulative = f"""SELECT {by}, key, sum(n::DOUBLE) OVER (PARTITION BY {by} ORDER BY key ROWS UNBOUNDED PRECEDING) AS upto,
                            sum(n::DOUBLE) OVER (PARTITION BY {by}) AS total FROM {merged}"""
    return f"SELECT {by}, {picks} FROM ({cumulative}) GROUP BY ALL"


def entries_quantiles_sql(merged: str, by: str) -> str:
    """SQL: p50, p95, p99 per group (columns by) of a relation merged(by..., e) holding each group's
    sketch as a list of entries {k: bucket, n: signed count} sorted by (k, n), a bucket possibly in
    several entries (sketches not summed per bucket), groups without counts left out; the same rank
    as quantiles_sql. One pass over each group's list (list_reduce), where a window over
    (group, bucket) rows costs seconds for 100,000 groups. A bucket's entries sorted by count put
    its negative terms first, so no running count inside a bucket exceeds the one after it."""
    names = {0.5: "a", 0.95: "b", 0.99: "c"}
    found = ", ".join(f"'{n}': coalesce(acc.{n}, CASE WHEN acc.s + x.n > floor({q} * (total - 1)) THEN x.k END)" for q, n in names.items())
    start = "{'s': 0::DOUBLE, " + ", ".join(f"'{n}': NULL::SMALLINT" for n in names.values()) + "}"
    picks = ", ".join(f"{value_sql(f'q.{n}')} AS p{round(q * 100)}" for q, n in names.items())
    return f"""SELECT {by}, {picks} FROM (
            SELECT {by}, list_reduce(e, lambda acc, x: {{'s': acc.s + x.n, {found}}}, {start}) AS q
            FROM (SELECT *, list_sum(list_transform(e, lambda x: x.n)) AS total FROM {merged}) WHERE total > 0
        )"""


def key_of(ms: float) -> int:
    """The bucket of a response time."""
    return math.ceil(math.log(max(ms, MIN_MS)) / LN_GAMMA)


def value_of(key: int) -> float:
    """The representative value of a bucket: within ALPHA of every value in it."""
    return 2 * math.exp(key * LN_GAMMA) / (GAMMA + 1)


def sketch_of(values: Iterable[float]) -> dict[int, int]:
    """A sketch of values: count per bucket."""
    out: dict[int, int] = {}
    for v in values:
        k = key_of(v)
        out[k] = out.get(k, 0) + 1
    return out


def rank(q: float, total: int) -> int:
    """The 0-based rank whose value a sketch answers for quantile q: the lower of the two that an
    interpolating quantile (DuckDB's quantile_cont) reads, floor(q * (total - 1))."""
    return math.floor(q * (total - 1))


def quantile(sketch: Mapping[int, int], q: float) -> float | None:
    """The q-quantile of a sketch (None when empty)."""
    total = sum(sketch.values())
    if not total:
        return None
    want, seen = rank(q, total), 0
    for k in sorted(sketch):
        seen += sketch[k]
        if seen > want:
            return value_of(k)
    raise AssertionError("unreachable: counts add up to total")
