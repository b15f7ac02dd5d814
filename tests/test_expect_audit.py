"""Every `expect` key against the rule of issue 14: evaluated (a real response that breaks it fails the
run with its error_kind, one that meets it passes), or refused by validate; never a silent pass."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trustme

from pulse_agent.config import parse_config
from pulse_agent.config.model import Expect
from pulse_agent.probe.expect import Response, evaluate
from pulse_agent.probe.regex import regex_problem, regex_search
from tests.agent_process import AgentProcess
from tests.conftest import scripted, spec, tls_server

ROOT = Path(__file__).resolve().parent.parent


def answer(body: bytes = b"ok", status: str = "200 OK", headers: str = "Content-Type: text/plain\r\n") -> bytes:
    return b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (status.encode(), headers.encode(), len(body), body)


@asynccontextmanager
async def slow(delay: float, body: bytes = b"ok") -> AsyncIterator[str]:
    """A target that answers after `delay` seconds."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay)
        writer.write(answer(body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()


JSON = b'{"status": "UP", "n": 3, "items": [1, 2]}'
# key -> (expect, an answer meeting it, an answer breaking it, error_kind, what the error says)
AUDIT = {
    "status": ("{status: [204, '3xx']}", answer(b"", "204 No Content"), answer(b"x", "200 OK"), "status", "status 200 not in [204, 3xx]"),
    "body_contains": ("{body_contains: UP}", answer(JSON), answer(b"DOWN"), "body", 'body does not contain "UP"'),
    "body_not_contains": ("{body_not_contains: maintenance}", answer(b"fine"), answer(b"in maintenance"), "body", 'body contains "maintenance"'),
    "body_matches": ("{body_matches: '\"n\": [0-9]+'}", answer(JSON), answer(b'{"n": "x"}'), "body", 'body does not match /"n": [0-9]+/'),
    "json": ("{json: {'$.status': UP, '$.n': '< 5', '$.items[1]': 2}}", answer(JSON), answer(b'{"status": "UP", "n": 7, "items": [1]}'), "json", "$.n: expected < 5, got 7; $.items[1]: expected 2, not found"),
    "headers": (
        "{headers: {content-type: '*json*', x-version: '/^v[0-9]+$/'}}",
        answer(JSON, headers="Content-Type: application/json\r\nX-Version: v2\r\n"),
        answer(JSON, headers="Content-Type: text/html\r\nX-Version: 2\r\n"),
        "header",
        'header content-type: expected "*json*", got "text/html"; header x-version: expected "/^v[0-9]+$/", got "2"',
    ),
    "http_version": ("{http_version: '1.1'}", answer(b"ok"), b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "version", "expected HTTP/1.1, got HTTP/1.0"),
}  # fmt: skip


def spec_of(url: str, expect: str):
    text = f"version: 1\nchecks:\n  - name: t\n    url: {url}\n    timeout: 5s\n    expect: {expect}\n"
    return parse_config(text, "audit.yaml", {}).checks[0]


def test_the_audit_covers_every_expect_key_of_the_schema():
    schema = json.loads((ROOT / "schemas" / "pulse.schema.json").read_text())
    timed = {"max_response_time", "degraded_response_time"}  # below: they need a slow target
    certificate = {"certificate_valid_for", "tls_version"}  # below, in test_probe_hostile and test_transports: they need TLS
    pushed = {"max_duration"}  # push checks: evaluated in test_push_core (start -> success over it fails as latency)
    stream = {"receive"}  # tcp:// and tls:// only: met, broken and refused in test_tcp_tls.py and test_tcp_tls_agent.py
    dns_icmp = {"rcode", "answer", "answer_count", "authoritative", "max_packet_loss"}  # test_dns_checks, test_icmp_checks: met and broken
    assert set(schema["$defs"]["expect"]["properties"]) == set(AUDIT) | timed | certificate | pushed | stream | dns_icmp


@pytest.mark.parametrize("key", list(AUDIT))
async def test_each_expect_key_is_evaluated(prober, key):
    expect, good, bad, kind, message = AUDIT[key]
    async with scripted(good) as url:
        passed = await prober.run(spec_of(url, expect))
    async with scripted(bad) as url:
        failed = await prober.run(spec_of(url, expect))
    assert (passed.ok, passed.error) == (True, None)
    assert (failed.ok, failed.error_kind, failed.error) == (False, kind, message)


async def test_response_times_are_evaluated(prober):
    async with slow(0.3) as url:
        late = await prober.run(spec_of(url, "{max_response_time: 100ms}"))
        degraded = await prober.run(spec_of(url, "{degraded_response_time: 100ms, max_response_time: 5s}"))
        fine = await prober.run(spec_of(url, "{degraded_response_time: 3s, max_response_time: 5s}"))
    assert (late.ok, late.error_kind) == (False, "latency") and "over max_response_time 100ms" in late.error
    assert (degraded.ok, degraded.degraded) == (True, True)
    assert (fine.ok, fine.degraded) == (True, False)


def test_certificate_valid_for_without_a_certificate_fails_never_passes():
    """https -> http redirect, or anything else leaving no peer certificate: a failure, not a pass.
    (http:// URLs are refused by validate: test_config_hostile.)"""
    expect = Expect(certificate_valid_for=14 * 86400)
    failures, _ = evaluate(expect, Response(200, {}, b"ok", 0.01, cert_not_after=None), now=time.time())
    assert [(f.kind, f.message) for f in failures] == [("certificate", "no peer certificate to check; expected one valid for at least 14d")]


async def test_a_header_glob_starting_with_a_star_is_evaluated(prober):
    async with scripted(answer(b"x", headers="Content-Type: application/problem+json\r\n")) as url:
        result = await prober.run(spec_of(url, "{headers: {content-type: '*json'}}"))
    assert (result.ok, result.error) == (True, None)
    async with scripted(answer(b"x", headers="Content-Type: text/plain\r\n")) as url:
        result = await prober.run(spec_of(url, "{headers: {content-type: '*json'}}"))
    assert (result.ok, result.error_kind) == (False, "header")


async def test_json_nested_100000_deep_fails_as_json(prober):
    async with scripted(answer(b"[" * 100_000 + b"]" * 100_000)) as url:
        result = await prober.run(spec_of(url, "{json: {'$[0]': exists}}"))
    assert (result.ok, result.error_kind) == (False, "json")
    assert result.error == "body is JSON nested too deeply to evaluate (about 900 levels at most)"


async def test_json_a_recursive_jsonpath_walks_600_levels_and_fails_2000_as_json(prober):
    def nested(n: int) -> bytes:
        return b'{"a":' * n + b"1" + b"}" * n  # $..a walks it recursively

    async with scripted(answer(nested(600))) as url:
        walked = await prober.run(spec_of(url, "{json: {'$..a': exists}}"))
    async with scripted(answer(nested(2000))) as url:
        deep = await prober.run(spec_of(url, "{json: {'$..a': exists}}"))
    assert (walked.ok, walked.error) == (True, None)
    assert (deep.ok, deep.error_kind) == (False, "json")


def test_a_catastrophic_regex_does_not_freeze_the_agent(tmp_path, httpserver):
    """^(a+)+$ against aaaa...! is exponential in a backtracking engine; on RE2 it is linear: the agent
    keeps running checks, answering /healthz and stops on SIGTERM."""
    httpserver.expect_request("/evil").respond_with_data("a" * 100_000 + "!")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        version: 1
        agent: {{log_format: json}}
        checks:
          - name: evil
            url: {httpserver.url_for("/evil")}
            schedule: every 1s
            expect: {{body_matches: '^(a+)+$'}}
        """)
    )
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "x.duckdb"), "--listen", "127.0.0.1:0")
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        result = agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "evil", timeout=10)
        with httpx.Client(base_url=f"http://{started['listen']}", timeout=2) as client:
            for _ in range(3):
                assert client.get("/healthz").status_code == 200
                time.sleep(0.5)
    finally:
        begun = time.monotonic()
        code = agent.stop(signal.SIGTERM, timeout=10)
    assert code == 0 and time.monotonic() - begun < 10
    assert (result["ok"], result["error_kind"]) == (False, "body")
    assert result["error"] == "body does not match /^(a+)+$/"


def test_regexes_accept_pythons_end_of_text_anchor():
    assert regex_problem(r"ok\Z") is None
    assert (regex_search(r"ok\Z", "it is ok"), regex_search(r"ok\Z", "ok\n"), regex_search(r"a\\Z", "a\\Z")) == (True, False, True)


async def test_certificate_valid_for_with_tls_verify_off_never_passes_a_certificate_expiring_tomorrow(prober):
    """With verification off the certificate is still judged (never a silent pass): it fails as certificate."""
    tomorrow = trustme.CA().issue_cert("localhost", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    async with tls_server(tomorrow) as url:
        result = await prober.run(spec(url, timeout=5, tls_verify=False, expect=Expect(certificate_valid_for=14 * 86400)))
    assert (result.ok, result.error_kind) == (False, "certificate")
