"""Open a DuckDB file, with every failure as one line naming the file (no asyncio or threads here:
`report` and `export` open the file without importing the agent's writer)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb


class StoreError(Exception):
    """The database cannot be opened or used; the message names the file and the reason."""


def open_database(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Connect to the DuckDB file, turning failures into a one-line StoreError."""
    file = Path(path)
    if not file.parent.exists():
        raise StoreError(
            f"cannot open database {str(file)!r}: directory {str(file.parent)!r} does not exist; create it or set agent.database / --db"
        )
    try:
        con = duckdb.connect(str(file), read_only=read_only)
        con.execute("SET enable_progress_bar = false")  # long queries would draw on the terminal
        return con
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = re.search(r"PID (\d+)", text)
            holder = f" (PID {pid.group(1)})" if pid else ""
            reason = f"it is locked by another process{holder}, probably another pulse-agent"
            raise StoreError(f"cannot open database {str(file)!r}: {reason}") from None
        raise StoreError(f"cannot open database {str(file)!r}: {last_line(text)}") from None
    except duckdb.Error as exc:
        raise StoreError(f"cannot open database {str(file)!r}: {last_line(str(exc))}") from None


def last_line(text: str) -> str:
    """The last non-blank line of an error message (DuckDB puts the reason there)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
