"""`pulse-agent report`: what to ask (ReportRequest), the answer (Report), and its formats.

The answer is computed by one function over a DuckDB connection, whichever way the data is
reached (the file, a running agent's API, Parquet exports), so every path answers the same.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from pulse_agent.alerts.template import human_duration
from pulse_agent.result import iso
from pulse_agent.store import queries
from pulse_agent.store.sandbox import DEFAULT_LIMITS, Limits, QueryRefused, run_select
from pulse_agent.store.sql_window import windowed_sql

WIDTH = 80  # the table format fits a terminal this wide


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """One question: a window, which checks (none: all), and the view."""

    start: float
    end: float
    checks: tuple[str, ...] = ()
    by: str | None = None  # "hour" or "day": a time series
    incidents: bool = False  # the incident list
    sql: str | None = None  # a read-only query instead
    slos: dict[str, float] = field(default_factory=dict)  # check -> objective in percent
    known: tuple[str, ...] = ()  # the config's check names: asking for one that never ran is no error

    def to_json(self) -> dict[str, Any]:
        """As sent to a running agent."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> ReportRequest:
        """From a running agent's request body; ValueError naming the first malformed field."""
        if not isinstance(data, dict):
            raise ValueError("malformed report request: give a JSON object")
        start, end = epoch_field(data, "start"), epoch_field(data, "end")
        if start >= end:
            raise ValueError("malformed report request: start must be before end")
        checks = data.get("checks") or []
        if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
            raise ValueError("malformed report request: checks must be a list of check names")
        by, sql, incidents, slos = data.get("by"), data.get("sql"), data.get("incidents", False), data.get("slos") or {}
        if by not in (None, "hour", "day"):
            raise ValueError("malformed report request: by must be 'hour' or 'day'")
        if not isinstance(incidents, bool):
            raise ValueError("malformed report request: incidents must be true or false")
        if sql is not None and not isinstance(sql, str):
            raise ValueError("malformed report request: sql must be a string")
        if not isinstance(slos, dict) or not all(_finite(v) and 0 <= v <= 100 for v in slos.values()):
            raise ValueError("malformed report request: slos must map check names to objectives from 0 to 100")
        known = data.get("known") or []
        if not isinstance(known, list) or not all(isinstance(c, str) for c in known):
            raise ValueError("malformed report request: known must be a list of check names")
        return cls(start, end, tuple(checks), by, incidents, sql, {str(k): float(v) for k, v in slos.items()}, tuple(known))


def epoch_field(data: dict[str, Any], key: str) -> float:
    """data[key] as epoch seconds between 1970 and 9999; ValueError naming key otherwise."""
    value = data.get(key)
    if not isinstance(value, int | float) or not _finite(value) or not 0 <= value <= MAX_EPOCH:
        raise ValueError(f"malformed request: {key} must be a number of seconds since 1970 (up to year 9999), not {value!r}"[:200])
    return float(value)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


MAX_EPOCH = 253_402_300_799.0  # 9999-12-31T23:59:59Z


