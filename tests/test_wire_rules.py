"""Requests exactly as HTTP says (issue 14, item 7): header syntax, Host and SNI, what crosses origins,
stale kept-alive connections, idle time, several addresses. Each against real local servers."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

import pytest
import trustme

from pulse_agent.config import ConfigInvalid, parse_config
from pulse_agent.config.model import Retries
from pulse_agent.probe.connect import KEEPALIVE_DEFAULT, interleave, keep_alive_for, target_of
from pulse_agent.probe.http import Prober
from pulse_agent.probe.syntax import encode_target, header_problem
from pulse_agent.probe.wire import ProbeFailure, check_names, request_bytes
from tests.conftest import free_port, require_binary, spec
from tests.wire_servers import black_hole, origin

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def config(headers: str, url: str = "http://127.0.0.1/", env: dict[str, str] | None = None):
    return parse_config(f"version: 1\nchecks:\n  - name: c\n    url: {url}\n    headers: {headers}\n", "p.yaml", env or {})


@pytest.mark.parametrize(
    ("headers", "env", "message"),
    [
        (
            '{X-Token: "${TOKEN}"}',
            {"TOKEN": "s3cret\n"},
            "p.yaml:5:24: checks[0].headers.X-Token: value of header X-Token contains a line break",
        ),
        ('{"X Token": a}', {}, "p.yaml:5:26: checks[0].headers.X Token: header name 'X Token' is not an HTTP token"),
        ('{"X-A": "a\\u0000b"}', {}, "p.yaml:5:22: checks[0].headers.X-A: value of header X-A contains a line break (CR or LF) or NUL"),
        ("{Host: 'a b'}", {}, "p.yaml:5:21: checks[0].headers.Host: header Host: expected host or host:port, got 'a b'"),
    ],
)
def test_validate_refuses_headers_http_cannot_carry_and_never_shows_the_value(headers, env, message):
    with pytest.raises(ConfigInvalid) as caught:
        config(headers, env=env)
    text = str(caught.value)
    assert text.startswith(message), text
    assert "s3cret" not in text


def test_validate_refuses_a_bearer_token_with_a_line_break():
    text = "version: 1\nchecks:\n  - {name: c, url: 'http://127.0.0.1/', bearer_token: '${TOKEN}'}\n"
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(text, "p.yaml", {"TOKEN": "s3cret\n"})
    assert str(caught.value).startswith("p.yaml:3:55: checks[0].bearer_token: contains a line break") and "s3cret" not in str(caught.value)


def test_a_reload_notices_a_header_that_now_comes_from_a_variable(tmp_path):
    """The same text before and after expansion: the memo must not hand back the old spec."""
    from pulse_agent.config import Memo, load_config

    path, memo = tmp_path / "p.yaml", Memo()
    path.write_text("version: 1\nchecks: [{name: c, url: 'http://127.0.0.1/', headers: {X-Key: k1}}]\n")
    assert load_config(path, {"KEY": "k1"}, memo).checks[0].env_headers == frozenset()
    path.write_text("version: 1\nchecks: [{name: c, url: 'http://127.0.0.1/', headers: {X-Key: '${KEY}'}}]\n")
    assert load_config(path, {"KEY": "k1"}, memo).checks[0].env_headers == frozenset({"x-key"})


def test_headers_valued_from_variables_are_marked_and_defaults_count():
    text = (
        "version: 1\ndefaults: {headers: {X-Org: '${ORG}'}}\nchecks:\n"
        "  - {name: c, url: 'http://127.0.0.1/', headers: {X-Key: 'k-${KEY}', X-Plain: v, X-Escaped: '$${NOT}'}}\n"
    )
    check = parse_config(text, "p.yaml", {"ORG": "o", "KEY": "1"}).checks[0]
    assert check.env_headers == frozenset({"x-org", "x-key"})
    assert dict(check.headers)["X-Escaped"] == "${NOT}"


def test_header_checks_and_targets_are_pure_and_exact():
    assert header_problem("X-Ok", "any value, even \u00e9") is None
    assert header_problem("Host", "api.example:8443") is None and header_problem("Host", "[::1]:80") is None
    assert header_problem("Host", "a/b") is not None and header_problem("Host", "a:99999") is not None
    assert encode_target("/caf\u00e9?q=\u65e5 x") == "/caf%C3%A9?q=%E6%97%A5%20x"
    assert encode_target("/a%2fb%zz%") == "/a%2fb%25zz%25"
    assert encode_target("/ok/(x)*;a=b:c@d?e=f&g=~h[0]") == "/ok/(x)*;a=b:c@d?e=f&g=~h[0]"
    assert target_of("http://h/\u65e5\u672c").path == "/%E6%97%A5%E6%9C%AC"
    with pytest.raises(ProbeFailure, match="cannot resolve"):  # a label IDNA refuses: dns, as for an ASCII one
        target_of("http://" + "\u00e9" * 70 + ".example/")
    with pytest.raises(ProbeFailure, match="request not sent: value of header X-A contains a line break"):
        request_bytes("GET", "/", [("X-A", "v\r\nInjected: 1")], None)
    with pytest.raises(ProbeFailure, match="request not sent: header name 'X:A'"):
        check_names((("X-Ok", "v"), ("X:A", "v")))
    assert request_bytes("GET", "/", [("X-A", "\u00e9")], None) == b"GET / HTTP/1.1\r\nX-A: \xc3\xa9\r\n\r\n"  # UTF-8


async def test_a_secret_with_a_trailing_newline_is_never_written_even_past_validate(prober):
    """A check built without validate (as a bug could) still cannot inject a header."""
    async with origin({"/": OK}) as site:
        r = await prober.run(spec(site.url + "/", headers=(("X-Token", "s3cret\nX-Injected: 1"),)))
    assert (r.ok, r.error_kind) == (False, "internal") and site.seen == []
    assert "s3cret" not in r.error


async def test_host_header_is_sent_and_is_the_tls_server_name():
    """https://127.0.0.1 with Host: api.test: SNI says api.test and the certificate is checked against it."""
    ca = trustme.CA()
    cert = ca.issue_cert("api.test")
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(OK)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    with ca.cert_pem.tempfile() as ca_file:
        prober = Prober()
        try:
            named = await prober.run(spec(url, timeout=5, ca_file=ca_file, headers=(("Host", "api.test"),)))
            bare = await prober.run(spec(url, timeout=5, ca_file=ca_file))
        finally:
            await prober.close()
            server.close()
    assert (named.ok, named.status_code) == (True, 200), named.error
    assert b"\r\nHost: api.test\r\n" in seen[0] and names[0] == "api.test"
    assert (bare.ok, bare.error_kind) == (False, "tls")  # the certificate is not for 127.0.0.1


