"""`pulse-agent report`: what to ask (ReportRequest), the answer (Report), and its formats.

The answer is computed by one function over a DuckDB connection, whichever way the data is
reached (the file, a running agent's API, Parquet exports), so every path answers the same.
"""

from __future__ import annotations

import csv
import difflib
import io
import itertools
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
from pulse_agent.store.table import Form, Table

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
    """An answer: which view, its columns, and rows of plain JSON values (a Table; row dicts are taken too)."""

    kind: str  # summary, series, incidents, sql
    start: float
    end: float
    columns: tuple[str, ...]
    rows: Table

    def __post_init__(self) -> None:
        if isinstance(self.rows, list):  # row dicts
            object.__setattr__(self, "rows", Table.from_rows(self.columns, self.rows))

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (also what the agent's API answers)."""
        return {**self._head(), "rows": list(self.rows)}

    def json_text(self, row_per_line: bool = False) -> str:
        """json.dumps(self.to_json()), each row's text as DuckDB wrote it (no dict per row); with
        row_per_line, a row per line (readable, grep-able): the `--format json` output."""
        head = json.dumps(self._head())[:-1]
        lines = self.rows.lines()
        if row_per_line:
            body = ",\n".join(lines)
            return f'{head}, "rows": [' + (f"\n{body}\n" if lines else "") + "]}\n"
        return f'{head}, "rows": [' + ", ".join(lines) + "]}"

    def _head(self) -> dict[str, Any]:
        return {"kind": self.kind, "from": iso(self.start), "to": iso(self.end), "columns": list(self.columns)}

    @classmethod
    def from_json(cls, data: dict[str, Any], start: float, end: float) -> Report:
        """From an agent's answer."""
        return cls(data["kind"], start, end, tuple(data["columns"]), Table.from_rows(data["columns"], data["rows"]))


class ReportError(Exception):
    """The data cannot be reached, or the question was refused; the message says why."""


class UnknownCheck(ReportError):
    """--check names a check that neither the config nor the data knows; the message suggests one."""


def answer(con: duckdb.DuckDBPyConnection, request: ReportRequest, limits: Limits = DEFAULT_LIMITS, form: Form = "lines") -> Report:
    """build_report, with a refused or failing query as a ReportError (the CLI and the API say the same)."""
    try:
        return build_report(con, request, limits, form)
    except QueryRefused as exc:
        raise ReportError(f"query refused: {exc}") from None
    except duckdb.Error as exc:
        raise ReportError(f"query failed: {str(exc).splitlines()[0]}") from None


def build_report(con: duckdb.DuckDBPyConnection, request: ReportRequest, limits: Limits = DEFAULT_LIMITS, form: Form = "lines") -> Report:
    """Answer request from the tables reachable through con; user SQL runs in the sandbox (QueryRefused).
    form: what the rows are fetched as, for the format they are wanted in (either serves every format)."""
    checks = list(request.checks)
    _refuse_unknown(con, checks, request.known)
    if request.sql is not None:
        columns, found = run_select(con, windowed_sql(request.sql, request.start, request.end), None, limits)
        return Report("sql", request.start, request.end, tuple(columns), Table.from_rows(columns, queries.json_rows(columns, found)))
    if request.incidents:
        rows = queries.incident_list(con, request.start, request.end, checks, form)
        kind = "incidents"
    elif request.by is not None:
        rows = queries.series(con, request.start, request.end, checks, request.by, form)
        kind = "series"
    else:
        keep = _SLO_INPUTS if request.slos and form == "lines" else ()
        rows = _with_slos(queries.summary(con, request.start, request.end, checks, form, keep), request.slos)
        kind = "summary"
    return Report(kind, request.start, request.end, rows.names if rows else _EMPTY[kind], rows)


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


_SLO_INPUTS = ("check_name", "runs", "failures", "uptime_pct")


def _with_slos(rows: Table, slos: dict[str, float]) -> Table:
    """rows with each check's SLO attainment added: its objective, met or not, and how much of the
    error budget (allowed failures) is left; null for a check without an objective."""
    nothing = [None] * len(rows)
    if not slos or not rows:
        return rows.joined(_SLO_COLUMNS, [nothing, nothing, nothing])
    objectives = [slos.get(name) for name in rows.column("check_name")]
    met: list[bool | None] = list(nothing)
    budget: list[float | None] = list(nothing)
    runs, failures, uptime = rows.column("runs"), rows.column("failures"), rows.column("uptime_pct")
    for i, objective in enumerate(objectives):
        if objective is not None and runs[i]:
            met[i] = uptime[i] >= objective
            allowed = (100.0 - objective) / 100.0 * runs[i]
            budget[i] = round(100.0 * (1 - failures[i] / allowed), 2) if allowed > 0 else (100.0 if failures[i] == 0 else 0.0)
    return rows.joined(_SLO_COLUMNS, [objectives, met, budget])


_SLO_COLUMNS = ("slo_objective_pct", "slo_met", "error_budget_left_pct")


def render(report: Report, fmt: str, width: int = WIDTH) -> str:
    """report as table (fitting width columns where names allow), json, csv or markdown."""
    if fmt == "json":
        return report.json_text(row_per_line=True)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(report.columns)
        writer.writerows(zip(*[_texts(_column(report.rows, c)) for c in report.columns], strict=True))
        return out.getvalue()
    columns, cells = _view(report)
    if fmt == "markdown":
        cells = [[c.replace("|", "\\|") for c in column] if any("|" in c for c in column) else column for column in cells]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in zip(*cells, strict=True)]
        return "\n".join(lines) + "\n"
    return _table(columns, cells, report, width)


