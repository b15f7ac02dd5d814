"""What users alert on, through a real agent: no values before a first result, last/next run times
(in the agent and with probe workers), check labels on pulse_check_info, and reload gauges that
describe the running config."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pulse_agent.schedule import parse_schedule
from tests.agent_process import AgentProcess
from tests.scrape import sample
from tests.test_api import agent_at, config_text, target, tick  # noqa: F401 (target: a fixture)
from tests.test_reload_e2e import atomic_write


def samples(text: str, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    """family's samples by their sorted labels."""
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == family}  # fmt: skip


async def test_last_and_next_run_follow_the_scheduler_and_reload_gauges_describe_the_running_config(target, tmp_path):  # noqa: F811
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    good = cfg.read_text()
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, clock, client):
        read = lambda name, labels=None: sample(agent.metrics, name, labels)  # noqa: E731
        started = clock.time()
        assert read("pulse_config_last_reload_success_timestamp_seconds") == started  # set at start, not 0
        assert read("pulse_config_last_reload_successful") == 1
        spec = agent.spec.check("api")
        first = spec.schedule.next_due(started, "api")
        assert read("pulse_check_next_run_timestamp_seconds", {"check": "api"}) == first
        assert read("pulse_check_up", {"check": "api"}) is None  # has not run yet
        assert read("pulse_check_last_run_timestamp_seconds", {"check": "api"}) is None
        assert read("pulse_check_info", {"check": "api", "team": "core"}) == 1
        assert read("pulse_check_info", {"check": "paused"}) is None  # disabled: not exported

        await tick(agent, clock)
        assert read("pulse_check_up", {"check": "api"}) == 1
        last = read("pulse_check_last_run_timestamp_seconds", {"check": "api"})
        assert first <= last <= clock.time()
        assert read("pulse_check_next_run_timestamp_seconds", {"check": "api"}) == first + 10

        cfg.write_text(good.replace("every 10s", "every 0s"))  # refused
        assert (await agent.reloader.reload_if_changed()).ok is False
        assert read("pulse_config_last_reload_successful") == 0
        assert await agent.reloader.reload_if_changed() is None  # the same broken file is reported once
        cfg.write_text(good)  # `git revert`: the running config is back on disk
        assert await agent.reloader.reload_if_changed() is None  # nothing to apply ...
        assert read("pulse_config_last_reload_successful") == 1  # ... and nothing refused any more
        assert read("pulse_config_last_reload_success_timestamp_seconds") == started
        assert read("pulse_config_reloads_total", {"result": "success"}) == 0
        metrics = (await client.get("/metrics")).text
        assert "pulse_config_last_reload_successful 1.0" in metrics


def test_with_workers_next_runs_come_from_the_workers_schedulers(tmp_path, httpserver):
    httpserver.expect_request("/ok").respond_with_data("ok")
    ok = httpserver.url_for("/ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"""\
version: 1
agent: {{workers: 2, location: eu-west}}
checks:
  - {{name: fast, url: '{ok}', schedule: every 1s, labels: {{team: web}}}}
  - {{name: daily, url: '{ok}', schedule: '@daily'}}
  - {{name: dns-less, url: '{ok.replace("localhost", "127.0.0.1")}', schedule: every 1s}}
""")
    before = time.time()
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")
    try:
        base = f"http://{agent.wait_for(lambda r: r.get('msg') == 'agent started')['listen']}"
        agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "fast")
        agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "dns-less")
        deadline = time.monotonic() + 10
        while True:  # results travel in frames: wait until /metrics has both checks' next runs
            text = httpx.get(f"{base}/metrics", timeout=5).text
            nexts = samples(text, "pulse_check_next_run_timestamp_seconds")
            lasts = samples(text, "pulse_check_last_run_timestamp_seconds")
            if (len(nexts) == 3 and len(lasts) == 2) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        assert agent.stop() == 0
    fast = (("check", "fast"), ("location", "eu-west"))
    daily = (("check", "daily"), ("location", "eu-west"))
    assert nexts[daily] == parse_schedule("@daily", "UTC").next_due(before, "daily")
    assert lasts[fast] < nexts[fast] <= lasts[fast] + 1.5  # the next grid point after the last run
    assert daily not in lasts and daily not in samples(text, "pulse_check_up")  # not run yet: no values
    assert samples(text, "pulse_check_info")[(*fast, ("team", "web"))] == 1
    phases = {dict(k)["phase"] for k in samples(text, "pulse_check_phase_duration_seconds") if dict(k)["check"] == "dns-less"}
    assert phases == {"connect", "first_byte", "total"}  # http to 127.0.0.1: no name to resolve, no TLS
    assert samples(text, "pulse_build_info") and samples(text, "process_resident_memory_bytes")
    assert all(dict(k).get("location") == "eu-west" for k in samples(text, "pulse_check_runs_total"))


def test_undoing_a_refused_edit_on_disk_clears_the_reload_alert_without_a_reload(tmp_path, httpserver):
    httpserver.expect_request("/ok").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    good = f"version: 1\nchecks:\n  - {{name: a, url: '{httpserver.url_for('/ok')}', schedule: every 1s}}\n"
    cfg.write_text(good)
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")

    def gauge(base: str) -> str:
        text = httpx.get(f"{base}/metrics", timeout=5).text
        return next(line for line in text.splitlines() if line.startswith("pulse_config_last_reload_successful "))

    try:
        base = f"http://{agent.wait_for(lambda r: r.get('msg') == 'agent started')['listen']}"
        atomic_write(cfg, good + "  - {name: b, url: 'ftp://nope'}\n")
        deadline = time.monotonic() + 10
        while gauge(base).endswith(" 1.0") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gauge(base).endswith(" 0.0")
        atomic_write(cfg, good)  # `cp good.yaml pulse.yaml`: no POST /-/reload, no SIGHUP
        deadline = time.monotonic() + 10
        while gauge(base).endswith(" 0.0") and time.monotonic() < deadline:
            time.sleep(0.1)
        text = httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        assert agent.stop() == 0
    assert "pulse_config_last_reload_successful 1.0" in text
    assert 'pulse_config_reloads_total{result="failure"} 1.0' in text
    assert 'pulse_config_reloads_total{result="success"} 0.0' in text  # nothing was loaded again


async def test_metrics_detail_compact_leaves_out_phases_protocol_and_next_run_and_a_reload_switches_it(target, tmp_path):  # noqa: F811
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    full = cfg.read_text()
    compact = full.replace("agent: {", "agent: {metrics_detail: compact, ")
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, clock, client):
        await tick(agent, clock)
        omitted = ("pulse_check_phase_duration_seconds", "pulse_check_protocol_info", "pulse_check_next_run_timestamp_seconds")

        async def present() -> set[str]:
            text = (await client.get("/metrics")).text
            return {f for f in (*omitted, "pulse_check_up", "pulse_check_runs_total") if samples(text, f)}

        assert await present() == set(omitted) | {"pulse_check_up", "pulse_check_runs_total"}
        cfg.write_text(compact)
        assert (await agent.reloader.reload_if_changed()).ok
        assert await present() == {"pulse_check_up", "pulse_check_runs_total"}  # the same run's other series stay
        cfg.write_text(full)
        assert (await agent.reloader.reload_if_changed()).ok
        assert await present() == set(omitted) | {"pulse_check_up", "pulse_check_runs_total"}
