"""The transport keys against real servers: HTTP/2 (hypercorn), a forward proxy (tinyproxy),
a TLS server that requires client certificates, a certificate for another name, TLS versions."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trustme

from pulse_agent.clock import ManualClock
from pulse_agent.config import ConfigInvalid, parse_config
from pulse_agent.config.model import CheckSpec, Expect, TlsSpec
from pulse_agent.executor import LocalExecutor
from pulse_agent.probe.http import Prober
from pulse_agent.probe.kinds import Probes
from pulse_agent.result import Result
from pulse_agent.validators import SHELL_VALIDATORS
from tests.conftest import free_port, require_binary, run_cli
from tests.wire_servers import origin

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

H2_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = scope["http_version"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
"""


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


@contextmanager
def process_group(args: list[str], port: int, what: str, cwd: str) -> Iterator[None]:
    """A server in its own process group (hypercorn forks workers), stopped by group."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_port(port, proc, what)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def h2_url(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """https://localhost:PORT/ served by hypercorn (h2 and http/1.1 by ALPN), answering its HTTP version."""
    where = tmp_path_factory.mktemp("h2")
    (where / "h2app.py").write_text(H2_APP)
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(where / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(where / "key.pem"))
    port = free_port()
    args = [sys.executable, "-m", "hypercorn", "--certfile", "cert.pem", "--keyfile", "key.pem", "--bind", f"127.0.0.1:{port}", "h2app:app"]
    with process_group(args, port, "hypercorn", str(where)):
        yield f"https://localhost:{port}/"


@contextmanager
def tinyproxy(tmp_path: Path, connect_port: int) -> Iterator[str]:
    """A tinyproxy on a free port allowing CONNECT to connect_port only; yields its URL."""
    binary = require_binary("tinyproxy", "tinyproxy")
    port = free_port()
    conf = tmp_path / f"tinyproxy-{port}.conf"
    conf.write_text(f"Port {port}\nListen 127.0.0.1\nTimeout 10\nAllow 127.0.0.1\nConnectPort {connect_port}\nMaxClients 20\n")
    with process_group([binary, "-d", "-c", str(conf)], port, "tinyproxy", str(tmp_path)):
        yield f"http://127.0.0.1:{port}"


async def probe(spec: CheckSpec) -> Result:
    prober = Prober()
    try:
        return await prober.run(spec)
    finally:
        await prober.close()


def spec_of(text: str, name: str = "c") -> CheckSpec:
    """A check built from pulse.yaml text, as validate and run build it."""
    spec = parse_config(text, "pulse.yaml")
    check = spec.check(name)
    assert check is not None
    return check


# HTTP/2


async def test_http_version_2_negotiates_h2(h2_url: str, ca_file: str) -> None:
    check = spec_of(
        f'version: 1\nchecks:\n  - {{name: c, url: "{h2_url}", ca_file: {ca_file}, http_version: "2", expect: {{http_version: "2", body_contains: "2"}}}}\n'
    )
    assert check.transport == "httpx"
    result = await probe(check)
    assert (result.ok, result.http_version, result.tls_version, result.error) == (True, "2", "1.3", None)
    assert result.connect_ms is not None and result.tls_ms is not None and result.first_byte_ms is not None
    assert result.dns_ms is None  # httpx resolves inside its connect (docs/probes.md)
    assert result.cert_expires is not None


async def test_http_version_1_1_does_not_negotiate_h2(h2_url: str, ca_file: str) -> None:
    check = spec_of(
        f"version: 1\nchecks:\n  - {{name: c, url: '{h2_url}', ca_file: {ca_file}, expect: {{body_contains: '1.1', http_version: '1.1'}}}}\n"
    )
    assert check.transport == "fast"
    result = await probe(check)
    assert (result.ok, result.http_version, result.tls_version) == (True, "1.1", "1.3")


async def test_expected_http_version_that_did_not_come_fails_with_version(h2_url: str, ca_file: str) -> None:
    check = spec_of(
        f"version: 1\nchecks:\n  - {{name: c, url: '{h2_url}', ca_file: {ca_file}, http_version: '2', expect: {{http_version: '1.1', tls_version: '1.2'}}}}\n"
    )
    result = await probe(check)
    assert (result.ok, result.error_kind) == (False, "version")
    assert result.error == "expected HTTP/1.1, got HTTP/2; expected TLS 1.2, got TLS 1.3"


