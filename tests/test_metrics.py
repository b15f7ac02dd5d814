"""Metrics of one agent: names fixed by DESIGN.md, per-check series added and removed with the config."""

from pulse_agent.result import Result
from pulse_agent.web.metrics import Metrics


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
    assert 'pulse_check_up{check="a"}' in text and 'pulse_checks_configured{shard="1/1"} 1.0' in text


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
