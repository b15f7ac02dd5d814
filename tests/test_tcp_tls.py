"""tcp:// and tls:// checks against real servers on 127.0.0.1: banner and PING/PONG servers, servers that
hang, refuse or close early, TLS servers with trustme certificates, and aiosmtpd speaking STARTTLS."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import SMTP

from pulse_agent.config import parse_config
from pulse_agent.config.model import CheckSpec
from pulse_agent.probe.kinds import Probes
from pulse_agent.result import Result
from tests.conftest import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def check(yaml: str, env: dict[str, str] | None = None) -> CheckSpec:
    """The one check of a config through the real parser (schema, validation, build)."""
    text = "version: 1\nchecks:\n  - name: t\n" + textwrap.indent(textwrap.dedent(yaml), "    ")
    return parse_config(text, "t.yaml", env).checks[0]


async def run(yaml: str, env: dict[str, str] | None = None) -> Result:
    probes = Probes()
    try:
        return await probes.run(check(yaml, env))
    finally:
        await probes.close()


@asynccontextmanager
async def server(handle: Handler, context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A server on 127.0.0.1 running handle per connection (handlers that wait, wait for the client to close); its port."""

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(wrapped, "127.0.0.1", 0, ssl=context)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


async def smtp_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mail.test ESMTP ready\r\n")
    await writer.drain()
    await reader.read(100)


async def redis_like(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(b"+PONG\r\n" if line.strip().upper() == b"PING" else b"-ERR unknown command '" + line.strip() + b"'\r\n")
        await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the probe gives up and closes


async def closes_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    return None


async def says_then_closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"-ERR max clients\x00\xff\r\n")
    await writer.drain()


async def floods(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"x" * (200 * 1024))
    await writer.drain()
    await reader.read()


# TCP


async def test_a_banner_is_read_and_matched_by_regex() -> None:
    async with server(smtp_banner) as port:
        result = await run(f"url: tcp://127.0.0.1:{port}\nexpect: {{receive: '/^220 [a-z.]+ ESMTP/'}}\n")
    assert (result.ok, result.error_kind) == (True, None)
    assert result.connect_ms is not None and result.first_byte_ms is not None and result.response_time_ms is not None
    assert result.details == {"address": "127.0.0.1", "received": "220 mail.test ESMTP ready\\r\\n", "received_bytes": 27}


async def test_redis_ping_pong_through_a_name_and_a_wrong_command_names_what_came() -> None:
    async with server(redis_like) as port:
        ok = await run(f'url: tcp://localhost:{port}\nsend: "PING\\r\\n"\nexpect: {{receive: "+PONG"}}\n')
        bad = await run(f'url: tcp://localhost:{port}\nsend: "PNG\\r\\n"\nexpect: {{receive: "+PONG"}}\ntimeout: 300ms\n')
    assert ok.ok and ok.dns_ms is not None and ok.details and ok.details["received"] == "+PONG\\r\\n"
    assert (bad.ok, bad.error_kind) == (False, "receive")
    assert bad.error == 'expected "+PONG" within 300ms, got "-ERR unknown command \'PNG\'\\r\\n"'


async def test_a_server_that_never_answers_times_out_naming_the_expectation() -> None:
    async with server(silent) as port:
        result = await run(f"url: tcp://127.0.0.1:{port}\nexpect: {{receive: '+OK'}}\ntimeout: 200ms\n")
    assert (result.ok, result.error_kind, result.error) == (False, "timeout", 'nothing received within 200ms; expected "+OK"')
    assert result.connect_ms is not None


async def test_a_refused_port_fails_connect() -> None:
    result = await run(f"url: tcp://127.0.0.1:{free_port()}\n")
    assert (result.ok, result.error_kind) == (False, "connect")
    assert result.error is not None and "Connection refused" in result.error and result.response_time_ms is None


async def test_a_port_check_passes_when_the_connection_opens_and_send_reaches_the_server() -> None:
    seen: list[bytes] = []

    async def records(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(100))

    async with server(records) as port:
        plain = await run(f"url: tcp://127.0.0.1:{port}\n")
        sent = await run(f'url: tcp://127.0.0.1:{port}\nsend: "QUIT\\r\\n"\n')
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
    assert plain.ok and sent.ok and plain.details == {"address": "127.0.0.1"}
    assert sorted(seen) == [b"", b"QUIT\r\n"]


