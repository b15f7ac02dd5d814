"""Hostile and unusual targets, TLS, auth, retries and delivery semantics: each against a real local server."""

import datetime as dt
import json

import pytest
import trustme

from pulse_agent.config import parse_config
from pulse_agent.config.model import Expect, Retries
from pulse_agent.probe.http import Prober
from tests.conftest import free_port, misbehaving, spec, tls_server
from tests.wire_servers import origin

NOW = dt.datetime.now(dt.UTC)


async def test_a_50_mib_body_fails_fast_without_being_read(prober):
    async with misbehaving("huge") as url:
        r = await prober.run(spec(url, timeout=10, max_body_size=1024 * 1024))
    assert (r.ok, r.error_kind, r.error) == (False, "body_too_large", "body larger than 1 MiB")


async def test_ten_thousand_response_headers_are_a_protocol_error(prober):
    async with misbehaving("many-headers") as url:
        r = await prober.run(spec(url, timeout=5))
    assert (r.ok, r.error_kind) == (False, "protocol"), r.error


async def test_a_redirect_loop_fails_with_redirects(httpserver, prober):
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    r = await prober.run(spec(httpserver.url_for("/loop"), max_redirects=5))
    assert (r.ok, r.error_kind, r.error) == (False, "redirects", "more than 5 redirects")


async def test_redirects_not_followed_judges_the_3xx_itself(httpserver, prober):
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    r = await prober.run(spec(httpserver.url_for("/old"), follow_redirects=False))
    assert (r.ok, r.status_code, r.error) == (False, 301, "status 301 not in [2xx]")
    assert len(httpserver.log) == 1


async def test_invalid_json_when_json_is_expected(httpserver):
    httpserver.expect_request("/j").respond_with_data("<html>oops</html>", content_type="text/html")
    cfg = parse_config(
        f"version: 1\nchecks: [{{name: j, url: '{httpserver.url_for('/j')}', expect: {{json: {{'$.ok': true}}}}}}]\n", "p", {}
    )
    p = Prober()
    try:
        r = await p.run(cfg.checks[0])
    finally:
        await p.close()
    assert (r.ok, r.status_code, r.error_kind) == (False, 200, "json")
    assert r.error.startswith("body is not valid JSON")


async def test_self_signed_certificate_is_a_tls_failure(prober):
    untrusted = trustme.CA().issue_cert("localhost")
    async with tls_server(untrusted) as url:
        r = await prober.run(spec(url, timeout=5))
        insecure = await prober.run(spec(url, timeout=5, tls_verify=False))
    assert (r.ok, r.error_kind) == (False, "tls")
    assert "certificate" in r.error
    assert (insecure.ok, insecure.status_code) == (True, 200)
    assert insecure.cert_expires == dt.datetime(3000, 1, 1, tzinfo=dt.UTC).timestamp()  # trustme's default, read unverified


async def test_certificate_expiry_is_judged_with_verification_off(prober):
    """Like blackbox_exporter: tls_verify: false still reads the certificate's expiry (from its DER form)."""
    tomorrow = NOW + dt.timedelta(days=1)
    untrusted = trustme.CA().issue_cert("localhost", not_after=tomorrow)
    async with tls_server(untrusted) as url:
        strict = await prober.run(spec(url, timeout=5, tls_verify=False, expect=Expect(certificate_valid_for=14 * 86400)))
        lenient = await prober.run(spec(url, timeout=5, tls_verify=False, expect=Expect(certificate_valid_for=3600)))
    assert (strict.ok, strict.error_kind, strict.status_code) == (False, "certificate", 200)
    assert strict.error.startswith(f"certificate expires {tomorrow:%Y-%m-%dT%H:%M:%SZ} (in 23h")
    assert strict.error.endswith("expected at least 14d")
    assert lenient.ok, lenient.error
    assert strict.cert_expires == lenient.cert_expires == pytest.approx(tomorrow.timestamp(), abs=1)


async def test_certificate_expiry_on_a_kept_alive_connection_and_after_a_redirect_to_http(ca, ca_file, prober, httpserver):
    """The expiry judged is the final response's connection's: reused connections keep theirs; plain http has none."""
    soon = ca.issue_cert("localhost", not_after=NOW + dt.timedelta(days=3))
    expect = Expect(certificate_valid_for=14 * 86400)
    async with origin({"/": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}, cert=soon, keep_alive=True) as site:
        runs = [await prober.run(spec(site.url + "/", timeout=5, ca_file=ca_file, reuse_connections=True, expect=expect)) for _ in range(2)]
    assert [r.error_kind for r in runs] == ["certificate", "certificate"]
    assert runs[1].connect_ms is None  # the second run did reuse the connection
    httpserver.expect_request("/").respond_with_data("plain")
    to_http = b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % httpserver.url_for("/").encode()
    async with origin({"/": to_http}, cert=soon) as site:
        r = await prober.run(spec(site.url + "/", timeout=5, ca_file=ca_file, expect=Expect(certificate_valid_for=86400)))
    assert (r.ok, r.status_code, r.error_kind, r.cert_expires) == (False, 200, "certificate", None)
    assert r.error == "no peer certificate to check; expected one valid for at least 1d"