async def test_http2_check_through_the_cli_shows_its_transport_and_versions(h2_url: str, ca_file: str, tmp_path: Path) -> None:
    config = tmp_path / "pulse.yaml"
    config.write_text(
        f'version: 1\nchecks:\n  - name: h2\n    url: {h2_url}\n    ca_file: {ca_file}\n    http_version: "2"\n    expect: {{http_version: "2", tls_version: "1.3"}}\n'
    )
    proc = await asyncio.to_thread(run_cli, "check", "h2", "-c", str(config), "--format", "json")
    out = json.loads(proc.stdout)
    assert (proc.returncode, out["transport"], out["http_version"], out["tls_version"], out["ok"]) == (0, "httpx", "2", "1.3", True)


# Forward proxy


async def test_http_through_a_proxy_and_no_proxy_bypass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with origin({"/": OK}) as site:
        with tinyproxy(tmp_path, 443) as proxy:
            result = await probe(CheckSpec(name="c", url=site.url + "/", proxy_url=proxy, transport="httpx", timeout=5))
            assert (result.ok, result.http_version, result.tls_version) == (True, "1.1", None), result.error
            assert "via" in site.seen[-1].headers  # tinyproxy forwarded it
            for lower in ("http_proxy", "no_proxy"):  # urllib prefers the lower-case names
                monkeypatch.delenv(lower, raising=False)
            monkeypatch.setenv("HTTP_PROXY", proxy)
            monkeypatch.setenv("NO_PROXY", "")
            env = CheckSpec(name="c", url=site.url + "/", proxy_from_environment=True, transport="httpx", timeout=5)
            assert (await probe(env)).ok
            assert "via" in site.seen[-1].headers
            monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
            assert (await probe(env)).ok
            assert "via" not in site.seen[-1].headers  # NO_PROXY named the host: straight to it
    assert len(site.seen) == 3


async def test_https_through_connect_and_a_proxy_that_refuses(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    async with origin({"/": OK}, cert=ca.issue_cert("localhost")) as site:
        port = int(site.url.rsplit(":", 1)[1])
        check = CheckSpec(name="c", url=site.url + "/", ca_file=ca_file, transport="httpx", timeout=5, expect=Expect(tls_version="1.3"))
        with tinyproxy(tmp_path, port) as proxy:
            result = await probe(replace(check, proxy_url=proxy))
            assert (result.ok, result.tls_version, result.error) == (True, "1.3", None)
            assert "via" not in site.seen[-1].headers  # a tunnel: the proxy saw no request to add it to
            config = tmp_path / "pulse.yaml"
            config.write_text(
                f"version: 1\nchecks:\n  - name: via-proxy\n    url: {site.url}/\n    ca_file: {ca_file}\n    proxy_url: {proxy}\n"
                "    tls: {min_version: '1.3'}\n    expect: {tls_version: '1.3', http_version: '1.1'}\n"
            )
            proc = await asyncio.to_thread(run_cli, "check", "via-proxy", "-c", str(config), "--format", "json")
            shown = json.loads(proc.stdout)
            assert (proc.returncode, shown["transport"], shown["ok"], shown["tls_version"]) == (0, "httpx", True, "1.3"), shown
        with tinyproxy(tmp_path, port + 1) as refusing:  # CONNECT to the target's port not allowed
            result = await probe(replace(check, proxy_url=refusing))
            assert (result.ok, result.error_kind) == (False, "connect")
            assert result.error is not None and "proxy refused" in result.error and "403" in result.error
    assert len(site.seen) == 2


async def test_a_proxy_that_is_not_there_fails_with_connect() -> None:
    port = free_port()
    result = await probe(
        CheckSpec(name="c", url="http://127.0.0.1:9/", proxy_url=f"http://user:secret@127.0.0.1:{port}", transport="httpx")
    )
    assert (result.ok, result.error_kind) == (False, "connect")
    assert "secret" not in (result.error or "") and f"127.0.0.1:{port}" in (result.error or "")


async def test_a_removed_checks_proxy_credentials_do_not_outlive_it_in_a_kept_client() -> None:
    """A reload that removes or edits a check closes the httpx clients made with its proxy credentials;
    the next run makes a new client (with the new settings)."""
    probes = Probes()
    port = free_port()
    spec = CheckSpec(name="c", url="http://127.0.0.1:9/", proxy_url=f"http://user:secret@127.0.0.1:{port}", transport="httpx", timeout=2)
    executor = LocalExecutor(Pipeline(), ManualClock(0), max_concurrency=4)
    executor.probes = probes
    executor.set_checks([spec], soon=False)
    assert (await probes.run(spec)).error_kind == "connect"
    transport = probes._made["http"]._httpx  # type: ignore[attr-defined]
    [made] = transport._clients.values()
    executor.set_checks([spec], soon=False)  # unchanged: kept
    assert transport._clients and not made.is_closed
    executor.set_checks([replace(spec, proxy_url=f"http://user:other@127.0.0.1:{port}")], soon=False)
    await asyncio.sleep(0.05)
    assert made.is_closed and not any("secret" in str(key) for key in transport._clients)
    await probes.close()


class Pipeline:
    """What LocalExecutor's scheduler is given to report to; nothing here is under test."""

    def skipped(self, name: str) -> None: ...
    def lag(self, seconds: float) -> None: ...
    def next_run(self, name: str, due: float | None) -> None: ...


async def test_an_unusable_proxy_from_the_environment_fails_the_run_with_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "ftp://me:s3cret@proxy.example:21")
    result = await probe(CheckSpec(name="c", url="http://127.0.0.1:9/", proxy_from_environment=True, transport="httpx"))
    assert (result.ok, result.error_kind) == (False, "connect")
    assert "cannot use proxy" in (result.error or "") and "s3cret" not in (result.error or "")


