"""Where `pulse-agent report` finds the data: the DuckDB file read-only, a running agent (when it
holds the file), or Parquet exports. Each path hands the same ReportRequest to build_report."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from pulse_agent.listen import agent_url
from pulse_agent.report import Report, ReportError, ReportRequest, UnknownCheck, answer
from pulse_agent.store.connect import StoreError, held_by_agent, open_database
from pulse_agent.store.export import Exported, export_parquet, table_of
from pulse_agent.store.migrations import MIGRATIONS, migrate
from pulse_agent.store.sandbox import DEFAULT_LIMITS, Limits, lock_down
from pulse_agent.store.table import Form

T = TypeVar("T")

__all__ = ["ReportError", "ask_agent", "call_agent", "export", "from_agent", "from_parquet", "local_or_agent"]


def open_read_only(path: str, allowed_dirs: Sequence[str] = ()) -> duckdb.DuckDBPyConnection | None:
    """The file opened read-only and locked down (files only in allowed_dirs); None when a running
    agent holds it (ask the agent then)."""
    if not Path(path).exists():
        raise ReportError(f"no database at {path!r}; pass --db FILE or -c with the agent's config")
    if held_by_agent(path):  # even in the moment the agent has let go of the file (store/db.py)
        return None
    try:
        con = open_database(path, read_only=True)
    except StoreError as exc:
        if "locked" in str(exc):
            return None
        raise ReportError(str(exc)) from None
    try:
        [(version,)] = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
    except duckdb.Error:
        version = 0
    if version < len(MIGRATIONS):  # read-only: the agent migrates the file when it starts
        con.close()
        raise ReportError(
            f"the database {path!r} is from an older pulse-agent (schema {version}, this one reads {len(MIGRATIONS)}): "
            "start the agent on it once (it upgrades the file at start), then ask again"
        )
    lock_down(con, allowed_dirs=allowed_dirs)
    return con


def local_or_agent(
    database: str,
    listen: str,
    local: Callable[[duckdb.DuckDBPyConnection], T],
    remote: Callable[[str], T],
    allowed_dirs: Sequence[str] = (),
) -> tuple[T, str]:
    """local(connection) on the file opened read-only, or, while a running agent holds it (DuckDB
    lets one process open it), remote(agent URL) at agent.listen; the answer and where it came from."""
    con = open_read_only(database, allowed_dirs)
    if con is None:
        url = agent_url(listen)
        return remote(url), f"the agent at {url}"
    with con:
        return local(con), "the database file"


def export(con: duckdb.DuckDBPyConnection, out: str, start: float, end: float, agent: str) -> Exported:
    """export_parquet, with a failure as a ReportError (the CLI and the API say the same)."""
    try:
        return export_parquet(con, out, start, end, agent)
    except (OSError, ValueError, duckdb.Error) as exc:
        raise ReportError(f"export failed: {str(exc).splitlines()[0]}") from None


def from_parquet(pattern: str, request: ReportRequest, limits: Limits = DEFAULT_LIMITS, form: Form = "lines") -> Report:
    """Answer from exported Parquet files (of one agent or many): results, incidents and config
    versions (no rollups). Each result counts once however many exports hold it (by agent, check
    and run start), so any set of overlapping exports answers like the databases they came from."""
    pattern = str(Path(pattern).absolute())
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        migrate(con)  # the agent's (empty) tables, then those exported replaced by the files
        lock_down(con, allowed_dirs=[glob_root(pattern)])
        try:
            files = [f for (f,) in con.execute("SELECT file FROM glob(?) ORDER BY file", [pattern]).fetchall() if f.endswith(".parquet")]
            if not files:
                raise ReportError(f"no Parquet files match {pattern!r}")
            for table, view in _PARQUET_VIEWS.items():
                mine = [f for f in files if table_of(f) == table]
                if mine:  # a table no file holds stays the empty one
                    con.execute(f"DROP TABLE {table}")
                    source = f"read_parquet({_list(mine)}, hive_partitioning = true, union_by_name = true)"
                    con.execute(f"CREATE VIEW {table} AS {view.format(source=source)}")
            con.execute("SELECT count(*) FROM results").fetchall()
        except duckdb.Error as exc:
            raise ReportError(f"cannot read Parquet files {pattern!r}: {str(exc).splitlines()[0]}") from None
        return answer(con, request, limits, form)


def glob_root(pattern: str) -> str:
    """The directory a glob pattern cannot leave: its path up to the first wildcard."""
    head = re.split(r"[*?\[{]", pattern, maxsplit=1)[0]
    return head if head.endswith("/") else str(Path(head).parent)


# One row per key however many files hold it: a result by (agent, check, start); an incident by
# (agent, id), its latest state (resolved, most notified) first.
_PARQUET_VIEWS = {
    "results": "SELECT DISTINCT ON (agent, check_name, ts) * FROM {source}",
    "incidents": "SELECT DISTINCT ON (agent, id) * FROM {source} "
    "ORDER BY agent, id, resolved_at IS NULL, notifications_sent DESC",
    "config_versions": "SELECT DISTINCT * FROM {source}",
}


def from_agent(url: str, request: ReportRequest) -> Report:
    """Ask the agent at url (its POST /api/v1/report) with the bearer token from PULSE_API_TOKEN."""
    return Report.from_json(ask_agent(url, "/api/v1/report", request.to_json()), request.start, request.end)


def ask_agent(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST body to a running agent's API; its JSON answer, or ReportError saying what went wrong."""
    return call_agent(url, "POST", path, body, unreachable="the database is locked by a running agent, and asking it")


def call_agent(
    url: str, method: str, path: str, body: dict[str, Any] | None = None, unreachable: str = "asking the agent"
) -> dict[str, Any]:
    """One request to a running agent's API with the bearer token from PULSE_API_TOKEN; its JSON
    answer (any 2xx), or ReportError saying what went wrong."""
    import httpx

    token = os.environ.get("PULSE_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.request(method, f"{url.rstrip('/')}{path}", json=body, headers=headers, timeout=300)
    except httpx.HTTPError as exc:
        raise ReportError(f"{unreachable} at {url} failed: {exc}") from None
    if answer.status_code == 401:
        raise ReportError(f"the agent at {url} wants its API token: set PULSE_API_TOKEN")
    if answer.status_code == 404 and path == "/api/v1/report":
        raise UnknownCheck(answer.json().get("error", answer.text))
    if not 200 <= answer.status_code < 300:
        try:
            reason = answer.json().get("error", answer.text)
        except ValueError:
            reason = answer.text
        raise ReportError(f"the agent at {url} answered {answer.status_code}: {reason}")
    result: dict[str, Any] = answer.json()
    return result


def _list(files: list[str]) -> str:
    return "[" + ", ".join(_quote(f) for f in files) + "]"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