async def test_a_server_closing_early_fails_reset_or_receive_with_what_came() -> None:
    async with server(closes_at_once) as port:
        nothing = await run(f"url: tcp://127.0.0.1:{port}\nexpect: {{receive: '+PONG'}}\n")
    async with server(says_then_closes) as port:
        something = await run(f"url: tcp://127.0.0.1:{port}\nexpect: {{receive: '+PONG'}}\n")
    assert (nothing.error_kind, nothing.error) == ("reset", 'the server closed the connection without sending anything; expected "+PONG"')
    assert something.error_kind == "receive"
    assert something.error == 'expected "+PONG", got "-ERR max clients\\x00\\xff\\r\\n" and then the server closed the connection'


async def test_reading_stops_at_64_kib_and_shows_a_cut_prefix() -> None:
    async with server(floods) as port:
        result = await run(f"url: tcp://127.0.0.1:{port}\nexpect: {{receive: 'never'}}\ntimeout: 5s\n")
    assert result.error_kind == "receive" and result.response_time_ms is not None and result.response_time_ms < 5000
    assert result.error is not None and result.error.startswith('expected "never" in the first 64 KiB, got "xxxx')
    assert result.error.endswith('"... (65536 bytes)') and result.details is not None and result.details["received_bytes"] == 65536
    assert len(result.error) < 250


async def test_retries_connect_again_after_a_failed_attempt() -> None:
    answers = iter([b"-LOADING\r\n", b"+PONG\r\n"])

    async def warming(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(next(answers))
        await writer.drain()

    async with server(warming) as port:
        result = await run(f"url: tcp://127.0.0.1:{port}\nexpect: {{receive: '+PONG'}}\nretries: {{attempts: 2, backoff: 10ms}}\n")
    assert (result.ok, result.attempts) == (True, 2)


async def test_max_response_time_and_degraded_apply_to_tcp() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.15)
        writer.write(b"+PONG\r\n")
        await writer.drain()

    async with server(slow) as port:
        late = await run(f"url: tcp://127.0.0.1:{port}\nexpect: {{receive: '+PONG', max_response_time: 50ms}}\n")
        degraded = await run(f"url: tcp://127.0.0.1:{port}\nexpect: {{receive: '+PONG', degraded_response_time: 50ms}}\n")
    assert late.error_kind == "latency" and late.error is not None and "over max_response_time 50ms" in late.error
    assert (degraded.ok, degraded.degraded) == (True, True)


# TLS


def server_context(leaf: trustme.LeafCert, max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    if max_version is not None:
        context.maximum_version = max_version
    return context


async def hello_after_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"* OK secure hello\r\n")
    await writer.drain()
    await reader.read(100)


async def test_a_handshake_reports_version_expiry_and_phases(ca: trustme.CA, ca_file: str) -> None:
    leaf = ca.issue_cert("localhost")
    expires = datetime.datetime(2099, 1, 1, tzinfo=datetime.UTC)
    async with server(hello_after_handshake, server_context(ca.issue_cert("localhost", not_after=expires))) as port:
        result = await run(f"url: tls://localhost:{port}\nca_file: {ca_file}\nexpect: {{certificate_valid_for: 30d, tls_version: '1.3'}}\n")
    assert (result.ok, result.error) == (True, None), result.error
    assert result.tls_version == "1.3" and result.cert_expires == expires.timestamp()
    assert result.tls_ms is not None and result.connect_ms is not None and result.dns_ms is not None
    assert result.details is not None and result.details["address"] == "127.0.0.1" and result.details["cipher"].startswith("TLS_")
    assert leaf  # a second leaf of the same CA: unused, the CA is what the check trusts


async def test_a_certificate_expiring_soon_fails_certificate(ca: trustme.CA, ca_file: str) -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    async with server(hello_after_handshake, server_context(ca.issue_cert("localhost", not_after=soon))) as port:
        result = await run(f"url: tls://localhost:{port}\nca_file: {ca_file}\nexpect: {{certificate_valid_for: 14d}}\n")
    assert result.error_kind == "certificate" and result.error is not None
    assert "expires" in result.error and "expected at least 14d" in result.error
    assert result.cert_expires is not None and abs(result.cert_expires - soon.timestamp()) < 1


