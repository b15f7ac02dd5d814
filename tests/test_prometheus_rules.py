"""examples/prometheus/ through the real promtool: the scrape config, the rules and their unit tests,
every alert tested, only exported metric names used; and `promtool check metrics` on a live agent."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from pulse_agent.result import Result
from pulse_agent.web.metrics import Metrics
from tests.agent_process import AgentProcess
from tests.conftest import require_binary

HERE = Path(__file__).resolve().parent.parent / "examples" / "prometheus"
RULE_FILES = ("pulse-recording.yml", "pulse-alerts.yml")


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    tool = require_binary("promtool", "prometheus")
    return subprocess.run([tool, *args], cwd=HERE, input=stdin, capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_scrape_config_and_the_rules():
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS: 2 rule files found" in config.stdout
    rules = promtool("check", "rules", *RULE_FILES)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert rules.stdout.count("SUCCESS") == 2


def test_promtool_unit_tests_of_the_alerts_pass_and_cover_every_alert():
    run = promtool("test", "rules", "pulse-alerts.test.yml")
    assert run.returncode == 0, run.stdout + run.stderr
    alerts = {r["alert"] for g in yaml.safe_load((HERE / "pulse-alerts.yml").read_text())["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((HERE / "pulse-alerts.test.yml").read_text())["tests"]
    firing = {t["alertname"] for case in tests for t in case.get("alert_rule_test", ()) if t["exp_alerts"]}
    quiet = {t["alertname"] for case in tests for t in case.get("alert_rule_test", ()) if not t["exp_alerts"]}
    assert alerts == firing == quiet  # each alert is seen firing, and seen not firing


def test_a_broken_expectation_fails_promtool(tmp_path):
    """The unit tests can fail: the same file with one wrong expected label does."""
    for name in RULE_FILES:
        (tmp_path / name).write_text((HERE / name).read_text())
    text = (HERE / "pulse-alerts.test.yml").read_text().replace("team: payments", "team: checkout")
    (tmp_path / "t.yml").write_text(text)
    tool = require_binary("promtool", "prometheus")
    run = subprocess.run([tool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "PulseCheckDown" in run.stdout + run.stderr


def test_the_rules_use_only_metrics_the_agent_exports():
    m = Metrics(location="eu-west")
    m.set_checks(["a"], {"a": (("team", "core"),)})
    m.observe(Result("a", 0.0, False, status_code=503, response_time_ms=5.0, error_kind="status", cert_expires=1.0))
    m.next_run("a", 10.0)
    m.notification("ops", "dead")
    exported = set(re.findall(r"^(pulse_[a-z_]+)", m.render().decode(), re.MULTILINE))
    exprs = [r["expr"] for name in RULE_FILES for g in yaml.safe_load((HERE / name).read_text())["groups"] for r in g["rules"]]
    used = {name for e in exprs for name in re.findall(r"\bpulse_[a-z_]+", e)}
    assert used and used <= exported, used - exported


def test_promtool_check_metrics_passes_on_a_live_agent(tmp_path, httpserver):
    httpserver.expect_request("/ok").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"""\
version: 1
agent: {{location: eu-west}}
notifiers: {{ops: {{urls: ['json://127.0.0.1:9/hook']}}}}
checks:
  - {{name: ok, url: '{httpserver.url_for("/ok")}', schedule: every 1s, labels: {{team: core, tier: "1"}}}}
  - {{name: refused, url: 'http://127.0.0.1:9/', schedule: every 1s, alert: {{notify: [ops], failure_threshold: 1}}}}
  - {{name: later, url: '{httpserver.url_for("/ok")}', schedule: '@daily'}}
""")
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")
    try:
        base = f"http://{agent.wait_for(lambda r: r.get('msg') == 'agent started')['listen']}"
        for name in ("ok", "refused"):
            agent.wait_for(lambda r, name=name: r.get("msg") == "result" and r.get("check") == name)
        time.sleep(0.1)
        text = httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        assert agent.stop() == 0
    lint = promtool("check", "metrics", stdin=text)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for line in ('pulse_check_info{check="ok",location="eu-west",team="core",tier="1"} 1.0',
                 'pulse_check_up{check="refused",location="eu-west"} 0.0',
                 'pulse_check_failures_total{check="refused",location="eu-west",error_kind="connect"}'):  # fmt: skip
        assert line in text, line
    assert "process_cpu_seconds_total" in text and "pulse_build_info{" in text
    assert 'pulse_check_up{check="later"' not in text
