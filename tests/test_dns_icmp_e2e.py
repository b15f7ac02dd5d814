"""A real `pulse-agent run` with probe workers running a DNS and an ICMP check against this machine:
results with their details in DuckDB, the API, per-check metrics, an incident for the failing one, a report."""

from __future__ import annotations

import json

import duckdb
import httpx

from tests.agent_process import AgentProcess
from tests.conftest import run_cli
from tests.dns_servers import ZONE, dnsmasq


def config(port: int) -> str:
    return f"""version: 1
agent: {{workers: 2}}
checks:
  - name: www-a
    url: dns://127.0.0.1:{port}
    dns: {{name: www.{ZONE}, type: A}}
    schedule: every 1s
    timeout: 2s
    expect: {{answer: {{equals: ["192.0.2.10"]}}, authoritative: true}}
  - name: gone
    url: dns://127.0.0.1:{port}
    dns: {{name: gone.{ZONE}}}
    schedule: every 1s
    timeout: 2s
    alert: {{failure_threshold: 2}}
  - name: loopback
    url: icmp://127.0.0.1
    icmp: {{count: 2, interval: 50ms}}
    schedule: every 1s
    timeout: 900ms
    expect: {{max_packet_loss: 0}}
"""


def test_an_agent_with_workers_runs_dns_and_icmp_checks_and_stores_their_details(tmp_path):
    with dnsmasq() as port:
        cfg, db = tmp_path / "pulse.yaml", tmp_path / "p.duckdb"
        cfg.write_text(config(port))
        agent = AgentProcess("-c", str(cfg), "--db", str(db), "--listen", "127.0.0.1:0")
        try:
            started = agent.wait_for(lambda r: r.get("msg") == "agent started")
            assert started["workers"] == 2
            for name, ok in (("www-a", True), ("gone", False), ("loopback", True)):
                agent.wait_for(lambda r, n=name, ok=ok: r.get("msg") == "result" and r.get("check") == n and r.get("ok") is ok)
            agent.wait_for(lambda r: r.get("msg") == "alert failure" and r.get("check") == "gone")
            base = f"http://{started['listen']}"
            with httpx.Client(base_url=base, timeout=5) as web:
                results = web.get("/api/v1/checks/www-a/results").json()
                metrics = web.get("/metrics").text
                incidents = web.get("/api/v1/incidents").json()["incidents"]
                for _ in range(50):  # 409 while the scheduled run is under way
                    answer = web.post("/api/v1/checks/loopback/run")
                    if answer.status_code != 409:
                        break
                run_now = answer.json()
        finally:
            code = agent.stop()
    assert code == 0
    latest = results["results"][0] if isinstance(results, dict) else results[0]
    assert latest["ok"] is True and latest["details"]["answers"] == ["192.0.2.10"]
    assert [i["check_name"] for i in incidents] == ["gone"]
    assert run_now["ok"] is True and run_now["details"]["received"] == 2
    assert 'pulse_check_up{check="loopback"' in metrics and 'pulse_check_up{check="www-a"' in metrics
    assert 'pulse_check_failures_total{check="gone",error_kind="rcode"' in metrics
    with duckdb.connect(str(db), read_only=True) as con:
        rows = dict(con.execute("SELECT check_name, any_value(details) FILTER (WHERE details IS NOT NULL) FROM results GROUP BY 1").fetchall())
        kinds = dict(con.execute("SELECT check_name, any_value(error_kind) FROM results GROUP BY 1").fetchall())
        loss = con.execute("SELECT max(CAST(details->>'$.packet_loss' AS DOUBLE)) FROM results WHERE check_name = 'loopback'").fetchone()
    assert set(rows) == {"www-a", "gone", "loopback"} and all(rows.values())
    assert kinds == {"www-a": None, "gone": "rcode", "loopback": None}
    assert loss == (0.0,)
    report = run_cli("report", "--db", str(db), "--since", "1h", "--format", "json")
    assert report.returncode == 0, report.stderr
    summary = {row["check_name"]: row for row in json.loads(report.stdout)["rows"]}
    assert summary["gone"]["failures_by_kind"] == {"rcode": summary["gone"]["runs"]}
    assert summary["www-a"]["uptime_pct"] == 100 and summary["loopback"]["uptime_pct"] == 100