async def test_a_certificate_of_another_ca_fails_tls_and_without_verification_its_expiry_is_still_read(
    ca: trustme.CA, ca_file: str
) -> None:
    other = trustme.CA()
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    async with server(hello_after_handshake, server_context(other.issue_cert("localhost", not_after=soon))) as port:
        trusted = await run(f"url: tls://localhost:{port}\nca_file: {ca_file}\n")
        unverified = await run(f"url: tls://localhost:{port}\ntls_verify: false\nexpect: {{certificate_valid_for: 14d}}\n")
        unverified_ok = await run(f"url: tls://localhost:{port}\ntls_verify: false\nexpect: {{certificate_valid_for: 1d}}\n")
    assert trusted.error_kind == "tls" and trusted.error is not None and trusted.error.startswith("certificate not trusted")
    assert unverified.error_kind == "certificate" and unverified.cert_expires is not None
    assert unverified_ok.ok and unverified_ok.cert_expires is not None and unverified_ok.tls_version is not None


async def test_tls_version_expectation_and_minimum_version(ca: trustme.CA, ca_file: str) -> None:
    context = server_context(ca.issue_cert("localhost"), max_version=ssl.TLSVersion.TLSv1_2)
    async with server(hello_after_handshake, context) as port:
        base = f"url: tls://localhost:{port}\nca_file: {ca_file}\n"
        twelve = await run(base + "expect: {tls_version: '1.2'}\n")
        thirteen = await run(base + "expect: {tls_version: '1.3'}\n")
        floor = await run(base + "tls: {min_version: '1.3'}\n")
    assert twelve.ok and twelve.tls_version == "1.2"
    assert (thirteen.error_kind, thirteen.error) == ("version", "expected TLS 1.3, got TLS 1.2")
    assert (floor.error_kind, floor.error, floor.tls_version) == (
        "tls",
        "TLS failed: the server closed the connection during the handshake",
        None,
    )


async def test_server_name_and_a_client_certificate(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    context = server_context(ca.issue_cert("pulse.test"))
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)
    client = ca.issue_cert("probe")
    client_pem = tmp_path / "client.pem"
    client.private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    async with server(hello_after_handshake, context) as port:
        base = f"url: tls://127.0.0.1:{port}\nca_file: {ca_file}\nexpect: {{receive: '* OK'}}\n"
        named = await run(base + f"tls: {{server_name: pulse.test, cert_file: {client_pem}}}\n")
        unnamed = await run(base + f"tls: {{cert_file: {client_pem}}}\n")
        anonymous = await run(base + "tls: {server_name: pulse.test}\n")
    assert named.ok, named.error
    assert unnamed.error_kind == "tls" and unnamed.error is not None and "127.0.0.1" in unnamed.error
    assert not anonymous.ok and anonymous.error_kind in ("tls", "reset")  # TLS 1.3: the refusal comes after the handshake


async def test_send_and_receive_after_the_handshake(ca: trustme.CA, ca_file: str) -> None:
    async with server(redis_like, server_context(ca.issue_cert("localhost"))) as port:
        result = await run(f'url: tls://localhost:{port}\nca_file: {ca_file}\nsend: "PING\\r\\n"\nexpect: {{receive: "+PONG"}}\n')
    assert result.ok and result.first_byte_ms is not None and result.details and result.details["received"] == "+PONG\\r\\n"


async def test_a_handshake_that_never_completes_times_out_as_tls() -> None:
    async with server(silent) as port:
        result = await run(f"url: tls://127.0.0.1:{port}\ntls_verify: false\ntimeout: 200ms\n")
    assert (result.error_kind, result.error) == ("timeout", "TLS handshake not complete within 200ms")


# STARTTLS


class Inbox:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@asynccontextmanager
async def smtp_server(context: ssl.SSLContext | None) -> AsyncIterator[int]:
    """aiosmtpd on 127.0.0.1, offering STARTTLS when given a context."""
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(Inbox(), hostname="mail.test", tls_context=context), "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


