"""Probe workers: the split, the frames, and the real agent with agent.workers running, surviving a
killed worker, reloading and stopping in order."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from collections import Counter
from pathlib import Path

import duckdb
import httpx

from pulse_agent.config.model import CheckSpec
from pulse_agent.result import Result
from pulse_agent.schedule import Interval
from pulse_agent.workers import CHECKS_PER_FRAME, Worker, WorkerExecutor, WorkerSettings, pack, read_message, results_of, rows_of, worker_of
from tests.agent_process import AgentProcess
from tests.conftest import spec
from tests.test_reload_e2e import atomic_write


def test_every_check_has_one_stable_worker_and_the_split_is_even():
    names = [f"check-{i}" for i in range(3000)]
    for count in (1, 2, 3, 8):
        owners = [worker_of(n, count) for n in names]
        assert owners == [worker_of(n, count) for n in names]  # stable
        sizes = Counter(owners)
        assert set(sizes) == set(range(count)) and min(sizes.values()) > 3000 / count * 0.85


async def test_frames_carry_results_exactly():
    results = [
        Result("a", 1.5, True, status_code=200, response_time_ms=3.25, scheduled_ts=1.0, connect_ms=0.5),
        Result("b", 2.0, False, error_kind="timeout", error="no complete response within 1s", attempts=3, maintenance=True),
    ]
    reader = asyncio.StreamReader()
    reader.feed_data(pack(("results", rows_of(results), ["c"], {"a": 3.0, "b": None}, ["a"])) + pack(("stop", 2.5)))
    reader.feed_eof()
    first, second, end = await read_message(reader), await read_message(reader), await read_message(reader)
    assert first is not None and results_of(first[1]) == results and first[2] == ["c"] and first[3] == {"a": 3.0, "b": None} and first[4] == ["a"]
    assert second == ("stop", 2.5) and end is None


def test_results_from_a_frame_take_their_checks_own_name_text():
    """The agent keeps each check's last Result: its name is the spec's text, not one more copy a check."""
    results = [Result("check-one", 1.5, True, status_code=200), Result("check-two", 2.0, False, error_kind="timeout")]
    spec = CheckSpec("-".join(["check", "one"]), "http://127.0.0.1:1/a")
    rows = pickle.loads(pickle.dumps(rows_of(results)))
    shared = results_of(rows, {spec.name: spec})
    assert shared == results and shared[0].check is spec.name
    assert shared[1].check is rows[1][0]  # a check not given keeps the frame's text


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def config(server, names: list[str]) -> str:
    lines = ["version: 1", "agent: {workers: 2}", "checks:"]
    lines += [f"  - {{name: {n}, url: '{server.url_for('/' + n)}', schedule: every 1s}}" for n in names]
    return "\n".join(lines) + "\n"


def test_an_agent_with_workers_stores_every_check_survives_a_killed_worker_and_stops_in_order(tmp_path, httpserver):
    names = [f"c{i}" for i in range(8)]
    for n in [*names, "late"]:
        httpserver.expect_request(f"/{n}").respond_with_data("ok" if n != "c3" else "down", status=200 if n != "c3" else 503)
    assert {worker_of(n, 2) for n in names} == {0, 1}  # both workers get checks
    cfg, db = tmp_path / "pulse.yaml", tmp_path / "p.duckdb"
    cfg.write_text(config(httpserver, names))
    agent = AgentProcess("-c", str(cfg), "--db", str(db), "--listen", "127.0.0.1:0")
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        assert started["workers"] == 2
        base = f"http://{started['listen']}"
        for n in names:
            agent.wait_for(lambda r, n=n: r.get("msg") == "result" and r.get("check") == n and r.get("ok") == (n != "c3"))
        agent.wait_for(lambda r: r.get("msg") == "alert failure" and r.get("check") == "c3")  # alerting sees worker results
        with httpx.Client(base_url=base, timeout=5) as web:
            assert [i["check_name"] for i in web.get("/api/v1/incidents").json()["incidents"]] == ["c3"]
        workers = children(agent.proc.pid)
        assert len(workers) == 2

        os.kill(workers[0], signal.SIGKILL)  # a worker dies: it is started again and its checks go on
        restart = agent.wait_for(lambda r: r.get("msg", "").startswith("probe worker") and "starting it again" in r["msg"])
        for n in names:
            agent.wait_for(lambda r, n=n: r.get("msg") == "result" and r.get("check") == n and r["ts"] > restart["ts"], timeout=15)
        with httpx.Client(base_url=base, timeout=5) as web:
            assert "pulse_worker_restarts_total 1.0" in web.get("/metrics").text

        atomic_write(cfg, config(httpserver, [*names[:-1], "late"]))  # a reload reaches the workers: only the change is sent
        reload = agent.wait_for(lambda r: r.get("msg") == "config reloaded" and r.get("added") == 1 and r.get("removed") == 1)
        agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "late")
        for n in names[:-1]:  # a full round after the reload: the removed check is not in it
            agent.wait_for(lambda r, n=n: r.get("msg") == "result" and r.get("check") == n and r["ts"] > reload["ts"])
        workers = children(agent.proc.pid)
    finally:
        code = agent.stop()
    assert code == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # the workers ended with the agent
    with duckdb.connect(str(db), read_only=True) as con:
        stored = dict(con.execute("SELECT check_name, count(*) FROM results GROUP BY 1").fetchall())
    assert set(stored) == {*names, "late"}
    after = [r for r in agent.seen if r.get("msg") == "result" and r["check"] == names[-1] and r["ts"] > reload["ts"]]
    assert after == [] or all(r["scheduled_ts"] < reload["ts"] for r in after)  # at most a run already under way


async def test_a_hung_worker_is_killed_and_started_again(httpserver):
    """SIGSTOP: the process lives but says nothing; the watchdog kills it and its checks run again."""
    httpserver.expect_request("/").respond_with_data("ok")
    seen: list[Result] = []
    restarts: list[int] = []

    async def on_results(results: list[Result], skipped: list[str], dues: dict[str, float | None]) -> None:
        seen.extend(results)

    pool = WorkerExecutor(1, WorkerSettings(16, "json", "warning", heartbeat=0.1, hung_after=3.0), on_results, lambda: restarts.append(1))
    pool.set_checks([spec(httpserver.url_for("/"), name="a", schedule=Interval(0.2, "200ms"))], soon=True)
    await pool.start()
    try:
        await until(lambda: len(seen) >= 1, timeout=30)
        first = pool.workers[0].pid
        assert first is not None
        os.kill(first, signal.SIGSTOP)
        # hung_after leaves a new child time to import under load (a loaded 2-core CI machine took > 0.6 s)
        await until(lambda: restarts and pool.workers[0].pid not in (None, first), timeout=30)
        count = len(seen)
        await until(lambda: len(seen) > count, timeout=30)  # the new process runs the check
    finally:
        await pool.stop(2.0)
    assert not Path(f"/proc/{first}").exists()  # killed and reaped
    assert pool.workers[0].pid is None


async def until(predicate, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_each_worker_runs_only_its_share_of_the_checks(httpserver):
    """A child is handed (and holds) the checks its name hashes to, not all of them: its memory is its share."""
    httpserver.expect_request("/").respond_with_data("ok")
    names = [f"share-{i}" for i in range(12)]
    seen: dict[int, set[str]] = {0: set(), 1: set()}

    def recorder(index: int):
        async def on_results(results: list[Result], skipped: list[str], dues: dict[str, float | None]) -> None:
            seen[index].update(r.check for r in results)

        return on_results

    settings = WorkerSettings(16, "json", "warning")
    pool = WorkerExecutor(2, settings, recorder(0), lambda: None)
    pool.workers[1] = Worker(1, settings, recorder(1), lambda: None)  # tell the two children's results apart
    pool.set_checks([spec(httpserver.url_for("/"), name=n, schedule=Interval(0.2, "200ms")) for n in names], soon=True)
    await pool.start()
    try:
        await until(lambda: seen[0] | seen[1] == set(names), timeout=30)
    finally:
        await pool.stop(2.0)
    for index in (0, 1):
        assert seen[index] == {n for n in names if worker_of(n, 2) == index}


async def test_a_start_with_more_checks_than_a_frame_schedules_every_one(httpserver):
    """At start the checks go to a child in frames of CHECKS_PER_FRAME (it schedules the first while the rest
    arrive): every check of every frame is scheduled, once, with its own next due time."""
    httpserver.expect_request("/").respond_with_data("ok")
    count = 2 * CHECKS_PER_FRAME + 1
    dues: dict[str, float | None] = {}
    frames: list[int] = []

    async def on_results(results: list[Result], skipped: list[str], due: dict[str, float | None]) -> None:
        dues.update(due)

    pool = WorkerExecutor(1, WorkerSettings(16, "json", "warning"), on_results, lambda: None)
    checks = [spec(httpserver.url_for("/"), name=f"many-{i}", schedule=Interval(86400.0, "24h")) for i in range(count)]
    worker = pool.workers[0]
    send = worker._send
    worker._send = lambda message: (frames.append(len(message[1])) if message[0] == "checks" else None, send(message))  # type: ignore[method-assign]
    await pool.start()
    try:
        pool.set_checks(checks, soon=False)
        await until(lambda: len(dues) == count, timeout=60)
    finally:
        await pool.stop(2.0)
    assert frames == [0, CHECKS_PER_FRAME, CHECKS_PER_FRAME, 1]  # start's empty frame, then the checks in three
    assert set(dues) == {c.name for c in checks} and all(isinstance(d, float) for d in dues.values())
