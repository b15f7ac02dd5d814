"""GET /probe on a real agent (in-process) against real local targets: blackbox_exporter's answers,
allowed_targets (globs, CIDRs, redirects judged again at connect), the scrape-timeout header, the
concurrency bound, and the config errors of modules and label names."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from pulse_agent.config import ConfigInvalid, parse_config
from pulse_agent.probe.allow import AllowedTargets, url_of
from pulse_agent.probe.blackbox import probe_timeout, target_url
from pulse_agent.probe.connect import target_of
from tests.conftest import tls_server
from tests.test_api import agent_at


def values(text: str) -> dict[str, float]:
    """Sample name (with a phase label when there is one) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name + (f"[{s.labels['phase']}]" if "phase" in s.labels else "")] = s.value
    return out


@contextmanager
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


def config(modules: str, max_concurrency: int = 256) -> str:
    return f"version: 1\nagent: {{listen: '127.0.0.1:0', max_concurrency: {max_concurrency}}}\nmodules:\n{modules}checks: []\n"


@pytest.fixture
def targets(httpserver):
    httpserver.expect_request("/ok").respond_with_data("ok")
    httpserver.expect_request("/fail").respond_with_data("down", status=503)
    httpserver.expect_request("/away").respond_with_data("", status=302, headers={"Location": f"http://127.0.0.1:{httpserver.port}/ok"})
    return httpserver


async def test_blackbox_answers_for_a_healthy_and_a_failing_target_and_403_outside_allowed_targets(targets, tmp_path):
    port = targets.port
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        config(f"""\
  http_2xx: {{timeout: 5s, allowed_targets: ['http://localhost:{port}/*']}}
  local: {{allowed_targets: ['127.0.0.0/8', '::1'], expect: {{status: 503}}}}
  far: {{allowed_targets: ['10.0.0.0/8']}}
""")
    )
    async with agent_at(cfg, tmp_path / "p.duckdb") as (_, _, client):
        ok = await client.get("/probe", params={"target": f"http://localhost:{port}/ok", "module": "http_2xx"})
        assert ok.status_code == 200 and ok.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        v = values(ok.text)
        assert v["probe_success"] == 1 and v["probe_http_status_code"] == 200 and v["probe_http_ssl"] == 0
        assert 0 < v["probe_duration_seconds"] < 5 and v["probe_http_duration_seconds[connect]"] > 0
        assert {"resolve", "connect", "tls", "processing", "transfer"} == {k[28:-1] for k in v if k.startswith("probe_http_duration")}
        assert "probe_ssl_earliest_cert_expiry" not in v
        failing = values((await client.get("/probe", params={"target": f"localhost:{port}/fail"})).text)  # default module, no scheme
        assert failing["probe_success"] == 0 and failing["probe_http_status_code"] == 503

        expected_503 = values((await client.get("/probe", params={"target": f"http://localhost:{port}/fail", "module": "local"})).text)
        assert expected_503["probe_success"] == 1  # every address of localhost is in 127.0.0.0/8 or ::1

        for params, status, words in [
            ({"target": f"http://127.0.0.1:{port}/ok", "module": "http_2xx"}, 403, "not in the allowed_targets of module 'http_2xx'"),
            ({"target": f"http://evil.example/localhost:{port}/ok"}, 403, "not in the allowed_targets"),
            ({"target": f"http://localhost:{port}/ok", "module": "far"}, 403, "not in the allowed_targets of module 'far'"),
            ({"target": f"http://u:p@localhost:{port}/ok"}, 400, "user:password"),
            ({"target": "ftp://localhost/x"}, 400, "only http:// and https://"),
            ({"module": "http_2xx"}, 400, "target parameter is missing"),
            ({"target": f"http://localhost:{port}/ok", "module": "nope"}, 400, "unknown module 'nope' (modules: far, http_2xx, local)"),
        ]:
            answer = await client.get("/probe", params=params)
            assert (answer.status_code, words in answer.text) == (status, True), (params, answer.text)
        bad = await client.get(
            "/probe", params={"target": f"http://localhost:{port}/ok"}, headers={"X-Prometheus-Scrape-Timeout-Seconds": "soon"}
        )
        assert bad.status_code == 400 and "X-Prometheus-Scrape-Timeout-Seconds" in bad.text


async def test_a_redirect_out_of_allowed_targets_is_refused_at_connect(targets, tmp_path):
    port = targets.port
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config(f"  http_2xx: {{allowed_targets: ['http://localhost:{port}/*']}}\n"))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (_, _, client):
        answer = await client.get("/probe", params={"target": f"http://localhost:{port}/away", "debug": "true"})
    assert answer.status_code == 200
    assert "Probe failed: connect: 127.0.0.1:" in answer.text and "is not an allowed target" in answer.text
    assert "probe_success 0.0" in answer.text
    assert targets.log and all(req.path != "/ok" for req, _ in targets.log)  # the redirect target was never asked


async def test_tls_targets_report_the_certificate_expiry(tmp_path):
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    expiry = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    async with tls_server(ca.issue_cert("localhost", not_after=expiry)) as url:
        cfg = tmp_path / "pulse.yaml"
        cfg.write_text(config(f"  tls: {{ca_file: '{ca_file}', allowed_targets: ['https://localhost:*/*']}}\n"))
        async with agent_at(cfg, tmp_path / "p.duckdb") as (_, _, client):
            v = values((await client.get("/probe", params={"target": url, "module": "tls"})).text)
    assert v["probe_success"] == 1 and v["probe_http_ssl"] == 1 and v["probe_http_duration_seconds[tls]"] > 0
    assert v["probe_ssl_earliest_cert_expiry"] == pytest.approx(expiry.timestamp(), abs=1)