async def test_starttls_smtp_with_aiosmtpd(ca: trustme.CA, ca_file: str) -> None:
    async with smtp_server(server_context(ca.issue_cert("localhost"))) as port:
        result = await run(f"url: tls://localhost:{port}\nstarttls: smtp\nca_file: {ca_file}\nexpect: {{certificate_valid_for: 1d}}\n")
    assert result.ok, result.error
    assert result.tls_version == "1.3" and result.cert_expires is not None and result.tls_ms is not None
    assert result.details is not None and result.details["starttls"] == "smtp" and result.details["starttls_ms"] > 0


async def test_an_smtp_server_without_starttls_fails_starttls_naming_its_reply() -> None:
    async with smtp_server(None) as port:
        result = await run(f"url: tls://127.0.0.1:{port}\nstarttls: smtp\ntls_verify: false\n")
    assert result.error_kind == "starttls" and result.error is not None
    assert result.error.startswith('the SMTP server does not offer STARTTLS (EHLO reply "250-mail.test\\r\\n')


async def test_starttls_against_a_server_that_is_not_smtp_fails_protocol() -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()

    async with server(http) as port:
        result = await run(f"url: tls://127.0.0.1:{port}\nstarttls: smtp\ntls_verify: false\n")
    assert (result.error_kind, result.error) == ("protocol", 'not an SMTP reply to greeting: "HTTP/1.1 400 Bad Request\\r\\n"')


