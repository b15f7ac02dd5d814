"""The plain-text part of STARTTLS (smtp, imap, ftp): the dialogue up to the server's "go ahead", after which
the caller runs the TLS handshake on the same connection.

A server that answers but will not upgrade fails with error_kind `starttls` naming its reply; one that
does not speak the protocol at all fails with `protocol`. Bytes the server sends after its go-ahead and
before the handshake are refused (`protocol`): they would be read as if they came over TLS (the
STARTTLS command-injection class of bugs, CVE-2011-0411).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from pulse_agent.config.model import Starttls
from pulse_agent.probe.received import show_bytes
from pulse_agent.probe.stream import Stream
from pulse_agent.probe.wire import fail

MAX_REPLY_LINES = 100  # of one multi-line SMTP/FTP reply


async def starttls(protocol: Starttls, stream: Stream) -> None:
    """Speak protocol on stream until the server agrees to start TLS; ProbeFailure otherwise."""
    await _DIALOGUES[protocol](stream)
    if stream.data:
        early = show_bytes(stream.data)
        raise fail("protocol", f"{protocol.upper()}: the server sent {early} after agreeing to STARTTLS, before the handshake")


async def _smtp(stream: Stream) -> None:
    code, reply = await _coded_reply(stream, "SMTP", "greeting")
    if code != 220:
        raise fail("starttls", f"SMTP server not ready: greeting {show_bytes(reply)}")
    stream.write(f"EHLO {_address_literal(stream)}\r\n".encode("ascii"))
    code, reply = await _coded_reply(stream, "SMTP", "EHLO")
    if code != 250:
        raise fail("starttls", f"SMTP EHLO refused: {show_bytes(reply)}")
    if not any(line[4:].strip().upper().split(b" ", 1)[0] == b"STARTTLS" for line in reply.splitlines()):
        raise fail("starttls", f"the SMTP server does not offer STARTTLS (EHLO reply {show_bytes(reply)})")
    stream.write(b"STARTTLS\r\n")
    code, reply = await _coded_reply(stream, "SMTP", "STARTTLS")
    if code != 220:
        raise fail("starttls", f"SMTP STARTTLS refused: {show_bytes(reply)}")


async def _ftp(stream: Stream) -> None:
    code, reply = await _coded_reply(stream, "FTP", "greeting")
    if code != 220:
        raise fail("starttls", f"FTP server not ready: greeting {show_bytes(reply)}")
    stream.write(b"AUTH TLS\r\n")
    code, reply = await _coded_reply(stream, "FTP", "AUTH TLS")
    if code != 234:
        raise fail("starttls", f"FTP AUTH TLS refused: {show_bytes(reply)}")


async def _imap(stream: Stream) -> None:
    greeting = await stream.line("IMAP greeting")
    if not greeting.upper().startswith((b"* OK", b"* PREAUTH", b"* BYE")):
        raise fail("protocol", f"not an IMAP greeting: {show_bytes(greeting)}")
    if greeting.upper().startswith(b"* BYE"):
        raise fail("starttls", f"IMAP server not ready: greeting {show_bytes(greeting)}")
    stream.write(b"P1 STARTTLS\r\n")
    for _ in range(MAX_REPLY_LINES):
        line = await stream.line("IMAP STARTTLS")
        if line.upper().startswith(b"P1 "):
            if not line.upper().startswith(b"P1 OK"):
                raise fail("starttls", f"IMAP STARTTLS refused: {show_bytes(line)}")
            return
        if not line.startswith(b"* "):
            raise fail("protocol", f"not an IMAP reply to STARTTLS: {show_bytes(line)}")
    raise fail("protocol", f"IMAP STARTTLS: no tagged reply within {MAX_REPLY_LINES} lines")


async def _coded_reply(stream: Stream, protocol: str, what: str) -> tuple[int, bytes]:
    """A reply of SMTP or FTP: "ddd-text" lines ending in "ddd text"; (code, every line) or ProbeFailure 'protocol'."""
    lines = b""
    for _ in range(MAX_REPLY_LINES):
        line = await stream.line(f"{protocol} {what}")
        lines += line
        code, sep = line[:3], line[3:4]
        if not code.isdigit() or sep not in (b" ", b"-", b"\r", b"\n", b""):
            raise fail("protocol", f"not an {protocol} reply to {what}: {show_bytes(lines)}")
        if sep != b"-":
            return int(code), lines
    raise fail("protocol", f"{protocol} {what}: a reply longer than {MAX_REPLY_LINES} lines")


def _address_literal(stream: Stream) -> str:
    """This end's address as an SMTP address literal (RFC 5321 4.1.3), the EHLO name that needs no DNS."""
    sockname = stream.transport.get_extra_info("sockname") if stream.transport is not None else None
    try:
        address = ipaddress.ip_address(sockname[0] if sockname else "")
    except ValueError:
        return "[127.0.0.1]"
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


_DIALOGUES: dict[Starttls, Callable[[Stream], Awaitable[None]]] = {"smtp": _smtp, "imap": _imap, "ftp": _ftp}
