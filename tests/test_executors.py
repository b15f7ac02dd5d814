"""Executors: with `agent.workers: 2` the API's `running` and run-now go to the worker that runs the check
(never two runs of one check at once); a real agent in-process, real worker processes, a real target."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.config import load_config


class HeldTarget:
    """A local target that holds every request until released, counting requests in progress at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        self.active = 0
        self.peak = 0
        self.served = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.arrived.set()
            try:
                await self.release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                await writer.drain()
                self.served += 1
            finally:
                self.active -= 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def running_agent(tmp_path, url: str, workers: int) -> AsyncIterator[tuple[Agent, httpx.AsyncClient]]:
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nagent: {{workers: {workers}}}\nchecks:\n  - {{name: slow, url: '{url}', schedule: every 2s, timeout: 30s}}\n")
    agent = Agent(load_config(cfg), RunOptions(database=str(tmp_path / "p.duckdb"), listen="127.0.0.1:0", config=str(cfg), watch=False))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.started.wait(), 20)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.port}", timeout=30) as client:
            yield agent, client
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 40) == 0


async def _state(client: httpx.AsyncClient) -> dict:
    answer = await client.get("/api/v1/checks/slow")
    assert answer.status_code == 200
    return answer.json()["state"]


async def _until_running(client: httpx.AsyncClient, running: bool, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await _state(client))["running"] is not running:
        assert loop.time() < deadline, f"running never became {running}"
        await asyncio.sleep(0.05)


async def _run_now_until_started(client: httpx.AsyncClient, timeout: float = 10.0) -> httpx.Response:
    """POST run until it is not refused (a scheduled run may be under way for a moment)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (answer := await client.post("/api/v1/checks/slow/run")).status_code == 409:
        assert loop.time() < deadline, "run-now refused all along"
        await asyncio.sleep(0.05)
    return answer


async def test_with_workers_running_and_run_now_are_the_workers_and_never_overlap_a_run(tmp_path):
    target = HeldTarget()
    server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with running_agent(tmp_path, url, workers=2) as (agent, client):
            await asyncio.wait_for(target.arrived.wait(), 15)  # a worker's scheduled run is held by the target
            await _until_running(client, True, timeout=2)  # answered by the worker that runs it (its next frame)

            refused = asyncio.create_task(client.post("/api/v1/checks/slow/run"))
            done, _ = await asyncio.wait({refused}, timeout=10)
            assert refused in done and refused.result().status_code == 409  # not a second run beside the worker's
            assert target.peak == 1

            target.release.set()
            await _until_running(client, False)
            ran = await _run_now_until_started(client)
            assert ran.status_code == 200 and ran.json()["ok"] is True and ran.json()["status_code"] == 200
            assert agent.pipeline.last("slow") is not None  # the worker's run-now went through the agent's pipeline
            assert target.peak == 1
    finally:
        target.release.set()
        server.close()
        await server.wait_closed()


async def test_without_workers_running_and_run_now_behave_the_same(tmp_path):
    target = HeldTarget()
    server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with running_agent(tmp_path, url, workers=0) as (_, client):
            await asyncio.wait_for(target.arrived.wait(), 15)
            assert (await _state(client))["running"] is True
            refused = await asyncio.wait_for(client.post("/api/v1/checks/slow/run"), 10)
            assert refused.status_code == 409 and target.peak == 1
            target.release.set()
            await _until_running(client, False)
            ran = await _run_now_until_started(client)
            assert ran.status_code == 200 and ran.json()["ok"] is True
    finally:
        target.release.set()
        server.close()
        await server.wait_closed()