async def test_expired_certificate_is_a_tls_failure(ca, ca_file, prober):
    expired = ca.issue_cert("localhost", not_before=NOW - dt.timedelta(days=30), not_after=NOW - dt.timedelta(days=1))
    async with tls_server(expired) as url:
        r = await prober.run(spec(url, timeout=5, ca_file=ca_file))
    assert (r.ok, r.error_kind) == (False, "tls")
    assert "expired" in r.error


async def test_ca_file_trust_phases_and_certificate_expiry(ca, ca_file, prober):
    soon = ca.issue_cert("localhost", not_after=NOW + dt.timedelta(days=3))
    async with tls_server(soon) as url:
        ok = await prober.run(spec(url, timeout=5, ca_file=ca_file))
        strict = await prober.run(spec(url, timeout=5, ca_file=ca_file, expect=Expect(certificate_valid_for=14 * 86400)))
    assert (ok.ok, ok.status_code) == (True, 200)
    assert ok.cert_expires == pytest.approx((NOW + dt.timedelta(days=3)).timestamp(), abs=2)
    assert ok.connect_ms > 0 and ok.tls_ms > 0 and ok.first_byte_ms > 0
    assert ok.first_byte_ms <= ok.response_time_ms
    assert (strict.ok, strict.error_kind) == (False, "certificate")
    assert "expected at least 14d" in strict.error


async def test_plain_http_phases(httpserver, prober):
    httpserver.expect_request("/").respond_with_data("ok")
    r = await prober.run(spec(httpserver.url_for("/")))
    assert r.connect_ms > 0 and r.tls_ms is None
    assert 0 < r.first_byte_ms <= r.response_time_ms
    assert set(r.phases()) == {"dns", "connect", "tls", "first_byte", "total"}


async def test_basic_auth_and_bearer_token_are_sent_but_never_shown(httpserver, prober):
    httpserver.expect_request("/basic", headers={"Authorization": "Basic cHJvYmU6czNjcmV0"}).respond_with_data("ok")
    httpserver.expect_request("/bearer", headers={"Authorization": "Bearer t0ken-xyz"}).respond_with_data("ok")
    cfg = parse_config(
        "version: 1\nchecks:\n"
        f"  - {{name: b, url: '{httpserver.url_for('/basic')}', basic_auth: {{username: probe, password: '${{PW}}'}}}}\n"
        f"  - {{name: t, url: '{httpserver.url_for('/bearer')}', bearer_token: '${{TOKEN}}'}}\n",
        "p",
        {"PW": "s3cret", "TOKEN": "t0ken-xyz"},
    )
    results = [await prober.run(c) for c in cfg.checks]
    assert [r.ok for r in results] == [True, True]
    shown = json.dumps([r.to_json() for r in results]) + repr(cfg)
    assert "s3cret" not in shown and "t0ken-xyz" not in shown


async def test_at_most_once_post_is_not_retried_once_sent(httpserver, prober):
    httpserver.expect_request("/hook", method="POST").respond_with_data("busy", status=503)
    r = await prober.run(spec(httpserver.url_for("/hook"), method="POST", delivery="at_most_once", retries=Retries(3, 0.01)))
    assert (r.ok, r.attempts, len(httpserver.log)) == (False, 1, 1)


async def test_at_most_once_retries_when_the_request_never_left(prober):
    url = f"http://127.0.0.1:{free_port()}/hook"
    r = await prober.run(spec(url, method="POST", delivery="at_most_once", retries=Retries(3, 0.01)))
    assert (r.ok, r.error_kind, r.attempts) == (False, "connect", 3)


async def test_at_least_once_retries_and_keeps_one_idempotency_key(httpserver, prober):
    httpserver.expect_request("/hook", method="POST").respond_with_data("busy", status=503)
    check = spec(httpserver.url_for("/hook"), method="POST", delivery="at_least_once", idempotency_key=True, retries=Retries(3, 0.01))
    r = await prober.run(check)
    await prober.run(check)
    keys = [req.headers["Idempotency-Key"] for req, _ in httpserver.log]
    assert r.attempts == 3 and len(keys) == 6
    assert len(set(keys[:3])) == 1 and len(set(keys[3:])) == 1 and keys[0] != keys[3]


@pytest.mark.parametrize(
    ("method", "delivery"), [("GET", "at_least_once"), ("HEAD", "at_least_once"), ("POST", "at_most_once"), ("DELETE", "at_most_once")]
)
def test_delivery_defaults_by_method(method, delivery):
    cfg = parse_config(f"version: 1\nchecks: [{{name: a, url: 'http://127.0.0.1/', method: {method}}}]\n", "p", {})
    assert cfg.checks[0].delivery == delivery


async def test_backoff_doubles_up_to_max_backoff():
    from pulse_agent.probe.retry import backoff

    check = spec("http://x/", retries=Retries(attempts=6, backoff=1, max_backoff=5))
    assert [backoff(check, n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_run_budget_covers_every_attempt_and_capped_jittered_wait():
    from pulse_agent.probe.retry import JITTER, run_budget

    check = spec("http://x/", timeout=2, retries=Retries(attempts=3, backoff=1, max_backoff=1.5))
    assert run_budget(check) == pytest.approx(3 * 2 + (1 + 1.5) * (1 + JITTER))
    assert run_budget(spec("http://x/", timeout=5)) == 5
