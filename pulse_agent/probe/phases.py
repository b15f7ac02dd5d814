"""Per-phase timings of one HTTP exchange: DNS, TCP connect, TLS, first byte, total.

aiohttp's TraceConfig marks DNS and connection-creation boundaries. The TCP/TLS split comes
from the connector's protocol factory, which asyncio calls once the TCP connection is up and
before the TLS handshake starts.
"""

from __future__ import annotations

import contextvars
import ssl
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp

_CURRENT: contextvars.ContextVar[PhaseClock | None] = contextvars.ContextVar("pulse_phase_clock", default=None)


@dataclass(frozen=True, slots=True)
class Phases:
    """Milliseconds spent in each phase of the last hop; None where a phase did not happen."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None


class PhaseClock:
    """Marks taken during one attempt (perf_counter seconds)."""

    __slots__ = (
        "_token",
        "cert_not_after",
        "conn_end",
        "conn_start",
        "dns_end",
        "dns_start",
        "headers",
        "protocol",
        "sent",
        "start",
        "tcp_done",
        "tls",
    )

    def __init__(self, tls: bool = False) -> None:
        self.tls = tls
        self.start = time.perf_counter()
        self._token: contextvars.Token[PhaseClock | None] | None = None
        self.dns_start: float | None = None
        self.dns_end: float | None = None
        self.conn_start: float | None = None
        self.tcp_done: float | None = None
        self.conn_end: float | None = None
        self.sent: float | None = None
        self.headers: float | None = None
        self.protocol: Any = None  # the connection's protocol, to read the TLS peer certificate from
        self.cert_not_after: float | None = None

    def __enter__(self) -> PhaseClock:
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.protocol = None  # also when the connection never completed
        if self._token is not None:
            _CURRENT.reset(self._token)

    def phases(self) -> Phases:
        """The marks as phase durations."""
        connected_from = self.dns_end or self.conn_start
        tcp_end = self.tcp_done or self.conn_end
        return Phases(
            dns_ms=_ms(self.dns_start, self.dns_end),
            connect_ms=_ms(connected_from, tcp_end),
            tls_ms=_ms(self.tcp_done, self.conn_end) if self.tls else None,
            first_byte_ms=_ms(self.start, self.headers),
        )

    @property
    def request_sent(self) -> bool:
        """Whether request headers left this machine (so the server may have acted on them)."""
        return self.sent is not None


def _ms(a: float | None, b: float | None) -> float | None:
    return round((b - a) * 1000, 3) if a is not None and b is not None else None


def peer_cert_not_after(protocol: Any) -> float | None:
    """Expiry of the verified TLS peer certificate of a fresh connection; None for plain or unverified."""
    transport = getattr(protocol, "transport", None)
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()  # empty when verification is off
    return ssl.cert_time_to_seconds(cert["notAfter"]) if cert and "notAfter" in cert else None


def trace_config() -> aiohttp.TraceConfig:
    """A TraceConfig that fills the PhaseClock passed as trace_request_ctx."""
    config = aiohttp.TraceConfig()

    def mark(field: str) -> Any:
        async def handler(_: aiohttp.ClientSession, ctx: SimpleNamespace, __: object) -> None:
            clock = ctx.trace_request_ctx
            if isinstance(clock, PhaseClock):
                setattr(clock, field, time.perf_counter())

        return handler

    async def redirected(_: aiohttp.ClientSession, ctx: SimpleNamespace, __: object) -> None:
        clock = ctx.trace_request_ctx
        if isinstance(clock, PhaseClock):  # phases describe the last hop
            clock.dns_start = clock.dns_end = clock.conn_start = clock.tcp_done = clock.conn_end = None

    config.on_dns_resolvehost_start.append(mark("dns_start"))
    config.on_dns_resolvehost_end.append(mark("dns_end"))
    config.on_connection_create_start.append(mark("conn_start"))

    async def connected(_: aiohttp.ClientSession, ctx: SimpleNamespace, __: object) -> None:
        clock = ctx.trace_request_ctx
        if isinstance(clock, PhaseClock):
            clock.conn_end = time.perf_counter()
            clock.cert_not_after = peer_cert_not_after(clock.protocol)
            clock.protocol = None  # needed only to read the certificate; do not keep the connection reachable

    config.on_connection_create_end.append(connected)
    config.on_request_headers_sent.append(mark("sent"))
    config.on_request_redirect.append(redirected)
    return config


def timed_connector(**kwargs: Any) -> aiohttp.TCPConnector:
    """A TCPConnector whose protocol factory marks 'TCP connected' on the current PhaseClock."""
    connector = aiohttp.TCPConnector(**kwargs)
    factory = connector._factory  # called by asyncio after TCP connect, before the TLS handshake

    def marking_factory() -> Any:
        clock = _CURRENT.get()
        protocol = factory()
        if clock is not None and clock.tcp_done is None:
            clock.tcp_done = time.perf_counter()
            clock.protocol = protocol
        return protocol

    connector._factory = marking_factory  # type: ignore[method-assign,assignment]
    return connector
