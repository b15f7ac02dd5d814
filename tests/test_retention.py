"""Retention and rollups through the real agent (manual clock) and a real DuckDB file: exactly the
raw rows past retention go, and a report over the whole time still counts them."""

from __future__ import annotations

import asyncio

import duckdb

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.clock import ManualClock
from pulse_agent.config import parse_config
from pulse_agent.report import ReportRequest, build_report
from pulse_agent.result import Result
from pulse_agent.store import ResultStore, sketch
from pulse_agent.store.maintenance import Maintenance

NOW = 1_800_000_000.0 + 1234.5  # not on an hour
DAY = 86400.0


def seed(db) -> None:
    """40 days of two checks, every 20 minutes; api fails every 7th run (odd ones time out)."""
    store = ResultStore(db)
    for i in range(int(40 * DAY / 1200)):
        ts = NOW - 40 * DAY + 1200 * i
        fails = i % 7 == 0
        kind = "timeout" if fails and i % 2 else "status"
        store.submit(Result("api", ts, not fails, error_kind=kind if fails else None, response_time_ms=10.0 + i % 50))
        store.submit(Result("web", ts + 60, True, degraded=i % 10 == 0, response_time_ms=5.0))
    store.close()


def report(con, start: float, end: float) -> list[dict]:
    return build_report(con, ReportRequest(start, end)).rows


async def test_retention_deletes_exactly_what_is_older_and_rollups_keep_the_counts(tmp_path):
    db = tmp_path / "p.duckdb"
    seed(db)
    window = (NOW - 41 * DAY, NOW)
    with duckdb.connect(str(db), read_only=True) as con:
        before = report(con, *window)
        [(kept,)] = con.execute("SELECT count(*) FROM results WHERE ts >= to_timestamp(?)", [NOW - 30 * DAY]).fetchall()
    spec = parse_config("version: 1\nagent: {retention: 30d, rollup: 35d, listen: '127.0.0.1:0'}\n", "p.yaml", {})
    agent = Agent(spec, RunOptions(database=str(db)), clock=ManualClock(NOW))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    done = await Maintenance(agent.store, agent.clock, lambda: agent.spec.agent).round()  # the agent also did a round at start: this one finds the rest
    stop.set()
    assert await task == 0
    assert done["results_deleted"] == 0  # nothing left to delete: the round at start did it all
    with duckdb.connect(str(db), read_only=True) as con:
        [(left, oldest)] = con.execute("SELECT count(*), epoch(min(ts)) FROM results").fetchall()
        [(hourly_oldest,)] = con.execute("SELECT epoch(min(hour)) FROM results_hourly").fetchall()
        after = report(con, *window)
        recent = report(con, NOW - 2 * DAY, NOW)
    assert left == kept and oldest >= NOW - 30 * DAY  # exactly the rows past retention went
    assert hourly_oldest >= NOW - 35 * DAY - 3600  # hourly rows past agent.rollup went too
    # Counts over the whole window: older than 35 days is gone everywhere, 30-35 days comes from rollups.
    older = {r["check_name"]: r for r in before}
    for row in after:
        full = older[row["check_name"]]
        assert 0 < full["runs"] - row["runs"] <= int(5 * DAY / 1200) + 3  # only the ~6 days past 35d are missing
    with duckdb.connect(str(db), read_only=True) as con:
        assert report(con, *window) == after  # stable
    api = {r["check_name"]: r for r in recent}["api"]
    assert api["p50_ms"] is not None and api["runs"] == 144  # recent windows still come from raw results


async def test_reports_over_rolled_up_hours_match_raw_ones(tmp_path):
    from pulse_agent.store import retention

    db = tmp_path / "p.duckdb"
    seed(db)
    hour = (NOW - 10 * DAY) // 3600 * 3600
    window = (hour, hour + 2 * DAY)  # rolled-up parts count whole hours: compare on hour boundaries
    with duckdb.connect(str(db)) as con:
        raw = report(con, *window)
        latencies = dict(con.execute(
            "SELECT check_name, list(response_time_ms ORDER BY response_time_ms) FROM results WHERE ts >= to_timestamp(?) AND ts < to_timestamp(?) GROUP BY 1",
            list(window)).fetchall())  # fmt: skip
        retention.roll_up(con, NOW)
        while retention.delete_raw_batch(con, NOW - 5 * DAY) == retention.BATCH:
            pass
        rolled = report(con, *window)
    for a, b in zip(raw, rolled, strict=True):
        for key in ("runs", "ok_runs", "failures", "failures_by_kind", "uptime_pct", "degraded_pct", "max_ms"):
            assert a[key] == b[key], key
        exact = latencies[b["check_name"]]  # percentiles now come from the hours' sketches: within 1 % of the same rank
        for q in (50, 95, 99):
            value = exact[sketch.rank(q / 100, len(exact))]
            assert abs(b[f"p{q}_ms"] - value) <= sketch.ALPHA * value + 0.001, (q, b[f"p{q}_ms"], value)