async def scripted_starttls(lines: list[tuple[bytes | None, bytes]], context: ssl.SSLContext | None) -> Handler:
    """A server writing each answer after reading its expected line (None: at once); then TLS when given a context."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for expected, answer in lines:
            if expected is not None:
                assert (await reader.readline()) == expected
            writer.write(answer)
            await writer.drain()
        if context is not None:
            await writer.start_tls(context)
            await hello_after_handshake(reader, writer)

    return handle


@pytest.mark.parametrize(
    ("protocol", "lines"),
    [
        ("imap", [(None, b"* OK IMAP4rev1 ready\r\n"), (b"P1 STARTTLS\r\n", b"P1 OK Begin TLS negotiation now\r\n")]),
        ("ftp", [(None, b"220-Welcome\r\n220 FTP ready\r\n"), (b"AUTH TLS\r\n", b"234 AUTH TLS OK\r\n")]),
    ],
)
async def test_starttls_imap_and_ftp(protocol: str, lines: list[tuple[bytes | None, bytes]], ca: trustme.CA, ca_file: str) -> None:
    handle = await scripted_starttls(lines, server_context(ca.issue_cert("localhost")))
    async with server(handle) as port:
        result = await run(f"url: tls://localhost:{port}\nstarttls: {protocol}\nca_file: {ca_file}\nexpect: {{receive: '* OK secure'}}\n")
    assert result.ok, result.error
    assert result.tls_version is not None and result.details is not None and result.details["starttls"] == protocol


@pytest.mark.parametrize(
    ("protocol", "lines", "kind", "message"),
    [
        ("imap", [(None, b"* OK ready\r\n"), (b"P1 STARTTLS\r\n", b"P1 BAD STARTTLS disabled\r\n")], "starttls",
         'IMAP STARTTLS refused: "P1 BAD STARTTLS disabled\\r\\n"'),
        ("ftp", [(None, b"220 FTP ready\r\n"), (b"AUTH TLS\r\n", b"500 AUTH not understood\r\n")], "starttls",
         'FTP AUTH TLS refused: "500 AUTH not understood\\r\\n"'),
        ("smtp", [(None, b"554 no service for you\r\n")], "starttls", 'SMTP server not ready: greeting "554 no service for you\\r\\n"'),
        # bytes after the go-ahead would be read as if they came over TLS: refused
        ("ftp", [(None, b"220 ready\r\n"), (b"AUTH TLS\r\n", b"234 OK\r\n250 injected\r\n")], "protocol",
         'FTP: the server sent "250 injected\\r\\n" after agreeing to STARTTLS, before the handshake'),
    ],
)  # fmt: skip
async def test_a_refused_starttls_names_what_the_server_said(
    protocol: str, lines: list[tuple[bytes | None, bytes]], kind: str, message: str
) -> None:
    async def then_wait(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await (await scripted_starttls(lines, None))(reader, writer)
        await reader.read(100)

    async with server(then_wait) as port:
        result = await run(f"url: tls://127.0.0.1:{port}\nstarttls: {protocol}\ntls_verify: false\n")
    assert (result.error_kind, result.error) == (kind, message)


# Hostile peers


async def test_a_reset_and_hostile_starttls_replies_fail_precisely() -> None:
    import socket
    import struct

    async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async def endless_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 " + b"a" * 10_000)
        await writer.drain()
        await reader.read()

    async def endless_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220-more\r\n" * 200)
        await writer.drain()
        await reader.read()

    async with server(resets) as port:
        reset = await run(f'url: tcp://127.0.0.1:{port}\nsend: "PING\\r\\n"\nexpect: {{receive: "+PONG"}}\n')
    async with server(endless_line) as port:
        line = await run(f"url: tls://127.0.0.1:{port}\nstarttls: smtp\ntls_verify: false\n")
    async with server(endless_reply) as port:
        reply = await run(f"url: tls://127.0.0.1:{port}\nstarttls: smtp\ntls_verify: false\n")
    assert (reset.error_kind, reset.error) == (
        "reset",
        'the server reset (Connection reset by peer) the connection without sending anything; expected "+PONG"',
    )
    assert (line.error_kind, line.error) == ("protocol", "SMTP greeting: a line longer than 4096 bytes")
    assert (reply.error_kind, reply.error) == ("protocol", "SMTP greeting: a reply longer than 100 lines")


async def test_happy_eyeballs_reaches_the_address_that_answers() -> None:
    from pulse_agent.probe.tcp import TcpProbe

    async def addresses(host: str, port: int) -> list[str]:
        return ["127.0.0.2", "127.0.0.1"]  # nothing listens on the first: refused, the next is tried at once

    async with server(smtp_banner) as port:
        probe = TcpProbe(resolve=addresses)
        result = await probe.run(check(f"url: tcp://banner.test:{port}\nexpect: {{receive: '220 '}}\n"))
    assert result.ok, result.error
    assert result.details is not None and result.details["address"] == "127.0.0.1" and result.dns_ms is not None


def test_bytes_are_shown_escaped_and_cut() -> None:
    from pulse_agent.probe.received import holds, show_bytes

    assert show_bytes(b'-ERR "x"\r\n\x00\xff\xe2\x82\xac') == '"-ERR \\"x\\"\\r\\n\\x00\\xff€"'
    assert show_bytes(b'a"\n', quote=False) == 'a"\\n'
    assert show_bytes(b"\x1b[2J" * 100) == '"' + "\\x1b[2J" * 30 + '"... (400 bytes)'
    assert holds("/^\\+PONG\\r$/", b"+PONG\r\n") is False and holds("/^\\+PONG\\r\\n/", b"+PONG\r\n")
    assert holds("+PONG", b"x+PONGx") and not holds("+pong", b"+PONG")


async def test_a_password_sent_from_a_variable_is_masked_when_the_server_echoes_it() -> None:
    async with server(redis_like) as port:
        result = await run(
            f'url: tcp://127.0.0.1:{port}\nsend: "AUTH ${{PW}}\\r\\n"\nexpect: {{receive: "+OK"}}\ntimeout: 300ms\n', {"PW": "s3cret-pw"}
        )
    assert result.error == 'expected "+OK" within 300ms, got "-ERR unknown command \'*** ***\'\\r\\n"'
    assert "s3cret" not in repr(result) and "s3cret" not in repr(check("url: tcp://h:1\nsend: '${PW}'\n", {"PW": "s3cret-pw"}))


async def test_a_starttls_dialogue_that_stalls_times_out_naming_it() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.test ESMTP\r\n")
        await writer.drain()
        await reader.read()  # never answers EHLO

    async with server(stalls) as port:
        result = await run(f"url: tls://127.0.0.1:{port}\nstarttls: smtp\ntls_verify: false\ntimeout: 200ms\n")
    assert (result.error_kind, result.error) == ("timeout", "no complete SMTP STARTTLS exchange within 200ms")
    assert result.details == {"address": "127.0.0.1", "starttls": "smtp", "starttls_ms": None}