async def test_variable_headers_stop_at_the_origin_through_the_config(prober):
    async with origin({"/": OK}) as other, origin() as site:
        site.routes["/"] = b"HTTP/1.1 302 Found\r\nLocation: %s/\r\nContent-Length: 0\r\n\r\n" % other.url.encode()
        check = config("{X-Key: '${KEY}', X-Plain: visible}", url=site.url + "/", env={"KEY": "k1"}).checks[0]
        r = await prober.run(check)
    assert r.ok, r.error
    assert site.seen[0].headers["x-key"] == "k1"
    assert "x-key" not in other.seen[0].headers and other.seen[0].headers["x-plain"] == "visible"


async def test_a_kept_alive_connection_closed_as_the_request_goes_out_is_retried_once_on_a_new_one(prober):
    """The server keeps the first connection, then closes it on the next request without a byte: the run
    goes on over a new connection within the same attempt; a POST (at_most_once) is not repeated."""
    calls: list[int] = []

    def answer(seen) -> bytes:
        calls.append(1)
        return b"" if len(calls) == 2 else OK  # the 2nd request, on the kept connection: closed unanswered

    async with origin({"/": answer}, keep_alive=True) as site:
        first = await prober.run(spec(site.url + "/", reuse_connections=True))
        second = await prober.run(spec(site.url + "/", reuse_connections=True))
    assert first.ok and second.ok, (first.error, second.error)
    assert second.attempts == 1 and second.connect_ms is not None  # a fresh connection, not a new attempt
    assert site.connections == 2


async def test_a_stale_connection_is_not_retried_for_at_most_once(prober):
    calls: list[int] = []

    def answer(seen) -> bytes:
        calls.append(1)
        return OK if len(calls) == 1 else b""

    async with origin({"/": answer}, keep_alive=True) as site:
        post = spec(site.url + "/", method="POST", body=b"x", reuse_connections=True, delivery="at_most_once", retries=Retries(3, 0.01))
        first = await prober.run(post)
        second = await prober.run(post)
    assert first.ok and (second.ok, second.error_kind, second.attempts) == (False, "reset", 1)
    assert len(calls) == 2  # sent once: the server may have acted on it


def test_keep_alive_time_follows_the_server():
    assert keep_alive_for("timeout=5, max=100") == 4.0
    assert keep_alive_for("max=3, Timeout = 30") == 29.0
    assert keep_alive_for("timeout=1") == 0.0  # too short to trust
    assert keep_alive_for(None) == keep_alive_for("timeout=soon") == KEEPALIVE_DEFAULT < 5


async def test_an_idle_connection_is_dropped_after_the_server_keep_alive_time(prober):
    answer = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1.2\r\nContent-Length: 2\r\n\r\nok"  # kept 0.2 s
    async with origin({"/": answer}, keep_alive=True) as site:
        check = spec(site.url + "/", reuse_connections=True)
        runs = [await prober.run(check), await prober.run(check)]
        await asyncio.sleep(0.3)
        runs.append(await prober.run(check))
    assert all(r.ok for r in runs)
    assert [r.connect_ms is None for r in runs] == [False, True, False]
    assert site.connections == 2


