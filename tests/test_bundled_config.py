"""The bundled pulse.yaml and the example configs give the verdicts they promise (issue 14)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import duckdb
import yaml

from tests.agent_process import AgentProcess
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "pulse.yaml"
RUN_FOR_S = 30.0


def _bundled_check_names() -> set[str]:
    return {c["name"] for c in yaml.safe_load(BUNDLED.read_text())["checks"]}


def test_bundled_config_runs_30s_with_every_check_ok_on_any_address(tmp_path):
    """`pulse-agent run` on the bundled pulse.yaml: every run of every bundled check is ok, whether the
    address comes from PULSE_LISTEN or from --listen (the self-checks follow it; they used to probe 9108)."""
    by_env = tmp_path / "env.duckdb"
    by_flag = tmp_path / "flag.duckdb"
    agents = [
        AgentProcess("-c", str(BUNDLED), "--db", str(by_env), env={"PULSE_LISTEN": f"127.0.0.1:{free_port()}"}),
        AgentProcess("-c", str(BUNDLED), "--db", str(by_flag), "--listen", f"127.0.0.1:{free_port()}", env={"PULSE_LISTEN": ""}),
    ]
    try:
        for agent in agents:
            agent.wait_for(lambda r: r.get("msg") == "agent started")
        time.sleep(RUN_FOR_S)
    finally:
        codes = [agent.stop(signal.SIGTERM) for agent in agents]
    assert codes == [0, 0]
    for db in (by_env, by_flag):
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.execute("SELECT check_name, ok, error_kind, error FROM results").fetchall()
        assert {name for name, *_ in rows} == _bundled_check_names(), (db.name, rows)
        assert [r for r in rows if not r[1]] == [], db.name
        assert len(rows) >= 6  # self-health every 5s, self-metrics every 15s, over 30s
