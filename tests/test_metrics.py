"""Metrics of one agent: names fixed by DESIGN.md, per-check series added and removed with the config."""

import platform

from pulse_agent import __version__
from pulse_agent.result import Result
from pulse_agent.web.metrics import Metrics
from tests.scrape import families, sample


def test_results_update_the_per_check_series():
    m = Metrics()
    m.set_checks(["a", "b"])
    m.observe(Result("a", 0.0, True, status_code=200, response_time_ms=250.0))
    m.observe(Result("b", 0.0, False, status_code=None, error_kind="timeout"))
    m.observe(Result("b", 0.0, False, status_code=503, response_time_ms=10.0, error_kind="status"))
    m.skipped("b")
    m.scheduler_lag.observe(0.003)
    text = m.render().decode()
    for line in [
        'pulse_check_up{check="a"} 1.0',
        'pulse_check_up{check="b"} 0.0',
        'pulse_check_duration_seconds{check="a"} 0.25',
        'pulse_check_status_code{check="b"} 503.0',
        'pulse_check_runs_total{check="a",result="success"} 1.0',
        'pulse_check_runs_total{check="b",result="failure"} 2.0',
        'pulse_check_skipped_runs_total{check="b"} 1.0',
        'pulse_checks_configured{shard="1/1"} 2.0',
        'pulse_scheduler_lag_seconds_bucket{le="0.005"} 1.0',
        "pulse_checks_inflight 0.0",
        "pulse_results_written_total 0.0",
        'pulse_check_failures_total{check="b",error_kind="timeout"} 1.0',
        'pulse_check_failures_total{check="b",error_kind="status"} 1.0',
    ]:
        assert line in text, line
    assert "_created" not in text


def test_removed_checks_disappear_from_the_exposition():
    m = Metrics()
    m.set_checks(["a", "gone"])
    m.observe(Result("gone", 0.0, True, status_code=200, response_time_ms=1.0))
    m.observe(Result("gone", 0.0, False, error_kind="dns"))
    m.set_checks(["a"])
    text = m.render().decode()
    assert 'check="gone"' not in text
    assert 'pulse_check_info{check="a"} 1.0' in text and 'pulse_checks_configured{shard="1/1"} 1.0' in text


def test_two_agents_in_one_process_do_not_share_metrics():
    one, two = Metrics(), Metrics()
    one.set_checks(["x"])
    assert 'check="x"' not in two.render().decode()


def test_degraded_certificate_and_phase_series():
    m = Metrics()
    m.set_checks(["tls"])
    m.observe(Result("tls", 0.0, True, degraded=True, status_code=200, response_time_ms=40.0,
                     dns_ms=1.0, connect_ms=2.0, tls_ms=10.0, first_byte_ms=30.0, cert_expires=1_900_000_000.0))  # fmt: skip
    text = m.render().decode()
    assert 'pulse_check_degraded{check="tls"} 1.0' in text
    assert 'pulse_check_certificate_expiry_timestamp_seconds{check="tls"} 1900000000.0' in text
    assert 'pulse_check_phase_duration_seconds{check="tls",phase="tls"} 0.01' in text
    assert 'pulse_check_phase_duration_seconds{check="tls",phase="total"} 0.04' in text
    m.set_checks([])
    assert 'check="tls"' not in m.render().decode()


def test_a_check_that_has_not_run_has_no_value_series_only_info_schedule_and_counters():
    m = Metrics()
    m.set_checks(["daily"], {"daily": (("team", "payments"), ("tier", 'say "hi"'))})
    m.next_run("daily", 1_800_000_000.0)
    text = m.render().decode()
    assert 'pulse_check_info{check="daily",team="payments",tier="say \\"hi\\""} 1.0' in text
    assert 'pulse_check_next_run_timestamp_seconds{check="daily"} 1800000000.0' in text
    assert 'pulse_check_runs_total{check="daily",result="success"} 0.0' in text
    for family in ("pulse_check_up", "pulse_check_duration_seconds", "pulse_check_status_code", "pulse_check_degraded",
                   "pulse_check_phase_duration_seconds", "pulse_check_certificate_expiry_timestamp_seconds",
                   "pulse_check_last_run_timestamp_seconds", "pulse_check_consecutive_failures"):  # fmt: skip
        assert f"{family}{{" not in text, family
    m.observe(Result("daily", 1_700_000_000.5, False, error_kind="timeout"))
    m.next_run("daily", None)  # a one-shot: never again
    text = m.render().decode()
    assert 'pulse_check_up{check="daily"} 0.0' in text
    assert 'pulse_check_last_run_timestamp_seconds{check="daily"} 1700000000.5' in text
    assert 'pulse_check_consecutive_failures{check="daily"} 1.0' in text
    assert "pulse_check_next_run_timestamp_seconds{" not in text
    assert "pulse_check_duration_seconds{" not in text and "pulse_check_phase_duration_seconds{" not in text  # no response


