"""The writer's DuckDB instance: opened ready for the agent (migrated, locked down), what it caches,
and the gate that holds off queries while the writer replaces it.

Why replace it: DuckDB keeps every block a checkpoint writes (and every block a report reads) in its
buffer pool until `memory_limit` presses, and that limit is also what reports may use, so the cache
grows with the file. The limit cannot be lowered for a moment either: `lock_configuration` refuses
every later SET. Closing every connection of the instance ends it (DuckDB checkpoints at close) and
frees its blocks; opening the file again starts with an empty cache and the same locked settings.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pulse_agent.store import sandbox
from pulse_agent.store.connect import StoreError, last_line, open_database
from pulse_agent.store.migrations import migrate

CHECKPOINT_THRESHOLD = "4MiB"  # WAL written before DuckDB checkpoints by itself


def prepare(path: Path, *, export_dir: str | None, memory_limit: int) -> duckdb.DuckDBPyConnection:
    """The file opened read-write, migrated and locked down; StoreError naming the file otherwise."""
    con = open_database(path)
    try:
        # DuckDB's default (16 MiB of WAL) keeps about 18 MB of the newest results in memory uncompressed
        # before each checkpoint; 4 MiB bounds that part of an agent's memory to a few MB.
        con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        migrate(con)
        # From here on the engine itself refuses files, extensions and setting changes to every connection.
        allowed = [str(Path(export_dir).absolute())] if export_dir else []
        sandbox.lock_down(con, allowed_dirs=allowed, memory_limit=memory_limit)
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"cannot prepare database {str(path)!r}: {last_line(str(exc))}") from None
    return con


def cached_table_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """Bytes of table blocks con's instance holds in memory (`BASE_TABLE` in duckdb_memory())."""
    [(cached,)] = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'").fetchall()
    return int(cached)


class QueryGate:
    """Queries pass while it is open; the writer shuts it once none is running, and new ones wait
    until it opens again (a report never has its instance closed under it)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._shut = False

    @contextlib.contextmanager
    def passed(self) -> Iterator[None]:
        """Inside: a query is running, and the gate stays open until it leaves."""
        with self._changed:
            while self._shut:
                self._changed.wait()
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def shut(self, wait: float) -> Iterator[bool]:
        """Shut for the block: True once no query runs, or False (and open again) when one still
        ran after wait seconds; new queries wait meanwhile either way."""
        deadline = time.monotonic() + wait
        with self._changed:
            self._shut = True
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            idle = self._running == 0
        try:
            yield idle
        finally:
            with self._changed:
                self._shut = False
                self._changed.notify_all()