async def test_the_scrape_timeout_header_bounds_the_probe_and_probes_in_flight_are_bounded(tmp_path):
    with silent_server() as url:
        cfg = tmp_path / "pulse.yaml"
        cfg.write_text(config("  slow: {timeout: 30s, allowed_targets: ['127.0.0.1']}\n", max_concurrency=1))
        async with agent_at(cfg, tmp_path / "p.duckdb") as (_, _, client):
            started = time.monotonic()
            answer = await client.get(
                "/probe", params={"target": url, "module": "slow"}, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"}
            )
            took = time.monotonic() - started
            assert answer.status_code == 200 and values(answer.text)["probe_success"] == 0
            assert 0.9 <= took < 1.5  # 1.5 s less blackbox's 0.5 s offset, not the module's 30 s

            holder = asyncio.create_task(client.get("/probe", params={"target": url, "module": "slow"},
                                                    headers={"X-Prometheus-Scrape-Timeout-Seconds": "2.5"}))  # fmt: skip
            await asyncio.sleep(0.2)  # it holds the one slot for 2 s
            waiting = await client.get(
                "/probe", params={"target": url, "module": "slow"}, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"}
            )
            assert waiting.status_code == 503 and "too many probes in flight" in waiting.text
            assert values((await holder).text)["probe_success"] == 0


def test_module_and_label_name_errors_are_placed():
    text = """\
version: 1
defaults: {labels: {__meta: x}}
modules:
  bad: {schedule: 10s, allowed_targets: ['ftp://x/*', '10.0.0.0/99', 'https:///*']}
  none: {timeout: 1s}
checks:
  - {name: a, url: 'http://x/', labels: {check: y, team: t}}
"""
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(text, "p.yaml")
    assert [str(e) for e in caught.value.errors] == [
        "p.yaml:2:29: defaults.labels.__meta: label name '__meta' is reserved: names starting with __ are Prometheus' own",
        "p.yaml:4:19: modules.bad.schedule: 'schedule' is not a module setting: a module is a probe template, and Prometheus' scrape decides when it runs",
        "p.yaml:4:42: modules.bad.allowed_targets[0]: 'ftp://x/*' is neither a CIDR nor a URL glob starting with http:// or https://",
        "p.yaml:4:55: modules.bad.allowed_targets[1]: '10.0.0.0/99' is neither a CIDR nor a URL glob starting with http:// or https://",
        "p.yaml:4:70: modules.bad.allowed_targets[2]: 'https:///*' has no host (write * for any host)",
        "p.yaml:5:9: modules.none: missing required key 'allowed_targets'",
        "p.yaml:7:49: checks[0].labels.check: label name 'check' is reserved (check, location, job and instance are set by pulse-agent or Prometheus)",
    ]
    spec = parse_config("version: 1\nmodules: {m: {timeout: 2s, expect: {status: 204}, allowed_targets: ['10.0.0.0/8']}}\n", "p.yaml")
    (module,) = spec.modules
    assert (module.name, module.template.timeout, module.template.expect.status[0].text) == ("m", 2.0, "204")


@pytest.mark.parametrize(
    ("glob", "url", "allowed"),
    [
        ("https://*.internal.example.com/*", "https://api.internal.example.com/health", True),
        ("https://*.internal.example.com/*", "https://evil.example/x.internal.example.com/", False),  # * stays in the host
        ("https://*.internal.example.com/*", "https://evil.example?.internal.example.com/", False),
        ("https://*.internal.example.com/*", "https://api.internal.example.com:8443/", False),  # ports are spelled out
        ("https://*.internal.example.com/*", "https://API.Internal.Example.com:443/x", True),  # canonical: case, default port
        ("https://*.internal.example.com/*", "http://api.internal.example.com/", False),
        ("http://127.0.0.1:*/health", "http://127.0.0.1:8080/health", True),
        ("http://127.0.0.1:*/health", "http://127.0.0.1:8080/health?x=1", False),
        ("https://status.example.com", "https://status.example.com/", True),
    ],
)
def test_url_globs_match_canonical_urls(glob, url, allowed):
    assert AllowedTargets.parse([glob]).url_allowed(url_of(target_of(url))) is allowed


def test_cidrs_need_every_address_inside_and_the_timeout_follows_blackbox():
    allowed = AllowedTargets.parse(["10.0.0.0/8", "2001:db8::/32"])
    assert allowed.addresses_allowed(["10.1.2.3", "2001:db8::1"])
    assert not allowed.addresses_allowed(["10.1.2.3", "192.168.0.1"])  # one address outside: refused
    assert not allowed.addresses_allowed([])
    assert probe_timeout(10.0, None) == 10.0
    assert probe_timeout(10.0, "5") == 4.5 and probe_timeout(2.0, "5") == 2.0
    assert probe_timeout(10.0, "0.4") == 0.2
    with pytest.raises(ValueError, match="not a positive number"):
        probe_timeout(10.0, "-1")
    assert target_url("example.com:8080/x") == "http://example.com:8080/x" and target_url("https://e/") == "https://e/"


async def test_a_reload_changes_the_modules_served(targets, tmp_path):
    port = targets.port
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config(f"  old: {{allowed_targets: ['http://localhost:{port}/*']}}\n"))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (_, _, client):
        target = {"target": f"http://localhost:{port}/fail"}
        assert "probe_success 0.0" in (await client.get("/probe", params={**target, "module": "old"})).text
        cfg.write_text(config(f"  new: {{expect: {{status: 503}}, allowed_targets: ['http://localhost:{port}/*']}}\n"))
        assert (await client.post("/-/reload")).status_code == 200
        assert (await client.get("/probe", params={**target, "module": "old"})).status_code == 400
        assert "probe_success 1.0" in (await client.get("/probe", params={**target, "module": "new"})).text
