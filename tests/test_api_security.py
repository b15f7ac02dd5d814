"""The API's own defences, against the real agent (in-process, real HTTP, real DuckDB file):
authentication, input validation (every bad input a 4xx, never a 500), exports only into
agent.export_dir, and SSE clients that go away quietly."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from pulse_agent.listen import OpenApiRefused, api_exposure
from tests.test_alerting import Target
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
