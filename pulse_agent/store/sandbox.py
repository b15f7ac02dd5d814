"""User SQL (`report --sql`, POST /api/v1/report, later alert rules): the one place it runs.

Two walls. The engine's: the database is locked down (`lock_down`: no file, network or extension
access outside the operator's export directory, a memory limit, no setting can change after), and
each query runs on a connection opened for it, inside a READ ONLY transaction (DuckDB refuses every
write, even from a data-modifying CTE), interrupted by a timer, with its answer bounded in rows and
bytes inside the engine. The parser's: exactly one SELECT statement, by DuckDB's own parser.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_LIMIT = 1 << 30  # bytes: the whole engine (DuckDB's memory_limit is per database)
MAX_ROWS = 100_000
WATCH_EVERY = 0.05  # seconds between a running query's deadline checks
MAX_BYTES = 64 << 20  # of an answer, counted as text inside the engine before anything reaches Python

Params = Sequence[object] | Mapping[str, object] | None


@dataclass(frozen=True, slots=True)
class Limits:
    """What one user query may use: seconds before it is interrupted, rows and bytes of its answer."""

    timeout: float = DEFAULT_TIMEOUT
    max_rows: int = MAX_ROWS
    max_bytes: int = MAX_BYTES
    stop: threading.Event | None = None  # set: running queries are interrupted (the agent is stopping)


DEFAULT_LIMITS = Limits()


class QueryRefused(ValueError):
    """The SQL is not a single read-only query, or the engine refused it; the message says why."""


class QueryTimeout(QueryRefused):
    """The query ran longer than its limit and was interrupted."""


class QueryStopped(QueryRefused):
    """The query was interrupted because its owner is closing."""


def lock_down(con: duckdb.DuckDBPyConnection, *, allowed_dirs: Sequence[str] = (), memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
    """Engine settings for every connection of con's database, then locked so no query can change them."""
    settings: list[tuple[str, object]] = [
        ("autoinstall_known_extensions", False),
        ("autoload_known_extensions", False),
        ("python_enable_replacements", False),  # no scans of Python variables by name
        ("memory_limit", f"{memory_limit}B"),
        # Spilling still works, but no query may fill the disk the results are written to (default: 90% of it).
        ("max_temp_directory_size", f"{2 * memory_limit}B"),
    ]
    if allowed_dirs:
        # the directory's contents, and the directory itself (COPY ... TO DIR (PARTITION_BY ...) opens it)
        settings.append(("allowed_directories", [d.rstrip("/") + "/" for d in allowed_dirs]))
        settings.append(("allowed_paths", [d.rstrip("/") for d in allowed_dirs]))
    settings += [("enable_external_access", False), ("lock_configuration", True)]
    for name, value in settings:
        con.execute(f"SET {name} = $v", {"v": value})


def one_select(sql: str) -> str:
    """The text of sql's one SELECT statement, by DuckDB's parser; QueryRefused otherwise (the second wall)."""
    try:
        statements = duckdb.extract_statements(sql)
        kinds = [s.type.name for s in statements]
    except ValueError:  # a statement kind DuckDB's Python binding cannot name (UPDATE EXTENSIONS): not a SELECT
        raise QueryRefused("only read-only SELECT queries run, and this is another kind of statement") from None
    except (duckdb.Error, RecursionError) as exc:
        raise QueryRefused(f"cannot parse the query: {_first_line(str(exc))}") from None
    if len(statements) != 1:
        raise QueryRefused(f"give exactly one statement, not {len(statements)}")
    if kinds[0] != "SELECT":
        raise QueryRefused(f"{kinds[0]} statements are refused: only read-only SELECT queries run (results are never changed here)")
    return _without_terminator(statements[0].query)


def _without_terminator(text: str) -> str:
    """text without its closing semicolons and the comments after them, so it nests in parentheses."""
    end = len(text)
    for start, kind in reversed(duckdb.tokenize(text)):
        if kind.name == "comment" or (kind.name == "operator" and text[start] == ";"):
            end = start
        else:
            break
    return text[:end]


@contextlib.contextmanager
def read_only(
    con: duckdb.DuckDBPyConnection, timeout: float | None, stop: threading.Event | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of con's database opened for one piece of work, in a READ ONLY transaction,
    interrupted after timeout seconds (QueryTimeout) or once stop is set (QueryStopped); closed
    (rolled back) after."""
    cur = con.cursor()
    finished = threading.Event()

    def watch() -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not finished.wait(WATCH_EVERY):
            if (stop is not None and stop.is_set()) or (deadline is not None and time.monotonic() >= deadline):
                cur.interrupt()
                return

    watcher = threading.Thread(target=watch, name="pulse-query-watch", daemon=True) if timeout is not None or stop else None
    try:
        cur.execute("BEGIN TRANSACTION READ ONLY")
        if watcher is not None:
            watcher.start()
        try:
            yield cur
        except duckdb.InterruptException:
            if stop is not None and stop.is_set():
                raise QueryStopped("the agent is stopping; the query was stopped") from None
            raise QueryTimeout(f"the query ran longer than {timeout:g}s and was stopped") from None
    finally:
        finished.set()
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        cur.close()


def run_select(
    con: duckdb.DuckDBPyConnection, sql: str, params: Params = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run user SQL (one SELECT) read-only on its own connection of con's database: its column names
    and at most limits.max_rows rows; QueryRefused (QueryTimeout) with the engine's or parser's reason."""
    statement = one_select(sql)
    with read_only(con, limits.timeout, limits.stop) as cur:
        try:
            cur.execute(bounded(statement, limits.max_bytes), params)
            names = [d[0] for d in cur.description or ()]
            return names, cur.fetchmany(limits.max_rows)
        except duckdb.InterruptException:
            raise  # read_only says it timed out
        except duckdb.Error as exc:
            raise QueryRefused(_first_line(str(exc))) from None


def bounded(statement: str, max_bytes: int) -> str:
    """statement wrapped so the engine stops it once its answer, as text, passes max_bytes: measured
    row by row in a streaming window, before a row reaches Python (where DuckDB's memory_limit no
    longer counts it). Column order, names (duplicates made unique) and row order are kept."""
    row = f"pulse_row_{secrets.token_hex(8)}"  # unguessable: no column of the query can shadow it
    return (
        f"SELECT unnest({row}) FROM ("
        f" SELECT {row}, sum(strlen(CAST({row} AS VARCHAR))) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {row}_bytes"
        f" FROM (\n{statement}\n) AS {row})"
        f" WHERE {row}_bytes <= {int(max_bytes)}"
        f" OR error('the answer is larger than {int(max_bytes)} bytes: aggregate, select fewer columns or add a LIMIT')"
    )


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text
