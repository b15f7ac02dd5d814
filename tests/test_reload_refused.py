"""Reloads are all or nothing (issue 14, item 3): a config that cannot be loaded, built or applied is a
refused reload; the old config keeps running, the failure is counted, the API keeps answering."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.clock import ManualClock
from pulse_agent.config import Memo, load_config
from tests.agent_process import AgentProcess
from tests.test_config_hostile import LAUGHS
from tests.test_reload_e2e import atomic_write


def config(server, *names: str, extra: str = "") -> str:
    lines = ["version: 1", "agent: {log_format: json}", "checks:"]
    lines += [f"  - {{name: {n}, url: '{server.url_for('/' + n)}', schedule: every 1s}}" for n in names]
    return "\n".join(lines) + "\n" + extra


def rss_mib(pid: int) -> float:
    status = open(f"/proc/{pid}/status").read()  # noqa: SIM115
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def failures(web: httpx.Client) -> float:
    m = re.search(r'pulse_config_reloads_total\{result="failure"\} ([0-9.]+)', web.get("/metrics").text)
    return float(m.group(1)) if m else 0.0


def test_refused_reloads_leave_the_running_agent_untouched(tmp_path, httpserver):
    for name in ("a", "b"):
        httpserver.expect_request(f"/{name}").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config(httpserver, "a"))
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")
    refused = "config reload refused; still running the last good config"
    try:
        base = f"http://{agent.wait_for(lambda r: r.get('msg') == 'agent started')['listen']}"
        agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "a")
        with httpx.Client(base_url=base, timeout=5) as web:
            before = rss_mib(agent.proc.pid)
            cases = [
                ("never-firing cron", config(httpserver, "a", extra="  - {name: b, url: 'http://127.0.0.1:1/', schedule: '0 0 30 2 *'}\n")),
                ("billion laughs", LAUGHS),
            ]
            for n, (case, text) in enumerate(cases, start=1):
                atomic_write(cfg, text)
                agent.wait_for(lambda r, n=n: sum(x.get("msg") == refused for x in agent.seen) >= n)
                assert [c["name"] for c in web.get("/api/v1/checks").json()["checks"]] == ["a"], case
                assert failures(web) == n, case
            assert rss_mib(agent.proc.pid) - before < 200  # the alias bomb was stopped, not built

            fifo = tmp_path / "fifo"
            os.mkfifo(fifo)
            os.replace(fifo, cfg)  # nobody will ever write into it: a read would block for good
            agent.wait_for(lambda r: sum(x.get("msg") == refused for x in agent.seen) >= 3)
            started = time.monotonic()
            answer = web.post("/-/reload")
            assert answer.status_code == 400 and time.monotonic() - started < 5
            assert answer.json()["errors"] == [f"{cfg}:1:1: cannot read config: a FIFO; a config is a regular file"]
            assert failures(web) == 4
            assert web.get("/metrics").text.count("pulse_config_last_reload_successful 0.0") == 1

            os.unlink(cfg)
            atomic_write(cfg, config(httpserver, "a", "b"))  # and the agent still follows its file
            agent.wait_for(lambda r: r.get("msg") == "config reloaded" and r.get("added") == 1)
            agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "b")
            assert [c["name"] for c in web.get("/api/v1/checks").json()["checks"]] == ["a", "b"]
            assert "pulse_config_last_reload_successful 1.0" in web.get("/metrics").text
    finally:
        assert agent.stop() == 0


@pytest.mark.parametrize("stage", ["loaded", "applied"])
async def test_an_unexpected_exception_is_a_refused_reload(tmp_path, httpserver, monkeypatch, stage):
    """Fault injection: whatever raises while loading or applying, the reload is refused and undone."""
    httpserver.expect_request("/a").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config(httpserver, "a"))
    agent = Agent(load_config(cfg), RunOptions(database=str(tmp_path / "p.duckdb"), listen="127.0.0.1:0", config=str(cfg), watch=False),
                  clock=ManualClock(1_800_000_000.0))  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.started.wait(), 10)
        cfg.write_text(config(httpserver, "a", "b"))
        if stage == "loaded":
            monkeypatch.setattr(agent.reloader._memo, "begin", lambda: 1 / 0)
        else:
            real = agent.metrics.set_checks

            def set_checks(names: list[str], labels=None) -> None:
                real(names, labels)
                if "b" in names:
                    raise RuntimeError("injected")

            monkeypatch.setattr(agent.metrics, "set_checks", set_checks)
        outcome = await agent.reload("api")
        assert (outcome.ok, len(outcome.errors)) == (False, 1)
        assert outcome.errors[0].startswith(f"{cfg}: cannot be {stage} (")
        assert [c.name for c in agent.spec.checks] == ["a"]
        assert [c.name for c in agent.executor.scheduler.checks] == ["a"] and agent.pipeline.spec("b") is None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.port}", timeout=5) as web:
            assert [c["name"] for c in (await web.get("/api/v1/checks")).json()["checks"]] == ["a"]
            metrics = (await web.get("/metrics")).text
        assert 'pulse_config_reloads_total{result="failure"} 1.0' in metrics
        assert 'pulse_checks_configured{shard="1/1"} 1.0' in metrics
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def memo_agent(tmp_path, cfg) -> Agent:
    """An agent of the config file cfg in this process, keeping a memo as `run` does; reloads only when asked."""
    memo = Memo()
    options = RunOptions(database=str(tmp_path / "p.duckdb"), listen="127.0.0.1:0", config=str(cfg), watch=False)
    return Agent(load_config(cfg, memo=memo), options, clock=ManualClock(1_800_000_000.0), memo=memo)


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[None]:
    """agent running (started) meanwhile, then stopped cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.started.wait(), 10)
        yield
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


async def test_the_api_finds_every_check_of_the_running_config_by_name_before_and_after_a_reload(tmp_path, httpserver):
    """Agent.check looks enabled checks up in the pipeline's index and disabled ones in its own: the same
    answers as a scan of the spec, from start-up (the API serves before the checks are scheduled) and after a reload."""
    httpserver.expect_request("/a").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config(httpserver, "a", "b").replace("name: b,", "name: b, enabled: false,"))
    agent = memo_agent(tmp_path, cfg)
    assert [agent.check(n) for n in ("a", "b", "c")] == [agent.spec.check(n) for n in ("a", "b", "c")]
    assert agent.check("a") is not None and agent.check("b") is not None and agent.check("c") is None
    async with running(agent):
        cfg.write_text(config(httpserver, "a", "c"))
        outcome = await agent.reloader.reload_if_changed()
        assert outcome is not None and outcome.ok
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.port}") as api:
            codes = {n: (await api.get(f"/api/v1/checks/{n}")).status_code for n in ("a", "b", "c")}
        assert codes == {"a": 200, "b": 404, "c": 200}
        assert [agent.check(n) for n in ("a", "b", "c")] == [agent.spec.check(n) for n in ("a", "b", "c")]
