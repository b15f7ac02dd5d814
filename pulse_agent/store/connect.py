"""Open a DuckDB file, with every failure as one line naming the file (no asyncio or threads here:
`report` and `export` open the file without importing the agent's writer)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

import duckdb


class StoreError(Exception):
    """The database cannot be opened or used; the message names the file and the reason."""


class StoreClosed(Exception):
    """The database is not open (starting, stopping, or opened again): queries cannot be answered now."""


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


# The agent lets go of the file for a moment now and then (store/db.py replaces its DuckDB instance), and
# DuckDB's own lock goes with it; this one stays: an flock on FILE.lock, held by the agent's store for its
# whole life, which `report`, `export` and `rules test` look at before opening the file themselves.


def agent_lock_path(path: str | Path) -> Path:
    """Where the agent holding the database at path says so."""
    return Path(f"{path}.lock")


def hold(path: str | Path) -> int | None:
    """Take the agent's lock of the database at path: the descriptor holding it (close it to let go), or
    None when it cannot be taken (a directory that cannot be written, or the lock held: then DuckDB's own
    lock of the file decides, as without this one)."""
    try:
        fd = os.open(agent_lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def held_by_agent(path: str | Path) -> bool:
    """Whether a running agent holds the database at path (its lock), even while it has let go of the file."""
    try:
        fd = os.open(agent_lock_path(path), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # no lock file (no agent ever ran here), or one we cannot read: DuckDB's lock decides
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing lets go of the shared lock too
    return False
