"""Parquet export, idempotent and atomic: every UTC day the window touches is written whole, to one
file per table, agent and day (DIR/date=YYYY-MM-DD/results-AGENT.parquet, incidents-AGENT.parquet,
config_versions-AGENT.parquet), first under a temporary name and then renamed over the old file.
Exporting a day again replaces its files, so overlapping exports never duplicate a row, and an
export killed midway leaves each day either as it was or complete, never half written."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pulse_agent.result import utc

DAY = 86400.0
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# table -> the time that places a row in a day
TABLES: dict[str, str] = {"results": "ts", "incidents": "opened_at", "config_versions": "applied_at"}
ORDER = {"results": "ts, check_name", "incidents": "opened_at, id", "config_versions": "applied_at, digest"}


@dataclass(frozen=True, slots=True)
class Exported:
    """What one export wrote: rows per table, and the files written or kept."""

    results: int = 0
    incidents: int = 0
    config_versions: int = 0
    files: int = 0
    kept: int = 0  # day files left as they were: they hold more rows than the database still has (retention)


def check_agent_name(name: str) -> str:
    """name when it can be part of a file name; ValueError saying what to write otherwise."""
    if not AGENT_NAME.fullmatch(name):
        raise ValueError(f"agent name {name!r} cannot name export files: use letters, digits, '.', '_' and '-' (at most 128)")
    return name


def days_of(start: float, end: float) -> list[str]:
    """Every UTC date (YYYY-MM-DD) that [start, end) touches, oldest first. Pure."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(max(start, end - 1e-6), UTC).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _days_to_write(con: duckdb.DuckDBPyConnection, root: Path, agent: str, start: float, end: float) -> list[str]:
    """The days of days_of(start, end) that hold rows or already have this agent's files: a day with
    neither writes nothing, so a window of centuries costs what its data costs, not queries per day."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(max(start, end - 1e-6), UTC).date()
    lo = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    hi = min(datetime(last.year, last.month, last.day, tzinfo=UTC).timestamp() + DAY, _LAST_SECOND)
    found: set[str] = set()
    for table, column in TABLES.items():
        rows = con.execute(
            f"SELECT DISTINCT strftime(timezone('UTC', {column}), '%Y-%m-%d') FROM {table} WHERE {column} >= ? AND {column} < ?",
            [utc(lo), utc(hi)],
        ).fetchall()
        found |= {d for (d,) in rows}
    if root.is_dir():
        found |= {p.parent.name.removeprefix("date=") for p in root.glob(f"date=*/*-{agent}.parquet")}
    return sorted(d for d in found if first.isoformat() <= d <= last.isoformat())


_LAST_SECOND = 253_402_300_799.0  # 9999-12-31T23:59:59Z: datetime's end


def file_name(table: str, agent: str) -> str:
    """The file of table for agent inside a day's directory."""
    return f"{table}-{agent}.parquet"


def table_of(path: str) -> str:
    """Which table an exported file holds, from its name (older exports' results_<uuid> files are results)."""
    base = os.path.basename(path)
    for table in ("incidents", "config_versions"):
        if base.startswith(f"{table}-"):
            return table
    return "results"


def export_parquet(con: duckdb.DuckDBPyConnection, out: str, start: float, end: float, agent: str) -> Exported:
    """Write every day [start, end) touches, whole, under out (and the incident files of days whose
    incidents are open or resolved on those days); other agents' and other days' files stay."""
    check_agent_name(agent)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(TABLES, 0)
    files = kept = 0
    days = _days_to_write(con, root, agent, start, end)
    if not days:
        return Exported(**counts, files=0, kept=0)
    # An incident lives in the file of the day it opened: that day is written again while the
    # incident is open or once it resolved on a day exported now, so no export keeps a stale state.
    changed = con.execute(
        "SELECT DISTINCT strftime(timezone('UTC', opened_at), '%Y-%m-%d') FROM incidents WHERE resolved_at IS NULL OR resolved_at >= ?",
        [utc(datetime.fromisoformat(days[0]).replace(tzinfo=UTC).timestamp())],
    ).fetchall()
    incident_days = sorted(set(days) | {d for (d,) in changed})
    for day in incident_days:
        lo = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
        for table, column in TABLES.items():
            if day not in days and table != "incidents":
                continue
            where = f"{column} >= ? AND {column} < ?"
            params = [utc(lo), utc(lo + DAY)]
            [(n,)] = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchall()
            target = root / f"date={day}" / file_name(table, agent)
            if n == 0 and not target.exists():
                continue
            if target.exists() and _rows_in(con, target) > n:
                kept += 1  # retention deleted some of the day since it was exported: the old file is more complete
                continue
            target.parent.mkdir(exist_ok=True)
            _write_atomically(con, f"SELECT *, ?::VARCHAR AS agent FROM {table} WHERE {where} ORDER BY {ORDER[table]}",
                              [agent, *params], target)  # fmt: skip
            counts[table] += int(n)
            files += 1
    return Exported(counts["results"], counts["incidents"], counts["config_versions"], files, kept)


def _write_atomically(con: duckdb.DuckDBPyConnection, query: str, params: list[object], target: Path) -> None:
    """COPY query to a hidden temporary file beside target, then rename it over target."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        con.execute(f"COPY ({query}) TO {_quote(str(tmp))} (FORMAT parquet, COMPRESSION zstd)", params)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _rows_in(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    try:
        [(n,)] = con.execute(f"SELECT count(*) FROM read_parquet({_quote(str(path))})").fetchall()
    except duckdb.Error:
        return 0  # unreadable: replace it
    return int(n)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
