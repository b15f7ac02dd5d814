"""Alerts end to end in one process: the real agent on a manual clock, a real target, Apprise
delivering json:// to a real local receiver, and the real DuckDB file between restarts."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime

import duckdb
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.clock import ManualClock
from pulse_agent.config import parse_config
from tests.conftest import free_port
from tests.scrape import sample

NOW = datetime.fromisoformat("2026-11-22T12:00:00+00:00").timestamp()


class Target:
    """A check target whose status code the test sets."""

    def __init__(self, server: HTTPServer) -> None:
        self.status = 200
        self.url = server.url_for("/health")
        server.expect_request("/health").respond_with_handler(lambda _: Response("state", status=self.status))


class Receiver:
    """A local HTTP server taking Apprise json:// posts, started on a fixed port when the test says."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = HTTPServer(host="127.0.0.1", port=self.port)
        self.server.expect_request("/hook", method="POST").respond_with_handler(self._take)
        self.posts: list[dict] = []

    def _take(self, request: Request) -> Response:
        self.posts.append(request.get_json())
        return Response("ok")

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    def titles(self) -> list[str]:
        return [p["title"] for p in self.posts]


@pytest.fixture
def target(httpserver):
    return Target(httpserver)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def config(target: Target, hook: str, *, extra_check: str = "", timeout: str = "2s") -> str:
    return f"""\
version: 1
notifiers:
  hook: {{urls: ['{hook}'], backoff: 5s, max_backoff: 20s, give_up_after: 60s, timeout: {timeout}}}
checks:
  - name: api
    url: {target.url}
    schedule: every 10s
    alert: {{notify: [hook], failure_threshold: 2, success_threshold: 2}}
    {extra_check}
"""


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (in short real steps) for something another thread or task does."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Running:
    """An in-process agent on a manual clock."""

    def __init__(self, agent: Agent, clock: ManualClock) -> None:
        self.agent, self.clock = agent, clock

    async def tick(self, runs: int = 1) -> None:
        """Advance one schedule interval per run; each run (and its alert bookkeeping) completes."""
        for _ in range(runs):
            await self.clock.advance(10)
            assert await self.agent.executor.scheduler.drain(10) == 0

    async def query(self, sql: str) -> list[tuple]:
        """Read through the running agent's own connection (the file is locked to others)."""
        assert self.agent.store is not None
        return await self.agent.store.call(lambda con: con.execute(sql).fetchall())

    def metric(self, name: str, **labels: str) -> float | None:
        return sample(self.agent.metrics, name, labels)


