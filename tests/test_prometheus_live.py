"""A real Prometheus: it scrapes pulse-agent's /probe through blackbox_exporter's relabel recipe (the
pulse-probe job of examples/prometheus/prometheus.yml), and scrapes a live agent with the example
rules loaded; its query API answers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from tests.agent_process import AgentProcess
from tests.conftest import free_port, require_binary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "prometheus"


def example_job(name: str) -> dict:
    """A scrape job of examples/prometheus/prometheus.yml, scraping every second."""
    job = next(j for j in yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())["scrape_configs"] if j["job_name"] == name)
    return job | {"scrape_interval": "1s", "scrape_timeout": "1s"}


@contextmanager
def prometheus(tmp_path: Path, config: dict) -> Iterator[str]:
    """The prometheus binary on a free port, data in tmp_path; yields its base URL."""
    binary = require_binary("prometheus", "prometheus")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    web = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address={web}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://{web}"
    finally:
        proc.terminate()
        proc.wait(30)


def query(base: str, expr: str) -> list[dict]:
    """The result vector of an instant query ([] while Prometheus is not listening or not ready yet)."""
    try:
        response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.TransportError:
        return []
    if response.status_code == 503:  # "Service Unavailable" until its storage has started
        return []
    answer = response.json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def until(base: str, expr: str, done: Callable[[list[dict]], bool], timeout: float = 60.0) -> list[dict]:
    """Query expr every half second until done(result), at most timeout seconds; the last result."""
    deadline = time.monotonic() + timeout
    while not done(result := query(base, expr)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return result


def by_instance(result: list[dict]) -> dict[str, float]:
    return {r["metric"].get("instance", ""): float(r["value"][1]) for r in result}


def test_prometheus_scrapes_probe_through_the_blackbox_relabel_recipe(tmp_path, httpserver):
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
        try:
            job = example_job("pulse-probe")
            job["static_configs"] = [{"targets": [healthy, failing, hanging]}]
            job["relabel_configs"][-1]["replacement"] = agent.wait_for(lambda r: r.get("msg") == "agent started")["listen"]
            with prometheus(tmp_path, {"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}) as base:
                success = by_instance(until(base, 'probe_success{job="pulse-probe"}', lambda r: len(r) == 3))
                up = by_instance(query(base, 'up{job="pulse-probe"}'))
                duration = by_instance(query(base, 'probe_duration_seconds{job="pulse-probe"}'))
                status = by_instance(query(base, 'probe_http_status_code{job="pulse-probe"}'))
        finally:
            assert agent.stop() == 0
    assert success == {healthy: 1.0, failing: 0.0, hanging: 0.0}
    assert status == {healthy: 200.0, failing: 503.0, hanging: 0.0}
    assert up == {healthy: 1.0, failing: 1.0, hanging: 1.0}  # the hanging probe answered within the 1 s scrape
    assert 0.3 < duration[hanging] < 1.0  # 1 s scrape timeout less 0.5 s, not the module's 30 s


def test_the_example_rules_alert_on_a_live_agent(tmp_path, httpserver):
    """PulseCheckDown fires for a check failing 3 runs in a row, with its team label joined from
    pulse_check_info; not for a healthy check nor for one that has not run yet."""
    httpserver.expect_request("/ok").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"""\
version: 1
agent: {{location: eu-west}}
checks:
  - {{name: healthy, url: '{httpserver.url_for("/ok")}', schedule: every 1s}}
  - {{name: refused, url: 'http://127.0.0.1:9/', schedule: every 1s, labels: {{team: payments}}}}
  - {{name: daily, url: 'http://127.0.0.1:9/', schedule: '@daily', labels: {{team: payments}}}}
""")
    for name in ("pulse-recording.yml", "pulse-alerts.yml"):
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")
    try:
        job = example_job("pulse-agent")
        job["static_configs"] = [{"targets": [agent.wait_for(lambda r: r.get("msg") == "agent started")["listen"]]}]
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": [str(tmp_path / "pulse-recording.yml"), str(tmp_path / "pulse-alerts.yml")], "scrape_configs": [job]}  # fmt: skip
        with prometheus(tmp_path, config) as base:
            firing = until(base, 'ALERTS{alertname="PulseCheckDown", alertstate="firing"}', lambda r: len(r) > 0)
            # A recording rule evaluates on its own interval: the alert can fire before it has a sample.
            down = until(base, "pulse:check_down:locations", lambda r: len(r) > 0)
            daily = query(base, 'pulse_check_up{check="daily"}')
            info = query(base, 'pulse_check_info{check="daily"}')
    finally:
        assert agent.stop() == 0
    assert [(a["metric"]["check"], a["metric"]["team"], a["metric"]["location"]) for a in firing] == [("refused", "payments", "eu-west")]
    assert [(r["metric"]["check"], r["value"][1]) for r in down] == [("refused", "1")]
    assert daily == [] and len(info) == 1  # configured, not run: no value series, so no alert
