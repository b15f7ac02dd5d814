"""Schemathesis over the shipped OpenAPI document against a real running agent: no input makes
any route answer 5xx (bounded to about 30 s in all)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pulse_agent.web.api import openapi_text
from tests.agent_process import AgentProcess
from tests.conftest import free_port

TOKEN = "fuzz-token-0123456789abcdef"


@pytest.mark.timeout(240)  # schemathesis and an agent in subprocesses: minutes on a loaded 2-core machine
def test_no_generated_request_gets_a_server_error(tmp_path):
    port = free_port()
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        f"version: 1\nagent: {{listen: '127.0.0.1:{port}', api_token: '{TOKEN}', export_dir: '{tmp_path}/exports', query_timeout: 5s}}\n"
        f"checks:\n  - {{name: api, url: 'http://127.0.0.1:{port}/healthz', schedule: every 5s}}\n"
    )
    doc = tmp_path / "openapi.json"
    doc.write_text(openapi_text())
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"))
    try:
        agent.wait_for(lambda r: r.get("msg") == "agent started")
        st = Path(sys.executable).parent / "st"
        run = subprocess.run(
            [str(st), "run", str(doc), "--url", f"http://127.0.0.1:{port}", "-H", f"Authorization: Bearer {TOKEN}",
             "--checks", "not_a_server_error", "--exclude-path", "/api/v1/events",  # a stream: it never ends
             "--max-examples", "15", "--max-time", "20", "--request-timeout", "10", "--seed", "1"],
            capture_output=True, text=True, timeout=55, cwd=tmp_path,
        )  # fmt: skip
    finally:
        assert agent.stop(signal.SIGTERM, timeout=90) == 0
    assert run.returncode == 0, run.stdout[-3000:]
    tally = re.search(r"(\d+) generated, (\d+) passed", run.stdout)  # schemathesis exits 1 on any failed check
    assert tally and tally[1] == tally[2] and int(tally[1]) > 100, run.stdout[-3000:]
