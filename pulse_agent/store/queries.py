"""Read queries over the stored history, answering in JSON-ready rows (timestamps as ISO-8601 UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from pulse_agent.result import iso
from pulse_agent.store.db import utc

RESULT_COLUMNS = ("ts", "check_name", "ok", "degraded", "status_code", "response_time_ms", "error_kind", "error", "attempts",
                  "scheduled_ts", "dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "cert_expires", "maintenance")  # fmt: skip
INCIDENT_COLUMNS = (
    "id",
    "check_name",
    "opened_at",
    "resolved_at",
    "first_error_kind",
    "first_error",
    "last_notified_at",
    "notifications_sent",
)


def results(con: duckdb.DuckDBPyConnection, check: str, since: float | None, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` results of check at or after since, newest first."""
    sql = f"SELECT {', '.join(RESULT_COLUMNS)} FROM results WHERE check_name = ?"
    params: list[object] = [check]
    if since is not None:
        sql += " AND ts >= ?"
        params.append(utc(since))
    sql += " ORDER BY ts DESC LIMIT ?"
    return _rows(con.execute(sql, [*params, limit]))


def incidents(con: duckdb.DuckDBPyConnection, *, open_only: bool, check: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` incidents (only open ones, of one check, when asked), newest first."""
    where = ["resolved_at IS NULL"] if open_only else []
    params: list[object] = []
    if check is not None:
        where.append("check_name = ?")
        params.append(check)
    sql = f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY opened_at DESC LIMIT ?"
    return _rows(con.execute(sql, [*params, limit]))


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [{n: _json(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _json(value: object) -> object:
    return iso(value.timestamp()) if isinstance(value, datetime) else value
