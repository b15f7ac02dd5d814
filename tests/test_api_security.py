"""The API's own defences, against the real agent (in-process, real HTTP, real DuckDB file):
authentication, input validation (every bad input a 4xx, never a 500), exports only into
agent.export_dir, and SSE clients that go away quietly."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
import time

import pytest

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.clock import ManualClock
from pulse_agent.config import load_config
from pulse_agent.listen import OpenApiRefused, api_exposure
from pulse_agent.report import ReportError, ReportRequest, answer
from tests.agent_process import AgentProcess
from tests.test_alerting import NOW, Target
from tests.test_api import TOKEN, agent_at, config_text, tick


@pytest.fixture
def target(httpserver):
    return Target(httpserver)


def raw_request(port: int, head: bytes) -> bytes:
    """Send head (a whole request) as raw bytes; the status line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


async def test_bearer_scheme_in_any_case_and_only_the_header_counts(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "p.duckdb", token=False) as (agent, _, client):
        for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
            assert (await client.get("/api/v1/checks", headers={"Authorization": f"{scheme} {TOKEN}"})).status_code == 200, scheme
        for headers, params in [
            ({"Authorization": f"Basic {TOKEN}"}, {}),
            ({"Authorization": f"Bearer {TOKEN}x"}, {}),
            ({"Authorization": f"Bearer{TOKEN}"}, {}),
            ({}, {"token": TOKEN}),
            ({}, {"access_token": TOKEN}),
            ({"X-Api-Token": TOKEN}, {}),
        ]:
            answer = await client.get("/api/v1/checks", headers=headers, params=params)
            assert answer.status_code == 401, (headers, params)
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200, path
        port = agent.port
        status = await asyncio.to_thread(
            raw_request, port, b"GET /api/v1/checks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xc3(\r\nConnection: close\r\n\r\n"
        )
        assert status.startswith(b"HTTP/1.1 401"), status
        for method, path in [("GET", "//api/v1/checks"), ("GET", "/api/v1/checks/"), ("GET", "/%61pi/v1/checks"),
                             ("GET", "/api/v1/../v1/checks"), ("GET", "/api/./v1/checks"), ("POST", "//-/reload"),
                             ("POST", "/%2D/reload"), ("GET", "http://x/api/v1/checks")]:  # fmt: skip
            request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            status = await asyncio.to_thread(raw_request, port, request)
            assert status.split(b" ")[1] in (b"401", b"404"), (path, status)  # no spelling of a path skips the token


@pytest.mark.parametrize(
    ("listen", "token", "insecure", "expected"),
    [
        ("127.0.0.1:9108", None, False, "loopback"),
        ("127.0.0.2:0", None, False, "loopback"),
        ("[::1]:9108", None, False, "loopback"),
        ("localhost:9108", None, False, "loopback"),
        ("0.0.0.0:9108", "t" * 16, False, "token"),
        ("0.0.0.0:9108", None, True, "insecure"),
        (":9108", None, True, "insecure"),
        ("0.0.0.0:9108", None, False, None),
        ("[::]:9108", None, False, None),
        ("10.1.2.3:9108", None, False, None),
        ("pulse.internal:9108", None, False, None),
    ],
)
def test_an_open_api_on_the_network_is_refused_unless_asked_for(listen, token, insecure, expected):
    if expected is None:
        with pytest.raises(OpenApiRefused, match=r"agent\.api_token is not set"):
            api_exposure(listen, token, insecure)
    else:
        assert api_exposure(listen, token, insecure) == expected


async def test_an_sse_client_that_goes_away_logs_no_error(target, tmp_path, caplog):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, clock, client):
        for _ in range(3):
            async with client.stream("GET", "/api/v1/events") as stream:
                async for _line in stream.aiter_lines():
                    break  # ": connected", then the client hangs up
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            await tick(agent, clock, 2)  # events for streams whose client is gone
            for _ in range(50):
                if not agent.events.active:
                    break
                await asyncio.sleep(0.02)
        assert not agent.events.active
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [(r.name, r.getMessage()) for r in errors]


