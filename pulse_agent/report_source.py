"""Where `pulse-agent report` finds the data: the DuckDB file read-only, a running agent (when it
holds the file), or Parquet exports. Each path hands the same ReportRequest to build_report."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pulse_agent.report import Report, ReportRequest, build_report
from pulse_agent.store.db import StoreError, open_database


class ReportError(Exception):
    """The data cannot be reached, or the question was refused; the message says why."""


def from_database(path: str, request: ReportRequest) -> Report | None:
    """Answer from the file opened read-only; None when a running agent holds it."""
    if not Path(path).exists():
        raise ReportError(f"no database at {path!r}; pass --db FILE or -c with the agent's config")
    try:
        con = open_database(path, read_only=True)
    except StoreError as exc:
        if "locked" in str(exc):
            return None
        raise ReportError(str(exc)) from None
    with con:
        return _answer(con, request)


def from_parquet(pattern: str, request: ReportRequest) -> Report:
    """Answer from exported Parquet files (of one agent or many): results only, no incidents."""
    with duckdb.connect() as con:
        try:
            source = f"read_parquet({_quote(pattern)}, hive_partitioning = true, union_by_name = true)"
            con.execute(f"CREATE VIEW results AS SELECT * FROM {source}")
            con.execute("SELECT count(*) FROM results").fetchall()
        except duckdb.Error as exc:
            raise ReportError(f"cannot read Parquet files {pattern!r}: {str(exc).splitlines()[0]}") from None
        con.execute(
            "CREATE TABLE incidents (id VARCHAR, check_name VARCHAR, opened_at TIMESTAMPTZ, resolved_at TIMESTAMPTZ,"
            " first_error_kind VARCHAR, first_error VARCHAR, last_notified_at TIMESTAMPTZ, notifications_sent INTEGER)"
        )
        return _answer(con, request)


def from_agent(url: str, request: ReportRequest, token: str | None = None) -> Report:
    """Ask the agent at url (its POST /api/v1/report) with the bearer token from PULSE_API_TOKEN."""
    import httpx

    token = token if token is not None else os.environ.get("PULSE_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.post(f"{url.rstrip('/')}/api/v1/report", json=request.to_json(), headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise ReportError(f"the database is locked by a running agent, and asking it at {url} failed: {exc}") from None
    if answer.status_code == 401:
        raise ReportError(f"the agent at {url} wants its API token: set PULSE_API_TOKEN")
    if answer.status_code != 200:
        try:
            reason = answer.json().get("error", answer.text)
        except ValueError:
            reason = answer.text
        raise ReportError(f"the agent at {url} answered {answer.status_code}: {reason}")
    return Report.from_json(answer.json(), request.start, request.end)


def _answer(con: duckdb.DuckDBPyConnection, request: ReportRequest) -> Report:
    from pulse_agent.store.sql_guard import QueryRefused

    try:
        return build_report(con, request)
    except QueryRefused as exc:
        raise ReportError(f"query refused: {exc}") from None
    except duckdb.Error as exc:
        raise ReportError(f"query failed: {str(exc).splitlines()[0]}") from None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