def test_addresses_alternate_families_from_the_resolvers_first():
    assert interleave(["::1", "::2", "10.0.0.1", "10.0.0.2"]) == ["::1", "10.0.0.1", "::2", "10.0.0.2"]
    assert interleave(["10.0.0.1", "::1", "::2"]) == ["10.0.0.1", "::1", "::2"]
    assert interleave(["10.0.0.1", "10.0.0.2"]) == ["10.0.0.1", "10.0.0.2"]


async def test_a_black_holed_first_address_does_not_eat_the_timeout():
    """dual.test resolves to 127.0.0.2 (SYNs dropped) then 127.0.0.1: the second is tried 250 ms later."""
    async with black_hole("127.0.0.2") as port:
        try:
            server = await asyncio.start_server(lambda r, w: _answer(r, w), "127.0.0.1", port)
        except OSError:
            pytest.skip("the black hole's port is taken on 127.0.0.1")

        async def resolve(host: str, _port: int) -> list[str]:
            return {"dual.test": ["127.0.0.2", "127.0.0.1"], "hole.test": ["127.0.0.2", "127.0.0.2"]}[host]

        prober = Prober(resolve=resolve)
        try:
            ok = await prober.run(spec(f"http://dual.test:{port}/", timeout=3))
            lost = await prober.run(spec(f"http://hole.test:{port}/", timeout=0.6))
        finally:
            await prober.close()
            server.close()
    assert (ok.ok, ok.status_code) == (True, 200), ok.error
    assert ok.connect_ms >= 240  # the first address had its 250 ms
    assert (lost.ok, lost.error_kind) == (False, "timeout")


async def test_happy_eyeballs_with_the_system_resolver_and_the_real_cli(tmp_path):
    """`pulse-agent check` in a mount namespace whose /etc/hosts says dual.test is 127.0.0.1 (SYNs
    dropped) and 127.0.0.2 (the origin): getaddrinfo puts 127.0.0.1 first; the check passes."""
    unshare = require_binary("unshare", "util-linux")
    hosts, config = tmp_path / "hosts", tmp_path / "pulse.yaml"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 dual.test\n127.0.0.2 dual.test\n")
    async with black_hole("127.0.0.1") as port:
        try:
            server = await asyncio.start_server(_answer, "127.0.0.2", port)
        except OSError:
            pytest.skip("the black hole's port is taken on 127.0.0.2")
        config.write_text(f"version: 1\nchecks: [{{name: c, url: 'http://dual.test:{port}/', timeout: 3s}}]\n")
        command = [sys.executable, "-m", "pulse_agent", "check", "c", "-c", str(config), "--format", "json"]
        try:
            proc = await asyncio.create_subprocess_exec(
                unshare,
                "-rm",
                "sh",
                "-c",
                'mount --bind "$0" /etc/hosts && exec "$@"',
                str(hosts),
                *command,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=tmp_path,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            server.close()
    if proc.returncode != 0 and not out:
        pytest.skip(f"no mount namespace here: {err.decode().strip()[:200]}")
    result = json.loads(out)
    assert (result["ok"], result["status_code"]) == (True, 200), result
    assert result["dns_ms"] is not None and result["connect_ms"] >= 240  # 127.0.0.1 had its 250 ms first


async def test_a_refusing_first_address_falls_through_to_the_next():
    async with origin({"/": OK}) as site:
        port = int(site.url.rsplit(":", 1)[1])
        closed = free_port()

        async def resolve(host: str, _port: int) -> list[str]:
            return ["127.0.0.3", "127.0.0.1"]

        prober = Prober(resolve=resolve)
        try:
            r = await prober.run(spec(f"http://both.test:{port}/", timeout=3))
            refused = await prober.run(spec(f"http://both.test:{closed}/", timeout=3))
        finally:
            await prober.close()
    assert r.ok, r.error
    assert (refused.error_kind, refused.error) == ("connect", f"cannot connect to both.test:{closed}: Connection refused")


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
    finally:
        writer.close()


def test_validate_on_the_command_line_names_the_header_and_hides_the_secret(tmp_path):
    from tests.conftest import run_cli

    path = tmp_path / "pulse.yaml"
    path.write_text("version: 1\nchecks:\n  - name: c\n    url: http://127.0.0.1/\n    headers: {X-Token: '${TOKEN}'}\n")
    out = run_cli("validate", "-c", str(path), env={"TOKEN": "s3cret\n"})
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert f"{path}:5:24: checks[0].headers.X-Token: value of header X-Token contains a line break" in text
    assert "s3cret" not in text and "Traceback" not in text