def _column(rows: Table, name: str) -> list[Any]:
    """A column's values; None in every row for a column the rows do not have (an older agent's answer)."""
    return rows.column(name) if name in rows.names else [None] * len(rows)


def _texts(values: list[Any]) -> list[str]:
    """_text of each value, by the column's types (one str() per value for numbers and text)."""
    if set(map(type, values)) <= {int, float, str, type(None)}:  # most columns: what _text does, inline
        return ["" if v is None else str(v) for v in values]
    return list(map(_text, values))


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
    """The columns people read (all of them for sql), formatted; cells column by column."""
    rows = report.rows

    def col(name: str) -> list[Any]:
        return _column(rows, name)

    if report.kind == "summary":
        columns = ["check", "runs", "uptime%", "p50ms", "p95ms", "p99ms", "fails", "inc", "down", "slo"]
        cells = [col("check_name"), _texts(col("runs")), _pcts(col("uptime_pct")), _mss(col("p50_ms")),
                 _mss(col("p95_ms")), _mss(col("p99_ms")), list(map(_fails, col("failures"), col("failures_by_kind"))),
                 _texts(col("incidents")), _each(_dur, col("downtime_s")),
                 list(map(_slo, col("slo_objective_pct"), col("slo_met")))]  # fmt: skip
    elif report.kind == "series":
        columns = ["bucket", "check", "runs", "uptime%", "p95ms", "fails"]
        cells = [_each(_ts, col("bucket")), col("check_name"), _texts(col("runs")), _pcts(col("uptime_pct")),
                 _mss(col("p95_ms")), _texts(col("failures"))]  # fmt: skip
    elif report.kind == "incidents":
        columns = ["check", "opened", "resolved", "length", "first error", "acked by"]
        cells = [col("check_name"), _each(_ts, col("opened_at")), [_ts(r) if r else "open" for r in col("resolved_at")],
                 _each(_dur, col("duration_s")), [k or "-" for k in col("first_error_kind")],
                 [by or ("yes" if at else "-") for by, at in zip(col("acked_by"), col("acked_at"), strict=True)]]  # fmt: skip
    else:
        columns = list(report.columns)
        cells = [_texts(col(c)) for c in columns]
    return columns, cells


def _each(format_one: Any, values: list[Any]) -> list[str]:
    return list(map(format_one, values))


def _table(columns: list[str], cells: list[list[str]], report: Report, width: int) -> str:
    """Aligned columns. Names are never cut (two names must never look alike): when the table
    would be wider than width, a longer name goes on a line of its own, its figures below it."""
    widths = [max(len(c), max(map(len, column), default=0)) for c, column in zip(columns, cells, strict=True)]
    rest = sum(widths[1:]) + 2 * (len(widths) - 1)
    widths[0] = max(len(columns[0]), min(widths[0], width - rest))
    line = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [f"{report.kind} {iso(report.start)} .. {iso(report.end)}"]
    rows = zip(*cells, strict=True)
    if len(columns[0]) <= widths[0] and max(map(len, cells[0]), default=0) <= widths[0]:  # no name on a line of its own
        lines += map(str.rstrip, itertools.starmap(line.format, itertools.chain([columns], rows)))
        rows = zip()
    for row in itertools.chain([columns] if len(lines) == 1 else [], rows):
        if len(row[0]) > widths[0]:
            lines.append(row[0])
            row = ["", *row[1:]]
        lines.append(line.format(*row).rstrip())
    if not report.rows:
        lines.append("(no results in this window)")
    return "\n".join(lines) + "\n"


def _pcts(values: list[float | None]) -> list[str]:
    return ["-" if v is None else f"{v:.3f}" for v in values]


def _mss(values: list[float | None]) -> list[str]:
    return ["-" if v is None else f"{v:.1f}" for v in values]


def _dur(seconds: float | None) -> str:
    return "-" if not seconds else human_duration(seconds)


def _ts(value: str | None) -> str:
    return "-" if value is None else value[:16].replace("T", " ")


def _fails(failures: int, kinds: dict[str, int] | None) -> str:
    top = next(iter(kinds or {}), None)
    return str(failures) + (f" {top}" if top else "")


def _slo(objective: float | None, met: bool | None) -> str:
    if objective is None:
        return "-"
    return f"{objective:g} {'ok' if met else 'MISS'}"
