"""Connections bounded: thousands of half-sent requests to the agent's port take no descriptor the
prober needs, and the ones it holds are closed by the header timeout.

The agent runs with RLIMIT_NOFILE 256 (so the attack is cheap: on main about 250 half-sent requests
were enough for every check to fail with "Too many open files") while it checks a healthy local
target every second; the attack comes from this process, on 127.0.0.1 only, in a bounded loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import selectors
import signal
import socket
import time
from pathlib import Path

import httpx
from pytest_httpserver import HTTPServer

from pulse_agent.web.limits import IDLE_TIMEOUT_S, RESERVED_FDS, inbound_budget
from tests.agent_process import AgentProcess

AGENT_NOFILE = 256
MAX_CONCURRENCY = 16
ATTACK = 2000  # sockets opened at most
ATTACK_S = 6.0  # seconds of opening them


def small_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (AGENT_NOFILE, AGENT_NOFILE))


def test_budget_keeps_the_probers_share_and_caps_inbound():
    tight = inbound_budget(AGENT_NOFILE, MAX_CONCURRENCY)
    assert tight.max_connections + tight.backlog <= (AGENT_NOFILE - MAX_CONCURRENCY - RESERVED_FDS) // 2
    roomy = inbound_budget(1 << 20, 256)
    assert roomy.max_connections == 10_000 and roomy.backlog == 128 and not roomy.tight
    starved = inbound_budget(64, 256)
    assert starved.tight and starved.max_connections >= 4  # the API still answers somebody


def test_half_sent_requests_neither_starve_the_prober_nor_stay_open(tmp_path, httpserver: HTTPServer):
    httpserver.expect_request("/").respond_with_data("ok")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    attack = min(ATTACK, hard - 200)
    assert attack >= 1000, "this test needs a hard RLIMIT_NOFILE of at least 1,200"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    db, cfg = tmp_path / "pulse.duckdb", tmp_path / "pulse.yaml"
    checks = "".join(f"  - {{name: c{i}, url: 'http://127.0.0.1:{httpserver.port}/'}}\n" for i in range(4))
    cfg.write_text(
        f"version: 1\nagent: {{listen: '127.0.0.1:0', database: '{db}', max_concurrency: {MAX_CONCURRENCY}}}\n"
        f"defaults: {{schedule: 1s, timeout: 2s}}\nchecks:\n{checks}"
    )
    agent = AgentProcess("-c", str(cfg), preexec_fn=small_nofile)
    sel = selectors.DefaultSelector()
    sent: dict[socket.socket, float] = {}
    closed: dict[socket.socket, tuple[float, bool]] = {}  # after how long the agent closed it; refused (503 or reset)?
    opened = 0
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        assert started["nofile"] == AGENT_NOFILE
        host, port = started["listen"].rsplit(":", 1)
        begin = time.monotonic()
        attack_end = begin + ATTACK_S
        fds = Path(f"/proc/{agent.proc.pid}/fd")
        baseline, most = len(list(fds.iterdir())), 0
        while time.monotonic() < attack_end + IDLE_TIMEOUT_S + 2:
            now = time.monotonic()
            most = max(most, len(list(fds.iterdir())))
            for _ in range(50 if now < attack_end and opened < attack else 0):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex((host, int(port)))
                sel.register(s, selectors.EVENT_WRITE)
                opened += 1
            for key, events in sel.select(timeout=0.02):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if events & selectors.EVENT_WRITE and s not in sent:
                    with contextlib.suppress(OSError):  # refused already: seen when reading
                        s.send(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")  # never finished
                    sent[s] = time.monotonic()
                    sel.modify(s, selectors.EVENT_READ)
                elif events & selectors.EVENT_READ:
                    try:
                        data, reset = s.recv(4096), s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0
                    except OSError:  # reset: refused before its request was read
                        data, reset = b"", True
                    if not data or b" 503 " in data:
                        closed[s] = (time.monotonic() - sent[s], reset or b" 503 " in data)
                        sel.unregister(s)
                        s.close()
        for key in list(sel.get_map().values()):  # the rest never got past the kernel's queue
            sel.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
        time.sleep(0.5)
        assert httpx.get(f"http://{started['listen']}/healthz", timeout=5).status_code == 200
        metrics = httpx.get(f"http://{started['listen']}/metrics", timeout=5).text
        assert agent.stop(signal.SIGTERM) == 0
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
        for key in list(sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    agent.wait_for(lambda r: r.get("msg") == "agent stopped")
    results = [r for r in agent.seen if r.get("msg") == "result"]
    assert len(results) >= 4 * int(ATTACK_S), len(results)  # every check kept running through the attack
    failures = [r["error"] for r in results if not r["ok"]]
    assert failures == [], f"{len(failures)} false failures during the attack, e.g. {failures[0]}"
    assert "Too many open files" not in json.dumps(agent.seen)

    budget = inbound_budget(AGENT_NOFILE, MAX_CONCURRENCY)
    refused = [t for t, said_503 in closed.values() if said_503]
    timed_out = [t for t, said_503 in closed.values() if not said_503]
    print(f"opened {opened}, half-sent {len(sent)}, refused {len(refused)}, timed out {len(timed_out)}, fds {baseline}..{most}")
    assert opened >= 1000 and len(sent) >= 500, (opened, len(sent))
    assert refused, "no connection over the cap was refused"
    # the connections it held (a cap's worth at a time) were closed by the header timeout
    assert len([t for t in timed_out if t >= IDLE_TIMEOUT_S - 0.5]) >= budget.max_connections, sorted(timed_out)
    # what the agent held stayed within its budget: the prober's share was never touched
    assert most <= baseline + budget.max_connections + budget.backlog, (baseline, most)
    assert any(line.startswith("pulse_http_connections_refused_total ") and float(line.split()[1]) > 0 for line in metrics.splitlines())


async def test_a_body_that_does_not_arrive_gets_408_and_frees_the_connection(monkeypatch):
    from aiohttp import web

    from pulse_agent.web import limits
    from pulse_agent.web.app import make_app, serve
    from pulse_agent.web.metrics import Metrics

    monkeypatch.setattr(limits, "BODY_TIMEOUT_S", 0.3)

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    app = make_app(Metrics(), lambda: (True, "ready"), [web.post("/echo", echo)])
    runner, port = await serve(app, "127.0.0.1:0", inbound_budget(1024, 16))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 3
        writer.close()
        async with httpx.AsyncClient() as client:  # a body that arrives is read as ever
            answer = await client.post(f"http://127.0.0.1:{port}/echo", json={"a": 1})
        assert answer.status_code == 200 and answer.json() == {"a": 1}
    finally:
        await runner.cleanup()
