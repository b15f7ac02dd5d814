"""The real agent as a subprocess: start, scrape /metrics, SIGTERM, inspect the database."""

from __future__ import annotations

import signal
import textwrap

import duckdb
import httpx
import pytest

from tests.agent_process import AgentProcess
from tests.conftest import free_port, run_cli


@pytest.fixture
def agent_config(tmp_path, httpserver):
    httpserver.expect_request("/up").respond_with_data("ok")
    httpserver.expect_request("/down").respond_with_data("broken", status=500)
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        version: 1
        agent: {{log_format: json}}
        checks:
          - name: up
            url: {httpserver.url_for("/up")}
            schedule: every 1s
            timeout: 2s
            labels: {{team: core}}
          - name: down
            url: {httpserver.url_for("/down")}
            schedule: 1s
          - name: paused
            url: {httpserver.url_for("/up")}
            enabled: false
        """)
    )
    return cfg


def test_agent_runs_checks_stores_results_exports_metrics_and_stops_cleanly(agent_config, tmp_path):
    db = tmp_path / "data.duckdb"
    agent = AgentProcess("-c", str(agent_config), "--db", str(db), "--listen", "127.0.0.1:0")
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        base = f"http://{started['listen']}"
        assert started["checks"] == 2
        for name in ("up", "down"):
            agent.wait_for(lambda r, n=name: r.get("msg") == "result" and r.get("check") == n)
        result = agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "down")
        assert (result["ok"], result["status_code"], result["error_kind"]) == (False, 500, "status")

        health = run_cli("healthcheck", "--url", f"{base}/healthz")
        assert health.returncode == 0 and health.stdout.strip() == f"{base}/healthz: ok"
        with httpx.Client(base_url=base, timeout=5) as client:
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.text.startswith("ready")
            metrics = client.get("/metrics").text
        assert 'pulse_check_up{check="up"} 1.0' in metrics
        assert 'pulse_check_up{check="down"} 0.0' in metrics
        assert 'pulse_check_status_code{check="down"} 500.0' in metrics
        assert 'pulse_check_runs_total{check="down",result="failure"}' in metrics
        assert 'pulse_check_duration_seconds{check="up"}' in metrics
        assert 'pulse_checks_configured{shard="1/1"} 2.0' in metrics
        assert "pulse_scheduler_lag_seconds_bucket" in metrics
        assert "pulse_results_written_total" in metrics
        assert 'check="paused"' not in metrics
    finally:
        code = agent.stop(signal.SIGTERM)
    assert code == 0
    stopped = agent.wait_for(lambda r: r.get("msg") == "agent stopped")

    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(con.execute("SELECT check_name, count(*) FROM results GROUP BY 1").fetchall())
        down = con.execute("SELECT ok, status_code, error_kind, error, attempts FROM results WHERE check_name = 'down' LIMIT 1").fetchall()
        late = con.execute("SELECT max(epoch(ts) - epoch(scheduled_ts)) FROM results").fetchall()
    assert set(counts) == {"up", "down"}
    assert sum(counts.values()) == stopped["results_written"]  # everything logged as written is in the file
    assert down == [(False, 500, "status", "status 500 not in [2xx]", 1)]
    assert 0 <= late[0][0] < 1.0


def test_sigint_stops_the_agent_too_and_in_flight_runs_finish(tmp_path):
    from tests.conftest import misbehaving  # noqa: F401  (the hanging target is an asyncio server; use a slow httpserver here)

    cfg = tmp_path / "pulse.yaml"
    port = free_port()
    cfg.write_text(f"version: 1\nchecks:\n  - {{name: self, url: 'http://127.0.0.1:{port}/healthz', schedule: 1s}}\n")
    db = tmp_path / "d.duckdb"
    agent = AgentProcess("-c", str(cfg), "--db", str(db), "--listen", f"127.0.0.1:{port}")
    agent.wait_for(lambda r: r.get("msg") == "result" and r.get("ok") is True)
    assert agent.stop(signal.SIGINT) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results WHERE ok").fetchall()[0][0] >= 1


def test_listen_address_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "pulse.yaml"
        cfg.write_text("version: 1\n")
        proc = run_cli("run", "-c", str(cfg), "--db", str(tmp_path / "x.duckdb"), "--listen", f"127.0.0.1:{port}")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"pulse-agent: cannot listen on 127.0.0.1:{port}")


def test_healthcheck_fails_when_no_agent_answers_and_finds_the_url_in_the_config(tmp_path):
    port = free_port()
    proc = run_cli("healthcheck", "--url", f"http://127.0.0.1:{port}/healthz", "--timeout", "1")
    assert proc.returncode == 1 and "Connection refused" in proc.stderr
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nagent: {{listen: '0.0.0.0:{port}'}}\n")
    from_config = run_cli("healthcheck", "-c", str(cfg), "--timeout", "1")
    assert from_config.returncode == 1 and f"http://127.0.0.1:{port}/healthz" in from_config.stderr