# Client certificates, server name, TLS versions


@pytest.fixture(scope="module")
def client_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A client certificate from the server's trusted CA, one from another CA, and their keys."""
    where = tmp_path_factory.mktemp("client")
    files = {}
    for label, issuer in (("right", ca), ("wrong", trustme.CA())):
        leaf = issuer.issue_cert("monitor@example.com")
        leaf.cert_chain_pems[0].write_to_path(str(where / f"{label}.pem"))
        leaf.private_key_pem.write_to_path(str(where / f"{label}.key"))
        files[label] = str(where / f"{label}.pem")
        files[f"{label}_key"] = str(where / f"{label}.key")
    return files


@pytest.fixture(scope="module")
def mtls_url(ca: trustme.CA, ca_file: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """OpenSSL's own TLS server requiring a client certificate from ca, answering HTTP/1.0 (s_server -www)."""
    binary = require_binary("openssl", "openssl")
    where = tmp_path_factory.mktemp("mtls")
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(where / "server.pem"))
    port = free_port()
    args = [
        binary,
        "s_server",
        "-accept",
        str(port),
        "-cert",
        "server.pem",
        "-Verify",
        "1",
        "-verify_return_error",
        "-CAfile",
        ca_file,
        "-www",
        "-quiet",
    ]
    with process_group(args, port, "openssl s_server", str(where)):
        yield f"https://localhost:{port}/"


@pytest.mark.parametrize("transport", ["fast", "httpx"])
async def test_client_certificates(mtls_url: str, ca_file: str, client_files: dict[str, str], transport: str) -> None:
    if True:
        base = CheckSpec(
            name="c", url=mtls_url, ca_file=ca_file, timeout=5, transport=transport, http_version="2" if transport == "httpx" else "1.1"
        )  # type: ignore[arg-type]
        right = await probe(replace(base, tls=TlsSpec(cert_file=client_files["right"], key_file=client_files["right_key"])))
        assert (right.ok, right.http_version, right.error) == (True, "1.0", None)  # s_server -www answers HTTP/1.0, and offers no h2
        for tls in (TlsSpec(), TlsSpec(cert_file=client_files["wrong"], key_file=client_files["wrong_key"])):
            refused = await probe(replace(base, tls=tls))
            assert (refused.ok, refused.error_kind) == (False, "tls"), (tls, refused)


