"""`pulse-agent report` against hand-computed ground truth, in every format, offline and through a
running agent (identical answers), with write queries refused on both paths."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.cli import main
from pulse_agent.clock import ManualClock
from pulse_agent.config import load_config
from pulse_agent.report import Report, ReportRequest, build_report, render
from pulse_agent.result import Result
from pulse_agent.store import ResultStore
from tests.conftest import free_port, run_cli

ROOT = Path(__file__).resolve().parent.parent

T0 = datetime.fromisoformat("2026-11-20T00:00:00+00:00").timestamp()
HOUR = 3600.0


def history() -> list[Result]:
    """api: 120 runs a minute apart from T0, response i+1 ms; runs 10-14 time out, 50-51 are 503s,
    every 10th is degraded; runs 100-109 ran in a maintenance window (failing). web: 60 ok runs."""
    out = []
    for i in range(120):
        maintenance = 100 <= i < 110
        if 10 <= i < 15:
            r = Result("api", T0 + 60 * i, False, error_kind="timeout", error="no answer in 5s", response_time_ms=None)
        elif 50 <= i < 52 or maintenance:
            r = Result("api", T0 + 60 * i, False, status_code=503, error_kind="status", error="503", response_time_ms=float(i + 1))
        else:
            r = Result("api", T0 + 60 * i, True, degraded=i % 10 == 0, status_code=200, response_time_ms=float(i + 1))
        out.append(Result(**{**{s: getattr(r, s) for s in r.__slots__}, "maintenance": maintenance}))
    out += [Result("web", T0 + 60 * i + 30, True, status_code=200, response_time_ms=5.0) for i in range(60)]
    return out


INCIDENTS = [  # id, check, opened, resolved
    ("api@1", "api", T0 - HOUR, T0 + 600),  # straddles the window start
    ("api@2", "api", T0 + 3000, T0 + 3180),
    ("web@1", "web", T0 + 7000, None),  # still open
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "p.duckdb"
    store = ResultStore(path)
    for r in history():
        store.submit(r)
    store.close()
    with duckdb.connect(str(path)) as con:
        for iid, check, opened, resolved in INCIDENTS:
            con.execute(
                "INSERT INTO incidents (id, check_name, opened_at, resolved_at, first_error_kind, first_error, last_notified_at,"
                " notifications_sent) VALUES (?, ?, to_timestamp(?), to_timestamp(?), 'status', '503', to_timestamp(?), 1)",
                [iid, check, opened, resolved, opened],
            )
        # As the agent leaves it: each check's last event recorded, so a restart replays nothing older.
        con.execute(
            "INSERT INTO alert_state VALUES ('api', to_timestamp(?), false), ('web', to_timestamp(?), false)", [T0 + 3180, T0 + 7000]
        )
    return path


END = T0 + 2 * HOUR  # the window is [T0, T0 + 2h)


def answer(db, **kw) -> list[dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        return build_report(con, ReportRequest(T0, END, **kw)).rows


def test_summary_matches_hand_computed_figures(db):
    api, web = answer(db, slos={"api": 95.0, "web": 99.9})
    counted = [r for r in history() if r.check == "api" and not r.maintenance]
    times = [r.response_time_ms for r in counted if r.response_time_ms is not None]
    q = statistics.quantiles(times, n=100, method="inclusive")
    assert (api["runs"], api["ok_runs"], api["failures"]) == (110, 103, 7)  # maintenance runs are not counted
    assert api["failures_by_kind"] == {"timeout": 5, "status": 2}
    assert api["uptime_pct"] == round(100 * 103 / 110, 4)
    assert api["degraded_pct"] == round(100 * sum(r.degraded for r in counted) / 110, 4)
    assert (api["p50_ms"], api["p95_ms"], api["p99_ms"]) == (round(q[49], 3), round(q[94], 3), round(q[98], 3))
    assert api["max_ms"] == 120.0  # run 119, outside maintenance
    assert (api["incidents"], api["downtime_s"], api["longest_s"]) == (2, 600 + 180, 600)  # the first clipped to the window
    assert api["last_ts"] == "2026-11-20T01:59:00.000Z" and api["last_ok"] is True
    assert (api["slo_met"], api["error_budget_left_pct"]) == (False, round(100 * (1 - 7 / 5.5), 2))
    assert (web["runs"], web["uptime_pct"], web["incidents"], web["downtime_s"]) == (60, 100.0, 1, END - (T0 + 7000))
    assert (web["slo_met"], web["error_budget_left_pct"]) == (True, 100.0)


def test_series_incidents_and_check_filter(db):
    hours = answer(db, by="hour", checks=("api",))
    assert [(h["bucket"], h["runs"], h["failures"]) for h in hours] == [
        ("2026-11-20T00:00:00.000Z", 60, 7),
        ("2026-11-20T01:00:00.000Z", 50, 0),
    ]
    incidents = answer(db, incidents=True)
    assert [(i["incident"], i["duration_s"], i["resolved_at"]) for i in incidents] == [
        ("api@1", 4200.0, "2026-11-20T00:10:00.000Z"),
        ("api@2", 180.0, "2026-11-20T00:53:00.000Z"),
        ("web@1", END - (T0 + 7000), None),
    ]
    assert [r["check_name"] for r in answer(db, checks=("web",))] == ["web"]


def test_formats(db):
    with duckdb.connect(str(db), read_only=True) as con:
        report = build_report(con, ReportRequest(T0, END, slos={"api": 99.9}))
    table = render(report, "table")
    assert all(len(line) <= 80 for line in table.splitlines())
    assert table.splitlines()[1].split() == ["check", "runs", "uptime%", "p50ms", "p95ms", "p99ms", "fails", "inc", "down", "slo"]
    assert table.splitlines()[2].split()[:3] == ["api", "110", "93.636"] and table.splitlines()[2].endswith("99.9 MISS")
    as_json = render(report, "json")
    assert json.loads(as_json) == {**report.to_json(), "rows": report.rows}
    assert [json.loads(line.rstrip(",")) for line in as_json.splitlines()[1:-1]] == report.rows  # a row per line
    empty = Report("summary", T0, END, ("check_name",), [])
    assert json.loads(render(empty, "json"))["rows"] == []
    csv_lines = render(report, "csv").splitlines()
    assert csv_lines[0].startswith("check_name,runs,ok_runs,failures,failures_by_kind,uptime_pct")
    assert ",timeout:5 status:2," in csv_lines[1]
    md = render(report, "markdown").splitlines()
    assert md[0].startswith("| check | runs |") and md[1].startswith("|---|") and len(md) == 4


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM results",
        "DROP TABLE results",
        "COPY results TO '/tmp/x.csv'",
        "ATTACH '/tmp/other.duckdb'",
        "INSTALL httpfs",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT getenv('HOME')",
        "SELECT 1; DELETE FROM results",
        "WITH d AS (DELETE FROM results RETURNING 1) SELECT count(*) FROM d",
        "SELECT * FROM '/etc/passwd' TABLESAMPLE 100%",
        "SELECT * FROM enable_profiling(format='json', save_location='/tmp/pulse-profile-x.txt')",
        "UPDATE EXTENSIONS",
        "SELECT " + "+".join(["1"] * 2000),
    ],
)
def test_writes_and_outside_reads_are_refused_offline(db, tmp_path, sql, capsys):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nagent: {{database: '{db}'}}\n")
    assert main(["report", "-c", str(cfg), "--sql", sql]) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "Traceback" not in err, err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results").fetchall() == [(180,)]


def _report_in_a_child(argv: list[str], modules: tuple[str, ...], cache: Path | None = None) -> dict:
    """main(argv) in a fresh interpreter (cache: its XDG_CACHE_HOME): its exit code, which of modules it
    imported, and its rows."""
    code = (
        "import contextlib, io, json, sys\n"
        "from pulse_agent.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main({argv!r})\n"
        f"loaded = [m for m in {modules!r} if m in sys.modules]\n"
        "from pulse_agent.config_facts import installation\n"  # after the list: what it imports is not the report's
        "print(json.dumps({'rc': rc, 'loaded': loaded, 'rows': json.loads(out.getvalue())['rows'], 'installation': installation()}))\n"
    )
    env = {**os.environ, **({"XDG_CACHE_HOME": str(cache)} if cache else {})}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_named_file_without_a_config_is_reported_without_the_config_or_the_writer(db, tmp_path):
    """No config file and --db: nothing to load, so neither the config package nor the writer's module
    (asyncio, threads) is imported; the answer is the same."""
    argv = ["report", "-c", str(tmp_path / "absent.yaml"), "--db", str(db), "--from", "2026-11-20T00:00:00Z",
            "--to", "2026-11-20T02:00:00Z", "--format", "json"]  # fmt: skip
    got = _report_in_a_child(argv, ("pulse_agent.config", "pulse_agent.store.db", "asyncio"))
    assert got["rc"] == 0 and got["loaded"] == []
    assert got["rows"] == list(answer(db)) and len(got["rows"]) == 2


def test_beside_the_bundled_config_a_report_loads_it_without_what_it_does_not_use(db, tmp_path):
    """The bundled config (intervals, no client certificates) is loaded with the shipped schema validator,
    and neither croniter, ssl nor asyncio (the probes' TLS module) is imported for it; the answer is the same."""
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text((ROOT / "pulse.yaml").read_text())
    argv = ["report", "-c", str(cfg), "--db", str(db), "--from", "2026-11-20T00:00:00Z", "--to", "2026-11-20T02:00:00Z",
            "--format", "json"]  # fmt: skip
    modules = ("pulse_agent.config", "pulse_agent.config.quick_code", "croniter", "ssl", "asyncio")
    got = _report_in_a_child(argv, modules, cache=tmp_path / "cache")
    assert got["rc"] == 0 and got["loaded"] == ["pulse_agent.config", "pulse_agent.config.quick_code"]
    assert got["rows"] == list(answer(db)) and len(got["rows"]) == 2
    # The next report reads what the first remembered of the same text: no validator, no load.
    assert len(list((tmp_path / "cache" / "pulse-agent").glob("*.json.z"))) == 1
    again = _report_in_a_child(argv, modules, cache=tmp_path / "cache")
    assert again["installation"] == got["installation"]
    assert again["rc"] == 0 and again["loaded"] == ["pulse_agent.config"] and again["rows"] == got["rows"]


@pytest.mark.timeout(240)  # many CLI subprocesses: minutes on a loaded 2-core machine
async def test_a_running_agent_answers_exactly_what_the_file_answers(db, tmp_path):
    port = free_port()
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        f"version: 1\nagent: {{database: '{db}', listen: '127.0.0.1:{port}', api_token: 'report-token-0123456789'}}\n"
        "checks:\n  - {name: api, url: 'http://127.0.0.1:1/', labels: {team: core}, slo: {objective: 99.5}, schedule: '@yearly'}\n"
        "  - {name: web, url: 'http://127.0.0.1:1/', schedule: '@yearly'}\n"
    )
    env = {"PULSE_API_TOKEN": "report-token-0123456789"}
    window = ["--from", "2026-11-20T00:00:00Z", "--to", "2026-11-20T02:00:00Z"]
    views = [
        [],
        ["--by", "hour"],
        ["--incidents"],
        ["--label", "team=core"],
        ["--sql", "SELECT check_name, count(*) AS n FROM results GROUP BY 1 ORDER BY 1"],
    ]

    def ask(*extra: str):
        return [await_cli(*view, *extra) for view in views]

    def await_cli(*args: str) -> str:
        proc = run_cli("report", "-c", str(cfg), *window, "--format", "json", *args, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    offline = await asyncio.to_thread(ask)
    agent = Agent(load_config(cfg, env=env), RunOptions(listen=f"127.0.0.1:{port}"), clock=ManualClock(T0 + 3 * HOUR))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    try:
        live = await asyncio.to_thread(ask)
        refused = await asyncio.to_thread(run_cli, "report", "-c", str(cfg), "--sql", "DELETE FROM results", env=env)
        no_token = await asyncio.to_thread(run_cli, "report", "-c", str(cfg), *window)
    finally:
        stop.set()
        assert await task == 0
    # The agent rolled the hours up meanwhile (percentiles then come from sketches): ask the file again.
    assert [json.loads(a)["rows"] for a in live] != [] and live == await asyncio.to_thread(ask)
    assert [json.loads(a)["rows"][0]["runs"] for a in live[:1]] == [json.loads(a)["rows"][0]["runs"] for a in offline[:1]]
    assert json.loads(offline[3])["rows"][0]["slo_objective_pct"] == 99.5 and len(json.loads(offline[3])["rows"]) == 1
    assert refused.returncode == 1 and "answered 400: query refused: DELETE statements are refused" in refused.stderr
    assert no_token.returncode == 1 and "set PULSE_API_TOKEN" in no_token.stderr


def test_export_partitions_by_day_and_a_fleet_is_reported_from_parquet(db, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nagent: {{database: '{db}'}}\n")
    out = tmp_path / "exports"
    window = ["--from", "2026-11-19T00:00:00Z", "--to", "2026-11-21T00:00:00Z"]
    for name in ("agent-a", "agent-b"):  # two agents exporting into one place
        proc = run_cli("export", "-c", str(cfg), "--out", str(out), "--agent-name", name, *window)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"exported 180 results, 3 incidents, 0 config versions in 3 files to {out} (from the database file)"
    assert sorted(p.name for p in out.iterdir()) == ["date=2026-11-19", "date=2026-11-20"]  # an incident opened on the 19th
    fleet = run_cli("report", "--from-parquet", f"{out}/**/*.parquet", *window, "--format", "json")
    assert fleet.returncode == 0, fleet.stderr
    rows = {r["check_name"]: r for r in json.loads(fleet.stdout)["rows"]}
    assert (rows["api"]["runs"], rows["web"]["runs"]) == (220, 120)  # both agents' runs
    per_agent = run_cli("report", "--from-parquet", f"{out}/**/*.parquet", *window, "--format", "csv",
                        "--sql", "SELECT agent, count(*) AS n FROM results GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert per_agent.stdout.splitlines() == ["agent,n", "agent-a,180", "agent-b,180"]


async def test_export_goes_through_the_agent_that_holds_the_file_into_its_export_dir_only(db, tmp_path):
    port = free_port()
    out = tmp_path / "exports"
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nagent: {{database: '{db}', listen: '127.0.0.1:{port}', export_dir: '{out}'}}\n")
    agent = Agent(load_config(cfg), RunOptions(), clock=ManualClock(T0 + 3 * HOUR))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    window = ["--since", "30d", "--to", "2026-11-21T00:00:00Z"]
    try:
        proc = await asyncio.to_thread(run_cli, "export", "-c", str(cfg), "--out", str(out), "--agent-name", "forged", *window)
        elsewhere = await asyncio.to_thread(run_cli, "export", "-c", str(cfg), "--out", str(tmp_path / "elsewhere"), *window)
    finally:
        stop.set()
        assert await task == 0
    assert proc.returncode == 0, proc.stderr
    host = socket.gethostname()
    assert proc.stdout.strip() == (
        f"exported 180 results, 3 incidents, 1 config version in 4 files to {out} (from the agent at http://127.0.0.1:{port})"
    )
    assert sorted(str(p.relative_to(out)) for p in out.glob("date=*/*.parquet")) == [
        f"date=2026-11-19/incidents-{host}.parquet",
        f"date=2026-11-20/config_versions-{host}.parquet",  # the agent's start, at its clock's T0 + 3h
        f"date=2026-11-20/incidents-{host}.parquet",
        f"date=2026-11-20/results-{host}.parquet",
    ]
    assert elsewhere.returncode == 1 and "answered 403: this agent exports only into its agent.export_dir" in elsewhere.stderr
    assert not (tmp_path / "elsewhere").exists()
    names = run_cli("report", "--from-parquet", f"{out}/**/*.parquet", "--format", "csv", "--sql", "SELECT DISTINCT agent FROM all_results")
    assert names.stdout.splitlines() == ["agent", host]  # the agent's name, not the caller's


def test_an_export_that_cannot_write_says_why(db, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["export", "--db", str(db), "--out", str(blocker / "exports"), "--since", "3650d"]) == 1
    assert capsys.readouterr().err.startswith("pulse-agent export: export failed: ")
