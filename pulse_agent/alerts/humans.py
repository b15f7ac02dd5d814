"""The tables people write through the API: silences, paused checks, acknowledgements.

Each function takes the writer's DuckDB connection (ResultStore.call) or a reader's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from pulse_agent.alerts.silence import Matcher, Silence
from pulse_agent.result import iso
from pulse_agent.store.db import utc


@dataclass(frozen=True, slots=True)
class Pause:
    """A check paused through the API: not run until resumed, across reloads and restarts."""

    check: str
    paused_at: float
    author: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As the API answers it."""
        return {"paused_at": iso(self.paused_at), "author": self.author, "reason": self.reason}


def save_silence(con: duckdb.DuckDBPyConnection, s: Silence) -> None:
    """Insert a silence, or replace it (an expiry moves ends_at)."""
    con.execute(
        "INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?, ?, ?, ?)",
        [s.id, [str(m) for m in s.matchers], utc(s.starts_at), utc(s.ends_at), s.reason, s.author, utc(s.created_at)],
    )


def load_silences(con: duckdb.DuckDBPyConnection, since: float) -> list[Silence]:
    """Silences that end after since, oldest first."""
    rows = con.execute(
        "SELECT id, matchers, epoch(starts_at), epoch(ends_at), reason, author, epoch(created_at) FROM silences"
        " WHERE ends_at > ? ORDER BY created_at",
        [utc(since)],
    ).fetchall()
    return [Silence(row[0], tuple(Matcher.parse(m) for m in row[1]), *row[2:]) for row in rows]


def save_pause(con: duckdb.DuckDBPyConnection, p: Pause) -> None:
    """Mark a check paused."""
    con.execute("INSERT OR REPLACE INTO paused_checks VALUES (?, ?, ?, ?)", [p.check, utc(p.paused_at), p.author, p.reason])


def drop_pause(con: duckdb.DuckDBPyConnection, check: str) -> None:
    """A check runs again."""
    con.execute("DELETE FROM paused_checks WHERE check_name = ?", [check])


def load_pauses(con: duckdb.DuckDBPyConnection) -> dict[str, Pause]:
    """Every paused check."""
    rows = con.execute("SELECT check_name, epoch(paused_at), author, reason FROM paused_checks").fetchall()
    return {row[0]: Pause(*row) for row in rows}


def save_ack(con: duckdb.DuckDBPyConnection, incident: str, at: float, by: str | None) -> None:
    """An incident was acknowledged."""
    con.execute("UPDATE incidents SET acked_at = ?, acked_by = ? WHERE id = ?", [utc(at), by, incident])
