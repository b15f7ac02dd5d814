"""A real Prometheus scrapes pulse-agent's /probe through blackbox_exporter's relabel recipe (the
pulse-probe job of examples/prometheus/prometheus.yml), and its query API answers probe_success."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from tests.agent_process import AgentProcess
from tests.conftest import free_port, require_binary

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "prometheus" / "prometheus.yml"


def query(base: str, expr: str) -> dict[str, float]:
    """instance -> value of an instant query."""
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return {r["metric"].get("instance", ""): float(r["value"][1]) for r in answer["data"]["result"]}


def test_prometheus_scrapes_probe_through_the_blackbox_relabel_recipe(tmp_path, httpserver):
    binary = require_binary("prometheus", "prometheus")
    httpserver.expect_request("/ok").respond_with_data("ok")
    httpserver.expect_request("/fail").respond_with_data("down", status=503)
    healthy, failing = httpserver.url_for("/ok"), httpserver.url_for("/fail")
    with socket.socket() as silent:  # accepts, never answers: the scrape timeout must bound the probe
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        hanging = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        cfg = tmp_path / "pulse.yaml"
        cfg.write_text(f"""\
version: 1
modules:
  http_2xx: {{timeout: 30s, allowed_targets: ['http://localhost:{httpserver.port}/*', '127.0.0.1']}}
checks: []
""")
        agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")
        prometheus = None
        try:
            listen = agent.wait_for(lambda r: r.get("msg") == "agent started")["listen"]
            job = next(j for j in yaml.safe_load(EXAMPLE.read_text())["scrape_configs"] if j["job_name"] == "pulse-probe")
            job["static_configs"] = [{"targets": [healthy, failing, hanging]}]
            job["relabel_configs"][-1]["replacement"] = listen  # the recipe's last step: where the exporter is
            job |= {"scrape_interval": "1s", "scrape_timeout": "1s"}
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}))
            web = f"127.0.0.1:{free_port()}"
            prometheus = subprocess.Popen(
                [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
                 f"--web.listen-address={web}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            base, deadline = f"http://{web}", time.monotonic() + 60
            success: dict[str, float] = {}
            while time.monotonic() < deadline:
                try:
                    success = query(base, 'probe_success{job="pulse-probe"}')
                except httpx.TransportError:  # not listening yet
                    success = {}
                if len(success) == 3:
                    break
                time.sleep(0.5)
            up = query(base, 'up{job="pulse-probe"}')
            duration = query(base, 'probe_duration_seconds{job="pulse-probe"}')
            status = query(base, 'probe_http_status_code{job="pulse-probe"}')
        finally:
            if prometheus is not None:
                prometheus.terminate()
                prometheus.wait(30)
            assert agent.stop() == 0
    assert success == {healthy: 1.0, failing: 0.0, hanging: 0.0}
    assert status == {healthy: 200.0, failing: 503.0, hanging: 0.0}
    assert up == {healthy: 1.0, failing: 1.0, hanging: 1.0}  # the hanging probe answered within the 1 s scrape
    assert 0.3 < duration[hanging] < 1.0  # 1 s scrape timeout less 0.5 s, not the module's 30 s
