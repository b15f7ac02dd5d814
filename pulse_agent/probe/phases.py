"""Per-phase timings of one HTTP exchange: DNS, TCP connect, TLS, first byte, total."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Phases:
    """Milliseconds spent in each phase of the last hop; None where a phase did not happen."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None


class PhaseClock:
    """Marks taken during one attempt (perf_counter seconds); connection marks describe the last hop."""

    __slots__ = ("cert_not_after", "conn_start", "dns_end", "dns_start", "headers", "sent", "start", "tcp_done", "tls_done", "tls_version")

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.dns_start: float | None = None
        self.dns_end: float | None = None
        self.conn_start: float | None = None
        self.tcp_done: float | None = None
        self.tls_done: float | None = None
        self.sent: float | None = None
        self.headers: float | None = None
        self.cert_not_after: float | None = None
        self.tls_version: str | None = None  # of the connection the last response came on

    def new_hop(self) -> None:
        """Forget the previous hop's connection marks (a redirect is being followed)."""
        self.dns_start = self.dns_end = self.conn_start = self.tcp_done = self.tls_done = None

    def phases(self) -> Phases:
        """The marks as phase durations."""
        return Phases(
            dns_ms=_ms(self.dns_start, self.dns_end),
            connect_ms=_ms(self.conn_start, self.tcp_done),
            tls_ms=_ms(self.tcp_done, self.tls_done),
            first_byte_ms=_ms(self.start, self.headers),
        )

    @property
    def request_sent(self) -> bool:
        """Whether request headers left this machine (so the server may have acted on them)."""
        return self.sent is not None


def _ms(a: float | None, b: float | None) -> float | None:
    return round((b - a) * 1000, 3) if a is not None and b is not None else None
