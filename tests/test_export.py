"""Exports are idempotent and atomic, against a real DuckDB file and the Parquet files it exports:
overlapping windows exported again and again, a partial day exported before and after it grows,
an export killed midway (a real process, SIGKILL), and a fleet report that counts each result once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pulse_agent.store.export import days_of
from pulse_agent.store.migrations import migrate
from tests.conftest import run_cli

D0 = datetime.fromisoformat("2026-11-01T00:00:00+00:00").timestamp()
DAY = 86400.0


def fill(path: Path, days: int, per_day: int, first_day: int = 0) -> None:
    """per_day results a day over `days` days of three checks (every 13th fails), an incident a day
    (every other one resolved), a config version every 5th day."""
    with duckdb.connect(str(path)) as con:
        migrate(con)
        step = DAY / per_day
        con.execute(
            f"""INSERT INTO results (ts, check_name, ok, degraded, status_code, response_time_ms, error_kind, attempts, maintenance)
            SELECT to_timestamp({D0 + first_day * DAY} + i * {step}), 'check-' || (i % 3), i % 13 <> 0, false, 200,
                   10 + i % 90, CASE WHEN i % 13 = 0 THEN 'status' END, 1, false
            FROM range({days * per_day}) t(i)"""
        )
        con.execute(
            f"""INSERT INTO incidents (id, check_name, opened_at, resolved_at, first_error_kind, first_error, last_notified_at,
                   notifications_sent) SELECT 'check-0@' || (d + {first_day}), 'check-0', to_timestamp({D0} + (d + {first_day}) * {DAY} + 3600),
                   CASE WHEN d % 2 = 0 THEN to_timestamp({D0} + (d + {first_day}) * {DAY} + 7200) END, 'status', '503',
                   to_timestamp({D0} + (d + {first_day}) * {DAY} + 3600), 1
            FROM range({days}) t(d)"""
        )
        con.execute(
            f"""INSERT INTO config_versions SELECT to_timestamp({D0} + (d + {first_day}) * {DAY} + 60), 'digest-' || d, 'pulse.yaml',
                   'file', 3, [], [], [], 3 FROM range(0, {days}, 5) t(d)"""
        )


def export(db: Path, out: Path, since: str, to: str, agent: str = "agent-a") -> subprocess.CompletedProcess[str]:
    proc = run_cli("export", "--db", str(db), "--out", str(out), "--agent-name", agent, "--since", since, "--to", to)
    assert proc.returncode == 0, proc.stderr
    return proc


def fleet(out: Path, *args: str) -> list[dict]:
    proc = run_cli("report", "--from-parquet", f"{out}/**/*.parquet", "--from", "2026-10-01T00:00:00Z", "--to", "2027-01-01T00:00:00Z",
                   "--format", "json", *args)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["rows"]


def db_counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT check_name, count(*) FROM results GROUP BY 1").fetchall())


def digests(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}


def test_days_of_a_window_are_whole_utc_days():
    assert days_of(D0 + 3600, D0 + 3600 + 1) == ["2026-11-01"]
    assert days_of(D0 - 1, D0 + DAY) == ["2026-10-31", "2026-11-01"]  # the end is exclusive
    assert days_of(D0, D0 + 3 * DAY + 5) == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]


def test_overlapping_exports_give_the_same_files_and_count_each_result_once(tmp_path):
    db, out = tmp_path / "p.duckdb", tmp_path / "exports"
    fill(db, days=6, per_day=2000)
    export(db, out, "3d", "2026-11-04T12:00:00Z")  # days 1-4 (whole days: the window touches them)
    first = digests(out)
    export(db, out, "3d", "2026-11-04T12:00:00Z")  # the same window again: byte for byte the same files
    assert digests(out) == first
    export(db, out, "2d", "2026-11-07T00:00:00Z")  # overlaps nothing but adds days 5-6
    export(db, out, "6d", "2026-11-07T00:00:00Z")  # overlaps everything
    export(db, out, "1d", "2026-11-03T06:00:00Z")  # a partial window inside an exported day
    assert {k: v for k, v in digests(out).items() if k in first} == first
    expected = [f"date=2026-11-0{d}/{t}-agent-a.parquet" for d in range(1, 7) for t in ("incidents", "results")]
    expected += [f"date=2026-11-0{d}/config_versions-agent-a.parquet" for d in (1, 6)]
    assert sorted(digests(out)) == sorted(expected)  # one file per table, agent and day
    assert {r["check_name"]: r["runs"] for r in fleet(out)} == db_counts(db)  # 12,000 results, each once
    incidents = fleet(out, "--incidents")
    assert len(incidents) == 6 and [i["resolved_at"] is None for i in incidents] == [False, True] * 3
    [(versions,)] = [tuple(r.values()) for r in fleet(out, "--sql", "SELECT count(*) AS n FROM config_versions")]
    assert versions == 2
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_partial_day_is_replaced_never_duplicated(tmp_path):
    db, out = tmp_path / "p.duckdb", tmp_path / "exports"
    fill(db, days=1, per_day=100)
    export(db, out, "1h", "2026-11-01T12:00:00Z")
    assert sum(r["runs"] for r in fleet(out)) == 100
    with duckdb.connect(str(db)) as con:  # the day goes on: 50 more runs, one more incident
        con.execute(
            f"""INSERT INTO results (ts, check_name, ok, degraded, attempts, maintenance)
            SELECT to_timestamp({D0} + 80000 + i), 'check-9', true, false, 1, false FROM range(50) t(i)"""
        )
        con.execute("UPDATE incidents SET resolved_at = to_timestamp(?) WHERE resolved_at IS NULL", [D0 + 80000])
    export(db, out, "1h", "2026-11-02T00:00:00Z")
    assert sum(r["runs"] for r in fleet(out)) == 150 and {r["check_name"]: r["runs"] for r in fleet(out)} == db_counts(db)
    assert len(list(out.rglob("results-*.parquet"))) == 1


def test_exports_of_many_agents_and_older_exports_count_each_result_once(tmp_path):
    a, b, out = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "exports"
    fill(a, days=2, per_day=300)
    fill(b, days=2, per_day=200, first_day=1)
    export(a, out, "2d", "2026-11-03T00:00:00Z", agent="agent-a")
    export(b, out, "3d", "2026-11-04T00:00:00Z", agent="agent-b")
    # An export made the old way (uuid file names) of the same rows, left beside the new ones.
    with duckdb.connect(str(a), read_only=True) as con:
        (out / "date=2026-11-01").mkdir(exist_ok=True)
        con.execute(
            f"COPY (SELECT *, 'agent-a' AS agent FROM results) TO '{out}/date=2026-11-01/results_0123abcd.parquet' (FORMAT parquet)"
        )
    runs = {r["check_name"]: r["runs"] for r in fleet(out)}
    expected = {k: db_counts(a)[k] + db_counts(b)[k] for k in db_counts(a)}
    assert runs == expected  # agent-a's 600 and agent-b's 400, each once
    per_agent = fleet(out, "--sql", "SELECT agent, count(*) AS n FROM all_results GROUP BY 1 ORDER BY 1")
    assert per_agent == [{"agent": "agent-a", "n": 600}, {"agent": "agent-b", "n": 400}]


def test_an_export_killed_midway_leaves_whole_days_and_the_next_one_completes(tmp_path):
    db, out = tmp_path / "p.duckdb", tmp_path / "exports"
    fill(db, days=60, per_day=20_000)  # 1.2 M results: seconds of writing, time to kill it
    cmd = [sys.executable, "-m", "pulse_agent", "export", "--db", str(db), "--out", str(out), "--agent-name", "a",
           "--from", "2026-11-01T00:00:00Z", "--to", "2026-12-31T00:00:00Z"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(out.glob("date=*/results-a.parquet"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = list(out.glob("date=*/results-a.parquet"))
    assert 3 <= len(written) < 60, "the export was not killed midway"
    with duckdb.connect(str(db), read_only=True) as con:
        for f in written:  # every day present is complete: the rename happens only after the whole file is written
            [(n,)] = con.execute(f"SELECT count(*) FROM read_parquet('{f}')").fetchall()
            assert n == 20_000, f
    assert sum(r["runs"] for r in fleet(out)) == 20_000 * len(written)  # a leftover .tmp is never read
    export(db, out, "60d", "2026-12-31T00:00:00Z", agent="a")
    assert {r["check_name"]: r["runs"] for r in fleet(out)} == db_counts(db)
    assert len(list(out.rglob(".*.tmp"))) <= 1  # at most the file being written when it was killed, never read


@pytest.mark.parametrize("name", ["../up", "a/b", "x" * 129, "two words", ".hidden"])
def test_an_agent_name_that_cannot_name_a_file_is_refused(tmp_path, name):
    db = tmp_path / "p.duckdb"
    fill(db, days=1, per_day=10)
    proc = run_cli("export", "--db", str(db), "--out", str(tmp_path / "x"), "--agent-name", name, "--since", "1d")
    assert proc.returncode == 1 and "cannot name export files" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_an_incident_resolved_days_after_it_opened_is_exported_in_its_latest_state(tmp_path):
    db, out = tmp_path / "p.duckdb", tmp_path / "exports"
    fill(db, days=6, per_day=10)
    with duckdb.connect(str(db)) as con:  # one incident opened on day 1, still open
        con.execute("UPDATE incidents SET resolved_at = NULL WHERE id = 'check-0@0'")
    export(db, out, "1d", "2026-11-02T00:00:00Z")
    assert [i["resolved_at"] for i in fleet(out, "--incidents", "--check", "check-0") if i["incident"] == "check-0@0"] == [None]
    with duckdb.connect(str(db)) as con:  # resolved on day 6; the hourly export only covers day 6
        con.execute("UPDATE incidents SET resolved_at = to_timestamp(?) WHERE id = 'check-0@0'", [D0 + 5 * DAY + 100])
    export(db, out, "1h", "2026-11-06T12:00:00Z")
    [incident] = [i for i in fleet(out, "--incidents") if i["incident"] == "check-0@0"]
    assert incident["resolved_at"] == "2026-11-06T00:01:40.000Z"
    assert len(list(out.glob("date=2026-11-01/incidents-*.parquet"))) == 1  # day 1's file was replaced, not added to


def test_a_window_of_centuries_writes_the_days_with_data_and_nothing_else(tmp_path):
    """start 1970, end year 9999 (what an API caller may send): one query per table, not per day."""
    from pulse_agent.store.export import export_parquet

    db, out, again = tmp_path / "p.duckdb", tmp_path / "exports", tmp_path / "again"
    fill(db, days=3, per_day=100)
    export(db, again, "3650d", "2026-11-04T00:00:00Z")
    with duckdb.connect(str(db)) as con:
        done = export_parquet(con, str(out), 0.0, 253_402_300_799.0, "agent-a")
    assert done.results == 300 and done.incidents == 3
    assert sorted(digests(out)) == sorted(digests(again))  # the same files as a window around the data
