"""agent.workers: auto — the rate a config asks for, the decision, and a real agent following it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from pulse_agent.capacity import AUTO_WORKERS_ABOVE, checks_per_second, resolve_workers
from pulse_agent.config.model import CheckSpec
from pulse_agent.schedule import parse_schedule
from tests.agent_process import AgentProcess
from tests.conftest import run_cli


def check(name: str, schedule: str) -> CheckSpec:
    return CheckSpec(name=name, url="http://127.0.0.1:1/", schedule=parse_schedule(schedule))


def test_rate_counts_intervals_crons_and_ignores_one_shots():
    checks = [check("a", "1s"), check("b", "2s"), check("c", "* * * * *"), check("d", "at 2030-01-01T00:00:00Z")]
    assert checks_per_second(checks, now=1_800_000_000.0) == pytest.approx(1.0 + 0.5 + 1 / 60)
    # a 6-field cron firing every second counts as 1/s
    assert checks_per_second([check("e", "* * * * * *")], now=1_800_000_000.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("setting", "rate", "cores", "workers"),
    [
        ("auto", 0.1, 8, 0),  # a sidecar: no extra process
        ("auto", AUTO_WORKERS_ABOVE, 8, 0),  # at the threshold one process still serves
        ("auto", AUTO_WORKERS_ABOVE + 1, 8, 8),  # above it: a worker per core
        ("auto", 50_000, 1, 0),  # one core: workers would only add IPC
        (0, 50_000, 8, 0),  # an explicit setting wins
        (3, 0.1, 8, 3),
    ],
)
def test_decision(setting, rate, cores, workers):
    n, reason = resolve_workers(setting, rate, cores)
    assert n == workers
    assert reason  # logged at start


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="auto starts workers only with 2 or more cores")
@pytest.mark.parametrize(("count", "expect_workers"), [(3, False), (int(AUTO_WORKERS_ABOVE) + 10, True)])
def test_a_real_agent_starts_workers_only_when_the_rate_needs_them(tmp_path, count, expect_workers):
    port = closed_port()  # refused at once: each run is cheap
    lines = ["version: 1", "agent: {log_level: info}", "checks:"]
    lines += [f"  - {{name: c{i}, url: 'http://127.0.0.1:{port}/', schedule: 1s, timeout: 1s}}" for i in range(count)]
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    assert run_cli("validate", "-c", str(cfg)).returncode == 0  # workers defaults to auto
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started", timeout=40)
        assert started["workers"] == (os.cpu_count() if expect_workers else 0)
        assert len(children(agent.proc.pid)) == (os.cpu_count() if expect_workers else 0)
    finally:
        assert agent.stop() == 0