def test_phases_that_did_not_happen_are_absent_and_failures_count_in_a_row():
    m = Metrics()
    m.set_checks(["ip"])
    m.observe(Result("ip", 0.0, False, status_code=503, response_time_ms=5.0, connect_ms=1.0, first_byte_ms=4.0, error_kind="status"))
    m.observe(Result("ip", 1.0, False, status_code=503, response_time_ms=5.0, connect_ms=1.0, first_byte_ms=4.0, error_kind="status"))
    text = m.render().decode()
    assert 'pulse_check_phase_duration_seconds{check="ip",phase="connect"} 0.001' in text
    assert 'pulse_check_phase_duration_seconds{check="ip",phase="first_byte"} 0.004' in text
    assert 'phase="dns"' not in text and 'phase="tls"' not in text  # an IP target over plain http
    assert 'pulse_check_consecutive_failures{check="ip"} 2.0' in text
    m.observe(Result("ip", 2.0, True, status_code=200, response_time_ms=5.0))
    assert 'pulse_check_consecutive_failures{check="ip"} 0.0' in m.render().decode()


def test_location_labels_every_per_check_series_and_unknown_next_runs_are_ignored():
    m = Metrics(location="eu-west")
    m.set_checks(["a"])
    m.observe(Result("a", 0.0, True, status_code=200, response_time_ms=1.0))
    m.skipped("a")
    m.next_run("removed-meanwhile", 5.0)
    text = m.render().decode()
    per_check = [line for line in text.splitlines() if 'check="' in line]
    assert per_check and all('location="eu-west"' in line for line in per_check)
    assert "removed-meanwhile" not in text


def test_process_build_info_and_reload_gauges_describe_the_running_config():
    m = Metrics()
    assert sample(m, "process_cpu_seconds_total") is not None
    build = [s for f in families(m) if f.name == "pulse_build_info" for s in f.samples]
    assert build and build[0].labels["version"] == __version__ and build[0].labels["python"] == platform.python_version()
    m.config_applied(1_700_000_000.0)
    assert sample(m, "pulse_config_last_reload_success_timestamp_seconds") == 1_700_000_000.0
    m.reloaded(False, 1_700_000_100.0)
    assert sample(m, "pulse_config_last_reload_successful") == 0
    m.config_restored()
    assert sample(m, "pulse_config_last_reload_successful") == 1
    assert sample(m, "pulse_config_last_reload_success_timestamp_seconds") == 1_700_000_000.0
    assert sample(m, "pulse_config_reloads_total", {"result": "success"}) == 0


def test_failures_by_kind_stay_with_their_check_when_checks_that_never_failed_share_an_empty_count():
    m = Metrics()
    m.set_checks(["a", "b", "c"])
    m.observe(Result("a", 0.0, False, error_kind="timeout"))
    m.observe(Result("c", 0.0, True))
    m.observe(Result("b", 0.0, False, error_kind="dns"))
    m.observe(Result("a", 1.0, False, error_kind="timeout"))
    failures = [line for line in m.render().decode().splitlines() if line.startswith("pulse_check_failures_total{")]
    assert failures == ['pulse_check_failures_total{check="a",error_kind="timeout"} 2.0',
                        'pulse_check_failures_total{check="b",error_kind="dns"} 1.0']  # fmt: skip
    m.set_checks(["a", "b", "c", "d"])
    assert not any('check="d"' in line or 'check="c"' in line for line in m.render().decode().splitlines() if "failures_total{" in line)
