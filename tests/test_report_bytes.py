"""Every format of `report` is byte for byte what it was when each row was a Python dict: the rows'
JSON text written by DuckDB and the text formats built column by column are compared with the
rendering of row dicts (kept below as it was) over rows with NULLs, floats, timestamps, unicode and
names needing escapes, raw and rolled up, in every view."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime
from typing import Any

import duckdb
import pytest

from pulse_agent.alerts.template import human_duration
from pulse_agent.report import Report, ReportRequest, build_report, render
from pulse_agent.result import iso
from pulse_agent.store import queries, retention
from pulse_agent.store.connect import open_database
from pulse_agent.store.migrations import migrate
from pulse_agent.store.table import Table

T0 = datetime.fromisoformat("2026-11-20T00:00:00+00:00").timestamp()
HOUR = 3600.0

# Names a user cannot configure but a database (or a Parquet export, or --sql) can hold: quotes,
# backslashes, control characters (some of them written \u001F by DuckDB, \u001f by json), DEL,
# non-ASCII (json writes \u00e9), beyond the BMP (a surrogate pair), csv and markdown specials.
NAMES = ["api", 'quo"te', "back\\slash", "tab\there", "ctl\x1f\x0b\x7f", "caf\u00e9", "emoji\U0001f600", "pipe|comma,",
         "new\nline", "\\u001F-literal", "a-very-long-check-name-that-does-not-fit-the-width-of-a-terminal-at-all"]  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Three hours of results of every name (some rolled up), NULL and odd latencies, incidents."""
    path = tmp_path_factory.mktemp("bytes") / "p.duckdb"
    con = open_database(path)
    migrate(con)
    rows = []
    for n, name in enumerate(NAMES):
        for i in range(180):
            ts = T0 + 60 * i + n
            failed = (i + n) % 7 == 0
            ms = None if failed and i % 2 else [0.1, 1e-5, 12345678.9, 2 / 3, 1e16, 0.0005, 99.95][(i * (n + 1)) % 7] + i
            if name == "api" and i == 5:
                ms = 0.0
            kind = None if not failed else ["timeout", "status", 'caf\u00e9 "kind"', None][(i + n) % 4]
            rows.append((ts, name, not failed, i % 5 == 0, None if failed else 200, ms, kind, "e\u00e9" if failed else None, i % 11 == 0))
    con.executemany(
        "INSERT INTO results (ts, check_name, ok, degraded, status_code, response_time_ms, error_kind, error, attempts, scheduled_ts,"
        " maintenance) VALUES (to_timestamp(?), ?, ?, ?, ?, ?, ?, ?, 1, to_timestamp(?), ?)",
        [(ts, name, ok, deg, code, ms, kind, err, ts, maint) for ts, name, ok, deg, code, ms, kind, err, maint in rows],
    )
    for n, name in enumerate(NAMES):
        con.execute(
            "INSERT INTO incidents (id, check_name, opened_at, resolved_at, first_error_kind, first_error, last_notified_at,"
            " notifications_sent, acked_at, acked_by) VALUES (?, ?, to_timestamp(?), to_timestamp(?), ?, ?, to_timestamp(?), 1,"
            " to_timestamp(?), ?)",
            [f"{name}@1", name, T0 + 100 + n, None if n % 3 == 0 else T0 + 1000.123 + n, None if n % 2 else "status", "x",
             T0, None if n % 4 else T0 + 200, "\u00e9ve" if n % 8 == 0 else None],
        )  # fmt: skip
    retention.roll_up(con, T0 + 2 * HOUR + 1)  # the first two hours rolled up; the third raw
    while retention.fill_prefixes(con):
        pass
    con.close()
    return path


WINDOWS = [(T0 - HOUR, T0 + 4 * HOUR), (T0 + 1799.5, T0 + 2 * HOUR + 1234.5), (T0 + 3 * HOUR, T0 + 4 * HOUR)]  # the last: empty
REQUESTS = [
    {},
    {"slos": {"api": 99.0, 'quo"te': 100.0, "caf\u00e9": 99.95, "emoji\U0001f600": 0.0}},
    {"checks": ("caf\u00e9", "api"), "known": ("caf\u00e9", "api")},
    {"by": "hour"},
    {"by": "day"},
    {"incidents": True},
]


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("ask", REQUESTS)
def test_every_format_is_byte_for_byte_the_dict_rendering(db, window, ask):
    request = ReportRequest(*window, **ask)
    with duckdb.connect(str(db), read_only=True) as con:
        lines, values = build_report(con, request, form="lines"), build_report(con, request, form="values")
    rows = [dict(r) for r in values.rows]  # the row dicts every format used to be rendered from
    assert list(lines.rows) == rows and lines.columns == values.columns
    if window != WINDOWS[-1]:
        assert len(rows) > 1
    old = Report(values.kind, values.start, values.end, values.columns, rows)
    for fmt in ("json", "csv", "table", "markdown"):
        for width in (80, 200):
            expected = old_render(old, fmt, width)
            assert render(lines, fmt, width) == expected, fmt
            assert render(values, fmt, width) == expected, fmt
    assert lines.json_text() == values.json_text() == json.dumps(old.to_json())  # the API's answer


def test_lines_written_by_duckdb_hold_every_escape_json_writes(db):
    with duckdb.connect(str(db), read_only=True) as con:
        table = queries.summary(con, *WINDOWS[0], None, "lines")
        assert {json.loads(line)["check_name"] for line in table.lines()} == set(NAMES)
        assert table.lines() == [json.dumps(row) for row in queries.summary(con, *WINDOWS[0], None, "values")]
    assert all(line.isascii() and "\x7f" not in line for line in table.lines())
    assert any("\\u001f\\u000b\\u007f" in line for line in table.lines())
    assert any("\\ud83d\\ude00" in line for line in table.lines())


