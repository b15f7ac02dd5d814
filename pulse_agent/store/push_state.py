"""The push_state table: each push check's PushState, read at start and written at every change."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from pulse_agent.probe.push import PushState
from pulse_agent.result import utc


def load(con: duckdb.DuckDBPyConnection) -> dict[str, PushState]:
    """Every stored state by check name."""
    rows = con.execute("SELECT check_name, epoch(since), epoch(last_ping), epoch(accounted), epoch(started) FROM push_state").fetchall()
    return {name: PushState(float(since), *(None if t is None else float(t) for t in rest)) for name, since, *rest in rows}


def save_many(con: duckdb.DuckDBPyConnection, states: dict[str, PushState]) -> None:
    """Write these checks' states (inserted or replaced)."""
    con.executemany(
        "INSERT OR REPLACE INTO push_state VALUES (?, ?, ?, ?, ?)",
        [[name, utc(s.since), utc(s.last_ping), utc(s.accounted), utc(s.started)] for name, s in states.items()],
    )


def forget(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> None:
    """Drop the states of checks that are no longer push checks of this agent."""
    for name in names:
        con.execute("DELETE FROM push_state WHERE check_name = ?", [name])
