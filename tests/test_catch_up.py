"""Missed runs across restarts: the real agent (in-process, manual clock), a real DuckDB file and target."""

import asyncio
import gc
from datetime import datetime

import duckdb
import pytest

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.clock import ManualClock
from pulse_agent.config import parse_config
from pulse_agent.gc_policy import GcPolicy
from pulse_agent.result import Result
from pulse_agent.store import ResultStore

NOW = datetime.fromisoformat("2026-11-22T12:00:00+00:00").timestamp()
TODAY_3AM = datetime.fromisoformat("2026-11-22T03:00:00+00:00").timestamp()


def config(url: str, schedule: str, missed: str) -> str:
    return f"version: 1\nchecks:\n  - {{name: job, url: '{url}', schedule: '{schedule}', missed: {missed}}}\n"


async def start_and_stop(spec, db, now=NOW):
    """Start the agent at `now` (time does not move), let catch-up runs finish, stop it."""
    agent = Agent(spec, RunOptions(database=str(db), listen="127.0.0.1:0"), clock=ManualClock(now), gc_policy=GcPolicy())  # as cmd_run
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    assert gc.get_freeze_count() > 0  # start-up's heap is exempt from full collections while running
    assert gc.isenabled()  # collection was paused for start-up only
    await agent.executor.scheduler.drain(10)
    stop.set()
    assert await task == 0
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def seed(db, *results):
    store = ResultStore(db)
    for r in results:
        store.submit(r)
    store.close()


def scheduled(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT epoch(scheduled_ts) FROM results WHERE check_name = 'job' ORDER BY ts").fetchall()]


@pytest.mark.parametrize(("missed", "runs"), [("run_once", 1), ("skip", 0)])
async def test_a_daily_check_down_across_its_time(httpserver, tmp_path, missed, runs):
    httpserver.expect_request("/job").respond_with_data("done")
    db = tmp_path / "p.duckdb"
    seed(db, Result("job", NOW - 2 * 86400 - 32400, True, scheduled_ts=NOW - 2 * 86400 - 32400))  # two days ago, 03:00
    spec = parse_config(config(httpserver.url_for("/job"), "every day at 3am", missed), "p.yaml", {})
    await start_and_stop(spec, db)
    assert len(httpserver.log) == runs
    assert scheduled(db)[1:] == ([TODAY_3AM] if runs else [])  # one catch-up for the latest missed time, never more
    await start_and_stop(spec, db)  # a second restart: nothing is missed any more
    assert len(httpserver.log) == runs


async def test_a_one_shot_runs_once_and_never_again_across_restarts(httpserver, tmp_path):
    httpserver.expect_request("/once").respond_with_data("done")
    db = tmp_path / "p.duckdb"
    spec = parse_config(config(httpserver.url_for("/once"), "at 2026-11-22T11:00:00Z", "run_once"), "p.yaml", {})
    await start_and_stop(spec, db)
    await start_and_stop(spec, db, now=NOW + 3600)
    assert len(httpserver.log) == 1
    assert scheduled(db) == [NOW - 3600]


async def test_a_one_shot_missed_under_skip_never_runs(httpserver, tmp_path):
    httpserver.expect_request("/once").respond_with_data("done")
    spec = parse_config(config(httpserver.url_for("/once"), "at 2026-11-22T11:00:00Z", "skip"), "p.yaml", {})
    await start_and_stop(spec, tmp_path / "p.duckdb")
    assert len(httpserver.log) == 0


async def test_a_new_check_on_a_fresh_database_does_not_catch_up(httpserver, tmp_path):
    httpserver.expect_request("/job").respond_with_data("done")
    spec = parse_config(config(httpserver.url_for("/job"), "every day at 3am", "run_once"), "p.yaml", {})
    await start_and_stop(spec, tmp_path / "p.duckdb")
    assert len(httpserver.log) == 0


async def test_an_embedded_agent_leaves_the_process_garbage_collector_alone(httpserver, tmp_path):
    spec = parse_config(config(httpserver.url_for("/job"), "every day at 3am", "skip"), "p.yaml", {})
    agent = Agent(spec, RunOptions(database=str(tmp_path / "p.duckdb"), listen="127.0.0.1:0"), clock=ManualClock(NOW))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    assert gc.get_freeze_count() == 0 and gc.isenabled()  # only cmd_run's GcPolicy freezes and pauses
    stop.set()
    assert await task == 0