@pytest.mark.parametrize("transport", ["fast", "httpx"])
async def test_server_name_against_a_certificate_for_another_name(ca: trustme.CA, ca_file: str, transport: str) -> None:
    async with origin({"/": OK}, cert=ca.issue_cert("api.internal.example")) as site:
        url = site.url.replace("localhost", "127.0.0.1") + "/"
        base = CheckSpec(name="c", url=url, ca_file=ca_file, timeout=5, transport=transport)  # type: ignore[arg-type]
        mismatch = await probe(base)
        assert (mismatch.ok, mismatch.error_kind) == (False, "tls")
        named = await probe(replace(base, tls=TlsSpec(server_name="api.internal.example")))
        assert (named.ok, named.error) == (True, None)


async def test_min_version_and_expected_tls_version(ca: trustme.CA, ca_file: str) -> None:
    async with origin({"/": OK}, cert=ca.issue_cert("localhost"), max_tls=ssl.TLSVersion.TLSv1_2) as site:
        base = CheckSpec(name="c", url=site.url + "/", ca_file=ca_file, timeout=5)
        plain = await probe(base)
        assert (plain.ok, plain.tls_version) == (True, "1.2")
        floor = await probe(replace(base, tls=TlsSpec(min_version="1.3")))
        assert (floor.ok, floor.error_kind) == (False, "tls")
        expected = await probe(replace(base, expect=Expect(tls_version="1.3")))
        assert (expected.ok, expected.error_kind, expected.error) == (False, "version", "expected TLS 1.3, got TLS 1.2")


# The httpx transport's own limits


async def test_httpx_transport_total_timeout_and_body_limit() -> None:
    dripping = asyncio.Event()

    async with origin({"/big": b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000}) as site:
        big = await probe(CheckSpec(name="c", url=site.url + "/big", transport="httpx", max_body_size=1000))
        assert (big.ok, big.error_kind) == (False, "body_too_large")

    server = await asyncio.start_server(lambda r, w: dripping.wait(), "127.0.0.1", 0)  # accepts and never answers
    port = server.sockets[0].getsockname()[1]
    try:
        hung = await probe(CheckSpec(name="c", url=f"http://127.0.0.1:{port}/", transport="httpx", timeout=0.3))
        assert (hung.ok, hung.error_kind, hung.error) == (False, "timeout", "no complete response within 300ms")
    finally:
        dripping.set()
        server.close()


@pytest.mark.parametrize("transport", ["fast", "httpx"])
async def test_connection_failures_have_the_same_kind_on_both_transports(transport: str) -> None:
    refused = CheckSpec(name="c", url=f"http://127.0.0.1:{free_port()}/", transport=transport, timeout=5)  # type: ignore[arg-type]
    unknown = replace(refused, url="http://no-such-host.invalid/")
    untrusted_ca = trustme.CA()  # a certificate nobody here trusts
    async with origin({"/": OK}, cert=untrusted_ca.issue_cert("localhost")) as site:
        untrusted = await probe(replace(refused, url=site.url + "/"))
    kinds = [(await probe(refused)).error_kind, (await probe(unknown)).error_kind, untrusted.error_kind]
    assert kinds == ["connect", "dns", "tls"]
    assert "certificate" in (untrusted.error or "")