@dataclass(frozen=True, slots=True)
class Report:
    """An answer: which view, its columns, and rows of plain JSON values."""

    kind: str  # summary, series, incidents, sql
    start: float
    end: float
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (also what the agent's API answers)."""
        return {"kind": self.kind, "from": iso(self.start), "to": iso(self.end), "columns": list(self.columns), "rows": self.rows}

    @classmethod
    def from_json(cls, data: dict[str, Any], start: float, end: float) -> Report:
        """From an agent's answer."""
        return cls(data["kind"], start, end, tuple(data["columns"]), data["rows"])


class ReportError(Exception):
    """The data cannot be reached, or the question was refused; the message says why."""


class UnknownCheck(ReportError):
    """--check names a check that neither the config nor the data knows; the message suggests one."""


def answer(con: duckdb.DuckDBPyConnection, request: ReportRequest, limits: Limits = DEFAULT_LIMITS) -> Report:
    """build_report, with a refused or failing query as a ReportError (the CLI and the API say the same)."""
    try:
        return build_report(con, request, limits)
    except QueryRefused as exc:
        raise ReportError(f"query refused: {exc}") from None
    except duckdb.Error as exc:
        raise ReportError(f"query failed: {str(exc).splitlines()[0]}") from None


def build_report(con: duckdb.DuckDBPyConnection, request: ReportRequest, limits: Limits = DEFAULT_LIMITS) -> Report:
    """Answer request from the tables reachable through con; user SQL runs in the sandbox (QueryRefused)."""
    checks = list(request.checks)
    _refuse_unknown(con, checks, request.known)
    if request.sql is not None:
        columns, found = run_select(con, windowed_sql(request.sql, request.start, request.end), None, limits)
        return Report("sql", request.start, request.end, tuple(columns), queries.json_rows(columns, found))
    if request.incidents:
        rows = queries.incident_list(con, request.start, request.end, checks)
        kind = "incidents"
    elif request.by is not None:
        rows = queries.series(con, request.start, request.end, checks, request.by)
        kind = "series"
    else:
        rows = [_with_slo(row, request.slos.get(row["check_name"])) for row in queries.summary(con, request.start, request.end, checks)]
        kind = "summary"
    return Report(kind, request.start, request.end, tuple(rows[0]) if rows else _EMPTY[kind], rows)


def _refuse_unknown(con: duckdb.DuckDBPyConnection, checks: list[str], known: tuple[str, ...]) -> None:
    """UnknownCheck for the first of checks that is neither configured nor in the data, with the
    closest names ("did you mean") from both."""
    unsure = [c for c in checks if c not in known]
    if not unsure:
        return
    seen = set(queries.check_names(con, unsure))
    missing = [c for c in unsure if c not in seen]
    if missing:
        every = sorted(set(known) | set(queries.check_names(con, None)))
        close = difflib.get_close_matches(missing[0], every, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else f"; known checks: {', '.join(every[:10]) or 'none'}"
        raise UnknownCheck(f"no check named {missing[0]!r} in the config or the stored history{hint}")


_EMPTY = {
    "summary": ("check_name", "runs", "uptime_pct"),
    "series": ("bucket", "check_name", "runs", "uptime_pct"),
    "incidents": ("check_name", "incident", "opened_at", "resolved_at", "duration_s"),
}


def _with_slo(row: dict[str, Any], objective: float | None) -> dict[str, Any]:
    """SLO attainment: met or not, and how much of the error budget (allowed failures) is left."""
    met = budget_left = None
    if objective is not None and row["runs"]:
        met = row["uptime_pct"] >= objective
        allowed = (100.0 - objective) / 100.0 * row["runs"]
        budget_left = round(100.0 * (1 - row["failures"] / allowed), 2) if allowed > 0 else (100.0 if row["failures"] == 0 else 0.0)
    return {**row, "slo_objective_pct": objective, "slo_met": met, "error_budget_left_pct": budget_left}


def render(report: Report, fmt: str, width: int = WIDTH) -> str:
    """report as table (fitting width columns where names allow), json, csv or markdown."""
    if fmt == "json":
        return _json_lines(report.to_json())
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(report.columns)
        writer.writerows([_text(row.get(c)) for c in report.columns] for row in report.rows)
        return out.getvalue()
    columns, cells = _view(report)
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    return _table(columns, cells, report, width)


def _json_lines(document: dict[str, Any]) -> str:
    """The JSON document with a row per line: readable and grep-able, and encoded by json's C encoder
    (indent= takes the pure-Python one, which costs seconds for 100,000 rows)."""
    rows = document["rows"]
    head = json.dumps({k: v for k, v in document.items() if k != "rows"})[:-1]
    body = ",\n".join(json.dumps(row) for row in rows)
    return f'{head}, "rows": [' + (f"\n{body}\n" if rows else "") + "]}\n"


def _text(value: Any) -> str:
    """A cell of csv: dicts as 'k:v k:v', None as empty, booleans as in JSON (true/false)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def _view(report: Report) -> tuple[list[str], list[list[str]]]:
    """The columns people read (all of them for sql), formatted."""
    if report.kind == "summary":
        columns = ["check", "runs", "uptime%", "p50ms", "p95ms", "p99ms", "fails", "inc", "down", "slo"]
        cells = [[r["check_name"], str(r["runs"]), _pct(r["uptime_pct"]), _ms(r["p50_ms"]), _ms(r["p95_ms"]), _ms(r["p99_ms"]),
                  _fails(r), str(r["incidents"]), _dur(r["downtime_s"]), _slo(r)] for r in report.rows]  # fmt: skip
    elif report.kind == "series":
        columns = ["bucket", "check", "runs", "uptime%", "p95ms", "fails"]
        cells = [[_ts(r["bucket"]), r["check_name"], str(r["runs"]), _pct(r["uptime_pct"]), _ms(r["p95_ms"]), str(r["failures"])]
                 for r in report.rows]  # fmt: skip
    elif report.kind == "incidents":
        columns = ["check", "opened", "resolved", "length", "first error", "acked by"]
        cells = [[r["check_name"], _ts(r["opened_at"]), _ts(r["resolved_at"]) if r["resolved_at"] else "open", _dur(r["duration_s"]),
                  r["first_error_kind"] or "-", r.get("acked_by") or ("yes" if r.get("acked_at") else "-")]
                 for r in report.rows]  # fmt: skip
    else:
        columns = list(report.columns)
        cells = [[_text(r.get(c)) for c in columns] for r in report.rows]
    return columns, cells


def _table(columns: list[str], cells: list[list[str]], report: Report, width: int) -> str:
    """Aligned columns. Names are never cut (two names must never look alike): when the table
    would be wider than width, a longer name goes on a line of its own, its figures below it."""
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    rest = sum(widths[1:]) + 2 * (len(widths) - 1)
    widths[0] = max(len(columns[0]), min(widths[0], width - rest))
    lines = [f"{report.kind} {iso(report.start)} .. {iso(report.end)}"]
    for row in [columns, *cells]:
        if len(row[0]) > widths[0]:
            lines.append(row[0])
            row = ["", *row[1:]]
        parts = [v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
    if not cells:
        lines.append("(no results in this window)")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _dur(seconds: float | None) -> str:
    return "-" if not seconds else human_duration(seconds)


def _ts(value: str | None) -> str:
    return "-" if value is None else value[:16].replace("T", " ")


def _fails(row: dict[str, Any]) -> str:
    kinds = row.get("failures_by_kind") or {}
    top = next(iter(kinds), None)
    return str(row["failures"]) + (f" {top}" if top else "")


def _slo(row: dict[str, Any]) -> str:
    if row.get("slo_objective_pct") is None:
        return "-"
    return f"{row['slo_objective_pct']:g} {'ok' if row['slo_met'] else 'MISS'}"
