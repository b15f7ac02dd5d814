"""Parquet export of results, partitioned by day (hive style: DIR/date=YYYY-MM-DD/...), so the
history of many agents can be queried together (`report --from-parquet 'DIR/**/*.parquet'`)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pulse_agent.result import utc


def export_parquet(con: duckdb.DuckDBPyConnection, out: str, start: float, end: float, agent: str) -> int:
    """Write results with start <= ts < end under out; existing files of other runs stay. Rows written."""
    Path(out).mkdir(parents=True, exist_ok=True)
    [(n,)] = con.execute("SELECT count(*) FROM results WHERE ts >= ? AND ts < ?", [utc(start), utc(end)]).fetchall()
    if n:
        target = "'" + out.replace("'", "''") + "'"
        con.execute(
            f"""COPY (
                SELECT *, ?::VARCHAR AS agent, strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d') AS date
                FROM results WHERE ts >= ? AND ts < ?
            ) TO {target} (FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'results_{{uuid}}', OVERWRITE_OR_IGNORE)""",
            [agent, utc(start), utc(end)],
        )
    return int(n)
