"""Reports that cannot be misread, against a real DuckDB file: full check names in the table however
long (never cut into a collision), `--sql` over the window the header names (`all_results` for
everything), the same booleans in every format, and an unknown `--check` refused with a suggestion."""

from __future__ import annotations

import json

import duckdb
import pytest

from pulse_agent.cli import main
from pulse_agent.report import Report, ReportRequest, build_report, render
from pulse_agent.result import Result
from pulse_agent.store import ResultStore
from pulse_agent.store.sql_window import windowed_sql
from tests.conftest import run_cli

T0 = 1_790_000_000.0
NAMES = ["tls-selfsigned", "tls-selfsigned-strict", "a-very-long-check-name-that-goes-on-and-on-past-forty-chars"]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "p.duckdb"
    store = ResultStore(path)
    for name in NAMES:
        for i in range(10):  # one run a minute from T0; the 10th of each check fails
            store.submit(
                Result(name, T0 + 60 * i, i != 9, status_code=200, response_time_ms=10.0 + i, error_kind=None if i != 9 else "status")
            )
    store.close()
    return path


def test_the_table_shows_every_name_whole_at_any_width(db):
    with duckdb.connect(str(db), read_only=True) as con:
        report = build_report(con, ReportRequest(T0, T0 + 3600))
    for width in (40, 80, 200):
        table = render(report, "table", width)
        words = {line.split()[0] for line in table.splitlines()[2:] if line.strip()}
        assert set(NAMES) <= words, (width, table)  # whole, each its own
        assert not any("~" in line for line in table.splitlines())
    narrow, wide = render(report, "table", 80).splitlines(), render(report, "table", 200).splitlines()
    assert all(len(line) <= 80 for line in narrow)  # the long name took a line of its own, figures below
    long_at = narrow.index(NAMES[2])
    assert narrow[long_at + 1].split()[:2] == ["10", "90.000"]
    assert len(wide) == 2 + len(NAMES) and any(line.startswith(NAMES[2] + "  ") for line in wide)  # room: one line each


def test_sql_counts_the_window_the_header_names_and_all_results_counts_everything(db):
    def sql(query: str, start: float, end: float) -> list[dict]:
        with duckdb.connect(str(db), read_only=True) as con:
            return build_report(con, ReportRequest(start, end, sql=query)).rows

    assert sql("SELECT count(*) AS n FROM results", T0, T0 + 180) == [{"n": 9}]  # 3 minutes x 3 checks
    assert sql("SELECT count(*) AS n FROM all_results", T0, T0 + 180) == [{"n": 30}]
    # The user's own WITH, comments before it, and a CTE that reads both.
    q = "-- mine\n/* note */ WITH f AS (SELECT * FROM results WHERE NOT ok) SELECT (SELECT count(*) FROM f) AS failed, (SELECT count(*) FROM all_results) AS every"
    assert sql(q, T0 + 500, T0 + 600) == [{"failed": 3, "every": 30}]
    proc = run_cli("report", "--db", str(db), "--from", "2026-09-21T12:00:00Z", "--to", "2026-09-21T12:01:00Z",
                   "--sql", "SELECT count(*) AS n FROM results", "--format", "csv")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["n", "0"]  # that minute has no run: the header's window, not all time
    assert windowed_sql("with x as (select 1) select 2", 0, 1).startswith("WITH results AS (")


def test_booleans_read_the_same_in_every_format():
    report = Report("sql", T0, T0 + 60, ("ok", "degraded", "n"), [{"ok": True, "degraded": False, "n": 1}])
    assert json.loads(render(report, "json"))["rows"] == [{"ok": True, "degraded": False, "n": 1}]
    assert render(report, "csv").splitlines() == ["ok,degraded,n", "true,false,1"]
    assert "| true | false | 1 |" in render(report, "markdown")
    assert render(report, "table").splitlines()[-1].split() == ["true", "false", "1"]


def test_an_unknown_check_is_exit_2_with_did_you_mean(db, tmp_path, capsys):
    window = ["--from", "2026-09-21T00:00:00Z", "--to", "2026-09-22T00:00:00Z"]
    assert main(["report", "--db", str(db), *window, "--check", "tls-selfsigned-strikt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pulse-agent report: no check named 'tls-selfsigned-strikt'") and "did you mean 'tls-selfsigned-strict'" in err
    assert main(["report", "--db", str(db), *window, "--check", "zzz", "--incidents"]) == 2
    assert "known checks: a-very-long" in capsys.readouterr().err
    # A configured check that never ran is no error: it simply has no results.
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nagent: {{database: '{db}'}}\nchecks:\n  - {{name: brand-new, url: 'http://127.0.0.1:1/'}}\n")
    assert main(["report", "-c", str(cfg), *window, "--check", "brand-new"]) == 0
    assert "(no results in this window)" in capsys.readouterr().out
    # A check known only from the stored history (removed from the config) is reported.
    assert main(["report", "-c", str(cfg), *window, "--check", "tls-selfsigned", "--format", "json"]) == 0
    assert [r["runs"] for r in json.loads(capsys.readouterr().out)["rows"]] == [10]


async def test_through_a_running_agent_an_unknown_check_is_404_and_exit_2(db, tmp_path):
    import asyncio

    import httpx

    from pulse_agent.agent import Agent, RunOptions
    from pulse_agent.clock import ManualClock
    from pulse_agent.config import load_config
    from tests.test_api import validate

    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nagent: {{database: '{db}', listen: '127.0.0.1:0'}}\n")
    agent = Agent(load_config(cfg), RunOptions(watch=False), clock=ManualClock(T0 + 7200))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    try:
        url = f"http://127.0.0.1:{agent.port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            answer = await client.post("/api/v1/report", json={"start": T0, "end": T0 + 3600, "checks": ["tls-selfsigned-strikt"]})
        cli = await asyncio.to_thread(run_cli, "report", "--agent", url, "--check", "tls-selfsigned-strikt", "--since", "3650d")
    finally:
        stop.set()
        assert await task == 0
    assert answer.status_code == 404 and "did you mean 'tls-selfsigned-strict'" in answer.json()["error"]
    validate(answer.json(), "/api/v1/report", "post", 404)
    assert cli.returncode == 2 and "did you mean 'tls-selfsigned-strict'" in cli.stderr
