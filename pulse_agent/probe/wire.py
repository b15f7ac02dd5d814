"""HTTP/1.1 on one connection: a request's bytes out, one response parsed back (llhttp via httptools).

A lean client on purpose: a check needs one request and one response with exact limits and
timings, and aiohttp's general machinery cost about half of the agent's CPU per run
(docs/performance.md).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import httptools

from pulse_agent.probe.syntax import header_problem, is_token
from pulse_agent.result import ErrorKind, Failure
from pulse_agent.sizes import format_size

HEADER_LIMIT = 64 * 1024  # bytes of status line and headers; more is a protocol failure


class ProbeFailure(Exception):
    """A run's exchange failed in a way a Failure describes."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def fail(kind: ErrorKind, message: str) -> ProbeFailure:
    """A ProbeFailure of the given kind, to raise."""
    return ProbeFailure(Failure(kind, message))


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A parsed response as it came off the wire."""

    status: int
    headers: dict[str, str]  # lower-case names; the first of repeated headers
    body: bytes  # still content-encoded
    headers_at: float  # perf_counter when the headers were complete
    reusable: bool  # the connection may carry another request
    http_version: str = "1.1"  # "1.0", "1.1" or "2"


def basic_credentials(username: str, password: str) -> str:
    """An Authorization value for HTTP Basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def request_bytes(method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes | None) -> bytes:
    """The bytes of one request: request line, headers (with Content-Length when needed), body.

    Header values are sent as UTF-8. A line break or NUL anywhere but between lines is refused
    (ProbeFailure 'internal': validate refuses such headers, so one here is a fault of ours).
    """
    lines = [f"{method} {target} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = "\r\n".join(lines)
    breaks = len(lines) - 1
    if head.count("\n") != breaks or head.count("\r") != breaks or "\0" in head:  # three C scans: cheap on every run
        raise _unsendable(method, headers)
    return (head + "\r\n\r\n").encode("utf-8") + (body or b"")


def check_names(headers: tuple[tuple[str, str], ...]) -> None:
    """ProbeFailure 'internal' when a header name is not an HTTP token (validate refuses those)."""
    if not _all_tokens(headers):
        raise _unsendable("", headers)


@lru_cache(maxsize=1024)
def _all_tokens(headers: tuple[tuple[str, str], ...]) -> bool:
    """Whether every name is a token (a check's few header sets are asked about on every run: cached)."""
    return all(is_token(name) for name, _ in headers)


def _unsendable(method: str, headers: Sequence[tuple[str, str]]) -> ProbeFailure:
    """Which part of a request cannot be written (values are not quoted: they may be secrets)."""
    for name, value in headers:
        if (problem := header_problem(name, value)) is not None:
            return fail("internal", f"request not sent: {problem}")
    return fail("internal", f"request not sent: the request line {method} ... has a line break or NUL")


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection that reads one response per request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.replied = False  # a byte of an answer came: a failure now is the server's, not a stale connection's
        self.cert_not_after: float | None = None  # expiry of the TLS peer certificate, epoch seconds
        self.tls_version: str | None = None  # "1.2", "1.3"; None for plain http
        self._reader: _Reader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        if reader is None:
            self.closed = True  # an answer nobody asked for: this connection cannot be trusted again
            if self.transport is not None:
                self.transport.close()
            return
        self.replied = True
        reader.feed(data)
        if reader.future.done():
            self._reader = None
            reader.release()

    def eof_received(self) -> bool:
        return False  # close; connection_lost settles a pending response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._reader is not None:
            self._reader.lost(exc)
            self._reader.release()
            self._reader = None

    def send(self, data: bytes, *, head_only: bool, limit: int) -> asyncio.Future[RawResponse]:
        """Write a request; the future resolves to its response or raises ProbeFailure."""
        assert self.transport is not None
        future: asyncio.Future[RawResponse] = asyncio.get_running_loop().create_future()
        if self.closed:
            future.set_exception(fail("reset", "server closed the connection without a complete response"))
            return future
        self._reader = _Reader(future, head_only, limit)
        self.replied = False
        self.transport.write(data)
        return future

    def close(self) -> None:
        """Close the connection (also while a response is being read)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Reader:
    """Parser callbacks and state for one response."""

    __slots__ = ("body", "fed", "future", "head_only", "headers", "headers_at", "limit", "parser", "received", "size", "status")

    def __init__(self, future: asyncio.Future[RawResponse], head_only: bool, limit: int) -> None:
        self.future = future
        self.head_only = head_only
        self.limit = limit
        self.parser = httptools.HttpResponseParser(self)
        self.parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)  # a bare LF ends a line (RFC 9112 2.2 allows it)
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_at: float | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.received = 0  # bytes of headers parsed
        self.fed = 0  # bytes fed while the headers were incomplete
        self.status = 0

    def feed(self, data: bytes) -> None:
        if self.headers_at is None:  # the parser holds a header until it ends: bound what it may hold
            if self.fed > HEADER_LIMIT:
                return self._fail("protocol", f"invalid HTTP response: headers larger than {format_size(HEADER_LIMIT)}")
            self.fed += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish(reusable=False)  # 101 Switching Protocols: the HTTP part is over
        except httptools.HttpParserError as exc:
            self._fail("protocol", f"invalid HTTP response: {exc}")

    def lost(self, exc: Exception | None) -> None:
        if self.future.done():
            return
        if self.headers_at is not None and not self._framed():
            return self._finish(reusable=False)  # the body ran until the server closed
        if self.headers_at is not None:
            return self._fail("reset", f"response body cut short after {format_size(self.size)}")
        if isinstance(exc, ssl.SSLError):  # e.g. a TLS 1.3 server refusing our client certificate after the handshake
            return self._fail("tls", f"TLS failed: {exc.reason or exc}")
        if isinstance(exc, OSError):
            return self._fail("reset", f"connection error: {exc.strerror or exc}")
        self._fail("reset", "server closed the connection without a complete response")

    def release(self) -> None:
        """The response is settled and nothing more is fed: let go of the parser. Its callbacks are this
        reader's bound methods, a cycle that only the cyclic collector would free; one per run promoted
        through its generations made the agent's full collections frequent and long (docs/performance.md)."""
        del self.parser

    def _framed(self) -> bool:
        return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers)

    def _fail(self, kind: ErrorKind, message: str) -> None:
        if not self.future.done():
            self.future.set_exception(fail(kind, message))

    def _finish(self, reusable: bool) -> None:
        if self.future.done():
            return
        headers: dict[str, str] = {}
        for name, value in self.headers:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        version = self.parser.get_http_version()
        self.future.set_result(
            RawResponse(self.status, headers, b"".join(self.body), self.headers_at or time.perf_counter(), reusable, version)
        )

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.received += len(name) + len(value) + 4
        if self.received > HEADER_LIMIT:
            return self._fail("protocol", f"invalid HTTP response: headers larger than {format_size(HEADER_LIMIT)}")
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.future.done():
            return
        self.status = self.parser.get_status_code()
        if self.status >= 200:
            self.headers_at = time.perf_counter()
            if self.head_only:
                self._finish(reusable=False)  # the parser would wait for a body HEAD never gets

    def on_body(self, chunk: bytes) -> None:
        if self.future.done():
            return
        self.size += len(chunk)
        if self.size > self.limit:
            return self._fail("body_too_large", f"body larger than {format_size(self.limit)}")
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.status >= 200:  # 1xx are interim; the real answer follows on the same connection
            self._finish(reusable=self.parser.should_keep_alive())


def decode_body(encoding: str | None, body: bytes, limit: int) -> bytes:
    """The body without its gzip or deflate content-encoding, at most limit bytes (else ProbeFailure)."""
    coding = (encoding or "").strip().lower()
    if coding in ("", "identity") or not body:
        return body
    if coding not in ("gzip", "x-gzip", "deflate"):
        return body  # an encoding we did not ask for: judged as it came
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else (zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise fail("protocol", f"invalid {coding} body: {exc}") from None
    if len(out) > limit:
        raise fail("body_too_large", f"body larger than {format_size(limit)}")
    return out


def charset_of(content_type: str | None) -> str:
    """The charset a Content-Type declares; utf-8 when none."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"