NOW_END = 1_790_000_000
BAD_INPUTS = [
    ("GET", "/api/v1/checks/api/results?limit=²", None, 400),
    ("GET", "/api/v1/checks/api/results?limit=٣", None, 400),
    ("GET", "/api/v1/checks/api/results?limit=-1", None, 400),
    ("GET", "/api/v1/checks/api/results?limit=0", None, 400),
    ("GET", "/api/v1/checks/api/results?limit=1e3", None, 400),
    ("GET", "/api/v1/checks/api/results?limit=99999999999999999999999", None, 400),
    ("GET", "/api/v1/checks/api/results?since=99999999999d", None, 400),
    ("GET", "/api/v1/checks/api/results?since=0001-01-01T00:00:00Z", None, 400),
    ("GET", "/api/v1/checks/api/results?since=nan", None, 400),
    ("GET", "/api/v1/checks/api/results?since=inf", None, 400),
    ("GET", "/api/v1/checks/api/results?since=%00", None, 400),
    ("GET", "/api/v1/incidents?limit=²", None, 400),
    ("POST", "/api/v1/report", b"not json", 400),
    ("POST", "/api/v1/report", b"\xff\xfe{", 400),
    ("POST", "/api/v1/report", b"[1, 2]", 400),
    ("POST", "/api/v1/report", b'{"start": NaN, "end": 2}', 400),
    ("POST", "/api/v1/report", b'{"start": Infinity, "end": 2}', 400),
    ("POST", "/api/v1/report", b'{"start": 1e400, "end": 2}', 400),
    ("POST", "/api/v1/report", b'{"start": -1e300, "end": 2}', 400),
    ("POST", "/api/v1/report", b'{"start": "yesterday", "end": 2}', 400),
    ("POST", "/api/v1/report", b'{"start": 2, "end": 1}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "sql": ["SELECT 1"]}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "sql": {"a": 1}}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "by": "week"}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "checks": "api"}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "checks": [1]}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "incidents": "yes"}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "slos": {"api": "high"}}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "slos": [99]}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "sql": "UPDATE EXTENSIONS"}', 400),
    ("POST", "/api/v1/report", b'{"start": 1, "end": 2, "sql": "SELECT ' + b"+".join([b"1"] * 2000) + b'"}', 400),
    ("POST", "/api/v1/export", b'{"start": NaN, "end": 2}', 400),
    ("POST", "/api/v1/export", b"[]", 400),
    ("POST", "/api/v1/export", b'{"start": 1, "end": 2, "out": "/tmp/anywhere"}', 403),
    ("POST", "/api/v1/export", b'{"start": 1, "end": 2, "out": ["x"]}', 403),
    ("POST", "/api/v1/checks/nope/run", None, 404),
]


async def test_every_bad_input_gets_a_4xx_with_a_reason(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target).replace("agent: {", f"agent: {{export_dir: '{tmp_path}/exports', "))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (_, _, client):
        for method, path, body, status in BAD_INPUTS:
            answer = await client.request(method, path, content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == status, (method, path, body, answer.text)
            assert answer.json()["error"], (path, body)
        # with no export_dir the API writes nothing at all
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "q.duckdb") as (_, _, client):
        refused = await client.post("/api/v1/export", json={"start": 1, "end": 2})
        assert refused.status_code == 403 and "no agent.export_dir" in refused.json()["error"]
    assert not (tmp_path / "exports").exists()


def test_the_agent_refuses_an_open_api_on_the_network_and_logs_an_allowed_one(tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text("version: 1\nagent: {listen: '0.0.0.0:0'}\n")
    refused = subprocess.run([sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg), "--db", str(tmp_path / "p.duckdb")],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    assert refused.returncode == 1
    assert "agent.api_token is not set" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "p.duckdb").exists()  # refused before anything was opened
    cfg.write_text("version: 1\nagent: {listen: '0.0.0.0:0', insecure_api: true}\n")
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"))
    try:
        warning = agent.wait_for(lambda r: "insecure_api" in r.get("msg", ""))
        assert warning["level"] == "warning"
        agent.wait_for(lambda r: r.get("msg") == "agent started")
    finally:
        assert agent.stop(signal.SIGTERM) == 0


async def test_reports_beyond_the_query_pool_are_answered_503_at_once(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target).replace("agent: {", "agent: {query_timeout: 500ms, "))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (_, _, client):
        body = {"start": 0, "end": NOW_END, "sql": "SELECT sum(hash(i)) FROM range(4000000000) t(i)"}
        answers = await asyncio.gather(*[client.post("/api/v1/report", json=body) for _ in range(12)])
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [400] * 8 + [503] * 4, statuses  # 2 run, 6 wait, the rest are told to come back
        busy = next(a for a in answers if a.status_code == 503)
        assert busy.headers["Retry-After"] == "5" and "try again later" in busy.json()["error"]
        assert all("longer than 0.5s" in a.json()["error"] for a in answers if a.status_code == 400)


async def test_stopping_the_agent_interrupts_a_running_report(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target).replace("agent: {", "agent: {query_timeout: 60s, "))
    agent = Agent(load_config(cfg), RunOptions(database=str(tmp_path / "p.duckdb"), listen="127.0.0.1:0"), clock=ManualClock(NOW))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    store = agent.store
    assert store is not None
    body = ReportRequest(0, NOW_END, sql="SELECT sum(hash(i)) FROM range(4000000000) t(i)")
    running = asyncio.create_task(store.query(lambda con: answer(con, body, store.limits)))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    stop.set()
    assert await asyncio.wait_for(task, 20) == 0
    assert time.monotonic() - started < 10  # not the 60 s query_timeout
    with pytest.raises(ReportError, match="the agent is stopping"):
        await running