@asynccontextmanager
async def running(text: str, db, now: float = NOW, config_path=None):
    spec = parse_config(text, str(config_path or "pulse.yaml"), {})
    clock = ManualClock(now)
    options = RunOptions(database=str(db), listen="127.0.0.1:0", config=str(config_path) if config_path else None, watch=False)
    agent = Agent(spec, options, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    try:
        yield Running(agent, clock)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0


def query(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


async def test_a_flip_to_500_and_back_sends_exactly_one_failure_and_one_resolved(target, receiver, tmp_path):
    db = tmp_path / "p.duckdb"
    async with running(config(target, receiver.url), db) as run:
        await run.tick(2)
        target.status = 500
        await run.tick(5)  # the second failure opens the incident; three more add nothing
        await until(lambda: len(receiver.posts) == 1)
        assert run.metric("pulse_incidents_open") == 1
        target.status = 200
        await run.tick(3)
        await until(lambda: run.metric("pulse_notifications_total", notifier="hook", result="delivered") == 2)
        await run.tick(2)
        assert len(receiver.posts) == 2
        assert run.metric("pulse_notification_queue_depth") == 0
        assert run.metric("pulse_incidents_open") == 0
    failure, resolved = receiver.posts
    assert failure["title"] == "[pulse] api is down (status)" and failure["type"] == "failure"
    assert "\nstatus 500 not in [2xx]\n" in failure["message"] and "HTTP 500 in" in failure["message"]
    assert resolved["title"] == "[pulse] api is up again after 50s" and resolved["type"] == "success"
    assert "first error: status 500 not in [2xx]" in resolved["message"] and ": -" not in resolved["message"]
    [(opened, resolved_at, kind, error, sent)] = query(
        db, "SELECT epoch(opened_at), epoch(resolved_at), first_error_kind, first_error, notifications_sent FROM incidents"
    )
    assert resolved_at - opened == 50  # first failing run to first ok run
    assert (kind, error, sent) == ("status", "status 500 not in [2xx]", 2)
    outbox = query(db, "SELECT event, attempts, delivered_at IS NOT NULL, dead_at FROM outbox ORDER BY id")
    assert outbox == [("failure", 1, True, None), ("resolved", 1, True, None)]


async def test_a_receiver_that_is_down_gets_the_notification_once_it_is_back(target, tmp_path):
    receiver = Receiver()  # its port is chosen but nothing listens yet
    db = tmp_path / "p.duckdb"
    try:
        async with running(config(target, receiver.url), db) as run:
            target.status = 500
            await run.tick(2)
            await until(lambda: run.metric("pulse_notifications_total", notifier="hook", result="failed") == 1)
            assert run.metric("pulse_notification_queue_depth") == 1
            [(attempts, error)] = await run.query("SELECT attempts, last_error FROM outbox")
            assert attempts == 1 and "connection" in error.lower()
            receiver.start()
            await run.clock.advance(5)  # the first backoff
            await until(lambda: len(receiver.posts) == 1)
            await until(lambda: run.metric("pulse_notification_queue_depth") == 0)
            await run.tick(3)  # still failing: nothing more to say
        assert receiver.titles() == ["[pulse] api is down (status)"]
        assert query(db, "SELECT attempts, delivered_at IS NOT NULL FROM outbox") == [(2, True)]
    finally:
        receiver.stop()


async def test_an_undeliverable_notification_goes_to_the_dead_letters_after_give_up_after(target, tmp_path):
    receiver = Receiver()  # never started
    db = tmp_path / "p.duckdb"
    async with running(config(target, receiver.url), db) as run:
        target.status = 500
        await run.tick(2)
        for _ in range(8):  # backoff 5, 10, 20, 20 ... until 60 s have passed
            await run.clock.advance(10)
            await asyncio.sleep(0.05)
        await until(lambda: run.metric("pulse_notifications_total", notifier="hook", result="dead") == 1)
        assert run.metric("pulse_notification_queue_depth") == 0
    [(attempts, dead, error)] = query(db, "SELECT attempts, epoch(dead_at) - epoch(created_at), last_error FROM outbox")
    assert attempts >= 4 and dead >= 60 and "Connection" in error


async def test_a_restart_mid_incident_neither_repeats_failure_nor_forgets_resolved(target, receiver, tmp_path):
    db = tmp_path / "p.duckdb"
    text = config(target, receiver.url)
    target.status = 500
    async with running(text, db) as run:
        await run.tick(3)
        await until(lambda: len(receiver.posts) == 1)
    async with running(text, db, now=NOW + 300) as run:
        assert run.metric("pulse_incidents_open") == 1  # restored
        await run.tick(4)  # still failing after the restart: no second failure
        target.status = 200
        await run.tick(1)
    async with running(text, db, now=NOW + 600) as run:  # restarted between the two successes
        await run.tick(1)
        await until(lambda: len(receiver.posts) == 2)
        await run.tick(2)
    assert receiver.titles() == ["[pulse] api is down (status)", "[pulse] api is up again after 5m 40s"]  # first failure to first success
    assert query(db, "SELECT count(*), count(resolved_at) FROM incidents") == [(1, 1)]


async def test_undelivered_notifications_survive_a_restart(target, tmp_path):
    receiver = Receiver()
    db = tmp_path / "p.duckdb"
    text = config(target, receiver.url)
    target.status = 500
    try:
        async with running(text, db) as run:
            await run.tick(2)
            await until(lambda: run.metric("pulse_notifications_total", notifier="hook", result="failed") == 1)
        receiver.start()
        async with running(text, db, now=NOW + 60) as run:
            await run.clock.advance(1)
            await until(lambda: len(receiver.posts) == 1)
            await run.tick(2)
        assert receiver.titles() == ["[pulse] api is down (status)"]
    finally:
        receiver.stop()


async def test_inside_a_maintenance_window_runs_are_stored_flagged_and_nothing_opens(target, receiver, tmp_path):
    db = tmp_path / "p.duckdb"
    window = "maintenance: [{schedule: 'at 2026-11-22T12:00:00Z', duration: 45s}]"
    target.status = 500
    async with running(config(target, receiver.url, extra_check=window), db) as run:
        await run.tick(4)  # runs at about 12:00:0x .. 12:00:4x: inside the window
        assert run.metric("pulse_incidents_open") == 0
        await run.tick(2)  # outside: two failures open the incident
        await until(lambda: len(receiver.posts) == 1)
    flagged = query(db, "SELECT maintenance, count(*) FROM results GROUP BY 1 ORDER BY 1")
    assert flagged == [(False, 2), (True, 4)]
    [(opened,)] = query(db, "SELECT epoch(opened_at) FROM incidents")
    assert opened >= NOW + 45  # the failures inside the window did not count


async def test_a_hanging_notifier_delays_no_check(target, tmp_path):
    db = tmp_path / "p.duckdb"
    with socket.socket() as hang:  # accepts connections into its backlog and never answers
        hang.bind(("127.0.0.1", 0))
        hang.listen()
        text = config(target, f"json://127.0.0.1:{hang.getsockname()[1]}/hook", timeout="30s")
        target.status = 500
        async with running(text, db) as run:
            started = time.monotonic()
            await run.tick(6)  # the failure notification hangs in its lane meanwhile
            assert time.monotonic() - started < 5
            assert run.metric("pulse_check_runs_total", check="api", result="failure") == 6
            assert run.metric("pulse_notification_queue_depth") == 1
            hang.close()  # the stuck send fails now, so stopping does not wait for it


async def test_failures_stored_just_before_a_crash_still_raise_their_alert_on_restart(target, receiver, tmp_path):
    # The crash window: the failing runs reached the file, the event they raised did not.
    from pulse_agent.result import Result
    from pulse_agent.store import ResultStore

    db = tmp_path / "p.duckdb"
    store = ResultStore(db)
    for i in range(2):
        store.submit(Result("api", NOW - 30 + 10 * i, False, status_code=500, error_kind="status", error="status 500 not in [2xx]"))
    store.close()
    target.status = 500
    async with running(config(target, receiver.url), db) as run:
        await until(lambda: len(receiver.posts) == 1)
        assert run.metric("pulse_incidents_open") == 1
        await run.tick(2)
    assert receiver.titles() == ["[pulse] api is down (status)"]
    assert query(db, "SELECT epoch(opened_at) FROM incidents") == [(NOW - 30,)]
