"""The report window over user SQL (`report --sql`): the query runs with `results` and
`results_hourly` holding only the window's rows, and `all_results` / `all_results_hourly`
holding every row, so a header that names a window never describes a count over all time.
Pure text building: the caller runs what this returns through the sandbox (store/sandbox.py), whose parser wall sees one SELECT."""

from __future__ import annotations

import re

from pulse_agent.result import iso

# The user's own WITH list, after any leading comments: ours go in front of it (a second WITH
# clause around a query with its own is a syntax error in DuckDB).
_LEADING_WITH = re.compile(r"\A(\s*(?:(?:--[^\n]*(?:\n|\Z)|/\*.*?\*/)\s*)*)WITH(\s+RECURSIVE)?\s", re.IGNORECASE | re.DOTALL)


def window_ctes(start: float, end: float) -> str:
    """The common table expressions naming the window's rows and every row."""
    lo, hi = f"TIMESTAMPTZ '{iso(start)}'", f"TIMESTAMPTZ '{iso(end)}'"
    return (
        f"results AS (SELECT * FROM main.results WHERE ts >= {lo} AND ts < {hi}), "
        "all_results AS (SELECT * FROM main.results), "
        f"results_hourly AS (SELECT * FROM main.results_hourly WHERE hour >= {lo} AND hour < {hi}), "
        "all_results_hourly AS (SELECT * FROM main.results_hourly)"
    )


def windowed_sql(sql: str, start: float, end: float) -> str:
    """sql with the window's CTEs in front: `results` is [start, end), `all_results` everything."""
    ctes = window_ctes(start, end)
    m = _LEADING_WITH.match(sql)
    if m:
        return f"{m.group(1)}WITH{m.group(2) or ''} {ctes}, {sql[m.end() :]}"
    return f"WITH {ctes} {sql}"