# validate


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        ("tls: {key_file: /etc/hostname}", "checks[0].tls.key_file", "a key without tls.cert_file"),
        ("tls: {cert_file: /nonexistent.pem}", "checks[0].tls.cert_file", "is not a readable file"),
        ("tls: {cert_file: /etc/hostname}", "checks[0].tls.cert_file", "cannot load the client certificate"),
        ("proxy_url: 'ftp://proxy:21'", "checks[0].proxy_url", "a proxy URL is http://host:port"),
        ("proxy_url: 'http://p:3128', proxy_from_environment: true", "checks[0].proxy_from_environment", "not both"),
        ("proxy_url: 'http://p:3128', tls: {server_name: a.example}", "checks[0].tls.server_name", "cannot be used with a proxy"),
        ("expect: {http_version: '2'}", "checks[0].expect.http_version", 'set http_version: "2"'),
        ("http_version: 2", "checks[0].http_version", ""),
        ("tls: {min_version: '1.1'}", "checks[0].tls.min_version", ""),
    ],
)
def test_validate_refuses_transport_settings_that_cannot_work(settings: str, where: str, message: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        text = f"version: 1\nchecks:\n  - {{name: c, url: 'https://a.example/', {settings}}}\n"
        parse_config(text, "pulse.yaml", validators=SHELL_VALIDATORS)  # the files are the shell's to look at
    shown = [str(e) for e in caught.value.errors]
    assert any(where in line and message in line for line in shown), shown


def test_proxy_credentials_never_reach_validate_messages() -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(
            "version: 1\nchecks:\n  - {name: c, url: 'http://a.example/', proxy_url: 'http://me:s3cret@proxy:3128/x'}\n", "pulse.yaml"
        )
    shown = " ".join(str(e) for e in caught.value.errors)
    assert "proxy_url" in shown and "no path" in shown and "s3cret" not in shown


def test_validate_refuses_httpx_settings_in_probe_modules() -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config("version: 1\nmodules:\n  h2: {http_version: '2', allowed_targets: ['*.example.com']}\n", "pulse.yaml")
    assert any("modules.h2.http_version" in str(e) for e in caught.value.errors), caught.value.errors


def test_transport_is_chosen_when_the_spec_is_built() -> None:
    text = (
        "version: 1\ndefaults: {proxy_from_environment: true}\nchecks:\n"
        "  - {name: a, url: 'http://a.example/'}\n  - {name: b, url: 'http://b.example/', proxy_from_environment: false}\n"
    )
    spec = parse_config(text, "pulse.yaml")
    assert [(c.name, c.transport) for c in spec.checks] == [("a", "httpx"), ("b", "fast")]


# The whole way: pulse.yaml -> run -> stored result -> API -> /metrics -> export


def test_the_agent_stores_exports_and_serves_the_negotiated_versions(h2_url: str, ca_file: str, tmp_path: Path) -> None:
    import duckdb
    import httpx

    from tests.agent_process import AgentProcess

    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        f"version: 1\nagent: {{log_format: json}}\nchecks:\n"
        f'  - {{name: h2, url: "{h2_url}", ca_file: {ca_file}, http_version: "2", schedule: 1s, expect: {{http_version: "2"}}}}\n'
        f'  - {{name: h1, url: "{h2_url}", ca_file: {ca_file}, schedule: 1s, expect: {{tls_version: "1.3"}}}}\n'
    )
    assert run_cli("validate", "-c", str(cfg)).returncode == 0
    db = tmp_path / "p.duckdb"
    agent = AgentProcess("-c", str(cfg), "--db", str(db), "--listen", "127.0.0.1:0")
    try:
        base = f"http://{agent.wait_for(lambda r: r.get('msg') == 'agent started')['listen']}"
        for name in ("h2", "h1"):
            logged = agent.wait_for(lambda r, n=name: r.get("msg") == "result" and r.get("check") == n)
            assert (logged["ok"], logged["http_version"]) == (True, "2" if name == "h2" else "1.1"), logged
        with httpx.Client(base_url=base, timeout=5) as client:
            metrics = client.get("/metrics").text
            deadline = time.monotonic() + 10
            while not (rows := _rows(client.get("/api/v1/checks/h2/results").json())) and time.monotonic() < deadline:
                time.sleep(0.1)  # results reach the database in batches, about once a second
    finally:
        assert agent.stop(signal.SIGTERM) == 0
    assert 'pulse_check_protocol_info{check="h2",http_version="2",tls_version="1.3"} 1.0' in metrics
    assert 'pulse_check_protocol_info{check="h1",http_version="1.1",tls_version="1.3"} 1.0' in metrics
    assert (rows[0]["http_version"], rows[0]["tls_version"]) == ("2", "1.3")
    with duckdb.connect(str(db), read_only=True) as con:
        stored = set(con.execute("SELECT check_name, http_version, tls_version FROM results").fetchall())
    assert stored == {("h2", "2", "1.3"), ("h1", "1.1", "1.3")}
    out = tmp_path / "export"
    assert run_cli("export", "--db", str(db), "--out", str(out), "--since", "1h").returncode == 0
    with duckdb.connect() as con:
        exported = set(con.execute(f"SELECT check_name, http_version FROM '{out}/**/results-*.parquet'").fetchall())
    assert exported == {("h2", "2"), ("h1", "1.1")}


def _rows(answer: object) -> list[dict[str, object]]:
    return answer["results"] if isinstance(answer, dict) else answer  # type: ignore[return-value,index]
