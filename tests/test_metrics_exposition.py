"""The exposition in pieces: the same text, byte for byte, as one render; pieces of one family and at most
a slice of checks; series follow the checks and metrics_detail (serving: test_pieces.py)."""

import re
import subprocess

from pulse_agent.result import Result
from pulse_agent.web.exposition import FAMILIES, SLICE
from pulse_agent.web.metrics import Metrics
from tests.conftest import require_binary

N = 2 * SLICE + 7  # three pieces of most families


def _https_run(name: str, at: float, ok: bool = True) -> Result:
    return Result(name, at, ok, status_code=200 if ok else 503, response_time_ms=41.5, dns_ms=1.2, connect_ms=3.4, tls_ms=9.8,
                  first_byte_ms=30.1, cert_expires=1.9e9, http_version="1.1", tls_version="1.3",
                  error_kind=None if ok else "status")  # fmt: skip


def many_checks(n: int = N, detail: str = "full", kind: type[Metrics] = Metrics) -> Metrics:
    m = kind(location="eu-west", detail=detail)  # type: ignore[arg-type]
    names = [f"c{i}" for i in range(n)]
    m.set_checks(names, {name: (("team", f't"{i % 3}'),) for i, name in enumerate(names)})
    for i, name in enumerate(names):
        m.observe(_https_run(name, 1.8e9 + i, ok=i % 5 != 0))
        m.next_run(name, 1.8e9 + 60 + i)
    return m


def without_process(text: bytes) -> bytes:
    return re.sub(rb"(?m)^process_\S+ \S+\n", b"", text)  # the process' own CPU and memory move between two reads


def test_the_exposition_of_a_small_agent_is_exactly_the_text_format():
    m = Metrics()
    m.set_checks(["a"], {"a": (("team", "core"),)})
    m.observe(Result("a", 1.7e9, False, status_code=503, response_time_ms=5.0, connect_ms=1.0, first_byte_ms=4.0, error_kind="status"))
    m.next_run("a", 1.7e9 + 30)
    per_check = m.render().decode().split("# HELP process_")[0]  # then the agent-wide series
    expected = """\
# HELP pulse_check_info Always 1: a configured check, with its labels.
# TYPE pulse_check_info gauge
pulse_check_info{check="a",team="core"} 1.0
# HELP pulse_check_up 1 if the last run of the check succeeded, else 0.
# TYPE pulse_check_up gauge
pulse_check_up{check="a"} 0.0
# HELP pulse_check_duration_seconds Response time of the last run.
# TYPE pulse_check_duration_seconds gauge
pulse_check_duration_seconds{check="a"} 0.005
# HELP pulse_check_status_code HTTP status code of the last run (0: none).
# TYPE pulse_check_status_code gauge
pulse_check_status_code{check="a"} 503.0
# HELP pulse_check_degraded 1 if the last run was ok but slower than degraded_response_time.
# TYPE pulse_check_degraded gauge
pulse_check_degraded{check="a"} 0.0
# HELP pulse_check_consecutive_failures Failed runs in a row, up to the last run (0 after a success).
# TYPE pulse_check_consecutive_failures gauge
pulse_check_consecutive_failures{check="a"} 1.0
# HELP pulse_check_last_run_timestamp_seconds When the last finished run started (Unix time).
# TYPE pulse_check_last_run_timestamp_seconds gauge
pulse_check_last_run_timestamp_seconds{check="a"} 1700000000.0
# HELP pulse_check_next_run_timestamp_seconds When the next scheduled run is due (Unix time).
# TYPE pulse_check_next_run_timestamp_seconds gauge
pulse_check_next_run_timestamp_seconds{check="a"} 1700000030.0
# HELP pulse_check_runs_total Finished runs by result.
# TYPE pulse_check_runs_total counter
pulse_check_runs_total{check="a",result="success"} 0.0
pulse_check_runs_total{check="a",result="failure"} 1.0
# HELP pulse_check_skipped_runs_total Runs skipped because the previous run was still going.
# TYPE pulse_check_skipped_runs_total counter
pulse_check_skipped_runs_total{check="a"} 0.0
# HELP pulse_check_failures_total Failed runs by error_kind (series appear with the first failure of a kind).
# TYPE pulse_check_failures_total counter
pulse_check_failures_total{check="a",error_kind="status"} 1.0
# HELP pulse_check_phase_duration_seconds Time spent in each phase of the last run (dns, connect, tls, first_byte, total).
# TYPE pulse_check_phase_duration_seconds gauge
pulse_check_phase_duration_seconds{check="a",phase="connect"} 0.001
pulse_check_phase_duration_seconds{check="a",phase="first_byte"} 0.004
pulse_check_phase_duration_seconds{check="a",phase="total"} 0.005
# HELP pulse_check_certificate_expiry_timestamp_seconds Expiry (Unix time) of the peer certificate seen by the last https or tls run.
# TYPE pulse_check_certificate_expiry_timestamp_seconds gauge
# HELP pulse_check_protocol_info Always 1: the HTTP and TLS versions of the last run's final response.
# TYPE pulse_check_protocol_info gauge
"""
    assert per_check == expected
    empty = Metrics().render().decode()
    assert all(header in empty for _, header, _, _ in FAMILIES)  # no checks: every family's HELP and TYPE still


def test_pieces_hold_one_family_of_at_most_a_slice_of_checks_and_join_to_the_render():
    m = many_checks()
    pieces = list(m.exposition())
    assert without_process(b"".join(pieces)) == without_process(m.render())
    per_check = pieces[:-1]  # the last piece: the agent-wide series
    assert len(per_check) == sum(-(-N // checks) for _, _, _, checks in FAMILIES)
    for piece in per_check:
        names = set(re.findall(rb"(?m)^(pulse_check_[a-z_]+)\{", piece))
        series = len(re.findall(rb'(?m)^pulse_check_[a-z_]+\{check="c\d+"', piece))
        assert len(names) == 1 and 0 < series <= min(SLICE, 1000), (names, series)  # about 1 ms of the loop at most


def _samples(text: str, family: str) -> dict[str, float]:
    """check (and result or phase, when the family has one) -> value, of one family's series."""
    found = re.findall(rf'(?m)^{family}{{check="([^"]+)",location="eu-west"(?:,(?:result|phase)="([a-z_]+)")?}} (\S+)$', text)
    return {check + (f"/{extra}" if extra else ""): float(value) for check, extra, value in found}


def test_after_updates_and_removals_every_check_appears_once_per_series_with_its_last_values():
    m = many_checks(detail="compact")
    m.render()
    m.observe(_https_run("c7", 1.9e9, ok=False))
    m.set_checks([f"c{i}" for i in range(N) if i != 3])
    text = m.render().decode()
    assert 'check="c3"' not in text
    up = _samples(text, "pulse_check_up")
    assert len(up) == N - 1 and up["c7"] == 0.0 and up["c8"] == 1.0
    runs = _samples(text, "pulse_check_runs_total")
    assert len(runs) == 2 * (N - 1) and runs["c7/failure"] == 1.0 and runs["c10/failure"] == 1.0 and runs["c11/failure"] == 0.0
    assert "pulse_check_phase_duration_seconds" not in text and "pulse_check_protocol_info" not in text
    m.detail = "full"  # what a reload to metrics_detail: full does
    phases = _samples(m.render().decode(), "pulse_check_phase_duration_seconds")
    assert len(phases) == 5 * (N - 1) and phases["c7/tls"] == 9.8 / 1000


def test_promtool_accepts_an_exposition_of_many_pieces():
    promtool = require_binary("promtool", "prometheus")
    text = many_checks().render().decode()
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