@pytest.mark.parametrize("value", [0.0, -0.0, 1e-05, 0.0001, 1e16, 1.2345e16, 123456789.123, 2 / 3, 5e-324, 1.7976931348623157e308,
                                   math.nan, math.inf, -math.inf, 99.9999, -12.5])  # fmt: skip
def test_duckdb_writes_each_float_as_python_does(value):
    with duckdb.connect() as con:
        for kind in ("DOUBLE", "FLOAT") if not math.isfinite(value) or abs(value) < 3e38 else ("DOUBLE",):
            sql = f"SELECT $v::{kind} AS v, NULL::{kind} AS n, $v::{kind} > 0 AS b, NULL::BOOLEAN AS nb, MAP {{'k': $v::{kind}}} AS m"
            got = queries.fetch_table(con, sql, {"v": value}, "lines")
            python = queries.fetch_table(con, sql, {"v": value}, "values")
            assert got.lines() == [json.dumps(dict(python[0]))]


def test_an_answer_of_types_duckdb_cannot_write_as_json_falls_back_to_python():
    with duckdb.connect() as con:
        sql = "SELECT TIMESTAMPTZ '2026-11-20 00:00:00+00' AS ts, 1.5::DECIMAL(5, 2) AS d, MAP {'a': [1]} AS m, 'x' AS s"
        table = queries.fetch_table(con, sql, {}, "lines")
    assert table.lines() == ['{"ts": "2026-11-20T00:00:00.000Z", "d": 1.5, "m": {"a": [1]}, "s": "x"}']


def test_a_table_from_either_form_answers_the_same():
    rows = [{"check_name": "a\u00e9", "runs": 2, "x": None, "m": {"k": 1}}, {"check_name": "b", "runs": 0, "x": 1.5, "m": {}}]
    names = ("check_name", "runs", "x", "m")
    by_values = Table.from_rows(names, rows)
    by_lines = Table(names, None, [json.dumps(r) for r in rows])
    assert by_values == by_lines == rows and len(by_lines) == 2 and by_lines[1] == rows[1]
    assert by_lines.column("x") == [None, 1.5]
    added = [["s", None], [True, None]]
    for table in (by_values, by_lines):
        joined = table.joined(("slo", "met"), added)
        assert joined.lines() == [json.dumps({**r, "slo": s, "met": m}) for r, s, m in zip(rows, *added, strict=True)]
        assert joined.names == (*names, "slo", "met")


@pytest.mark.parametrize("view", ["summary", "hour", "day"])
def test_counts_are_answered_as_bigint_not_the_hugeint_of_their_sums(db, view, monkeypatch):
    """A HUGEINT costs several times a BIGINT to bring to Python; the values are the same."""
    asked: list[tuple[str, dict[str, object]]] = []
    fetch = queries.fetch_table
    monkeypatch.setattr(queries, "fetch_table", lambda con, sql, params, *a: asked.append((sql, params)) or fetch(con, sql, params, *a))
    with duckdb.connect(str(db), read_only=True) as con:
        if view == "summary":
            queries.summary(con, *WINDOWS[0], None)
        else:
            queries.series(con, *WINDOWS[0], None, view)
        [(sql, params)] = asked
        relation = con.sql(sql, params=params)
        types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    counts = ["runs", "failures", *(["ok_runs"] if view == "summary" else [])]
    assert {name: types[name] for name in counts} == dict.fromkeys(counts, "BIGINT")


# The rendering of row dicts, as it was before rows were kept column by column: the reference.
def old_render(report: Report, fmt: str, width: int) -> str:
    if fmt == "json":
        return _old_json_lines(report.to_json())
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


def _old_json_lines(document: dict[str, Any]) -> str:
    rows = document["rows"]
    head = json.dumps({k: v for k, v in document.items() if k != "rows"})[:-1]
    body = ",\n".join(json.dumps(row) for row in rows)
    return f'{head}, "rows": [' + (f"\n{body}\n" if rows else "") + "]}\n"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def _view(report: Report) -> tuple[list[str], list[list[str]]]:
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


def test_the_last_result_of_a_check_that_ran_minutes_hours_or_a_day_before_the_end(tmp_path):
    """The summary's last result is looked up in the window's last minutes, then its last hour or two,
    then the whole window: a check in each tier, one whose latest run is in maintenance."""
    path = tmp_path / "last.duckdb"
    end = T0 + 30 * HOUR
    with open_database(path) as con:
        migrate(con)
        for name, last_ago, ok in (("every-minute", 30.0, True), ("half-hourly", 1900.0, False), ("daily", 20 * HOUR, True)):
            for ago in (last_ago, last_ago + 600, 29 * HOUR):
                con.execute(
                    "INSERT INTO results (ts, check_name, ok, degraded, response_time_ms, attempts, scheduled_ts, maintenance)"
                    " VALUES (to_timestamp(?), ?, ?, false, 5, 1, to_timestamp(?), false)",
                    [end - ago, name, ok if ago == last_ago else not ok, end - ago],
                )
        con.execute(
            "INSERT INTO results (ts, check_name, ok, degraded, response_time_ms, attempts, scheduled_ts, maintenance)"
            " VALUES (to_timestamp(?), 'daily', false, false, 5, 1, to_timestamp(?), true)",
            [end - 10, end - 10],
        )
        retention.roll_up(con, end - 2 * HOUR)
    with duckdb.connect(str(path), read_only=True) as con:
        rows = {r["check_name"]: (r["last_ts"], r["last_ok"]) for r in queries.summary(con, end - 30 * HOUR, end, None)}
    assert rows == {"every-minute": (iso(end - 30), True), "half-hourly": (iso(end - 1900), False), "daily": (iso(end - 20 * HOUR), True)}
