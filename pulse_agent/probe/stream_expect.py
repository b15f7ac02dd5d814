"""Pure: the facts of one tcp:// or tls:// attempt -> the expectations it failed (receive, response time,
certificate validity, TLS version)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulse_agent.config.model import CheckSpec
from pulse_agent.durations import format_duration
from pulse_agent.probe.expect import certificate_failures, response_time_failures
from pulse_agent.probe.phases import Phases
from pulse_agent.probe.received import holds, masked, show_bytes, show_expected
from pulse_agent.probe.stream import RECEIVE_LIMIT
from pulse_agent.result import Failure
from pulse_agent.sizes import format_size


@dataclass(frozen=True, slots=True)
class Session:
    """What one attempt found, or why it stopped early (failure)."""

    failure: Failure | None  # connect, STARTTLS, handshake or send failed; None: judge the rest
    elapsed: float  # seconds, attempt start to the last byte read (or the failure)
    phases: Phases
    receiving: bool = False  # the timeout struck while reading for expect.receive
    received: bytes = b""
    lost: str | None = None  # how the server ended the connection, when it did: "closed", "reset (...)"
    cert_not_after: float | None = None
    tls_version: str | None = None
    details: dict[str, Any] | None = None


def judge(spec: CheckSpec, session: Session, now: float) -> tuple[list[Failure], bool]:
    """Every failed expectation of spec, and whether the attempt was slow enough to be degraded."""
    if session.failure is not None:
        return [session.failure], False
    expect = spec.expect
    failures = []
    if expect.receive is not None and not holds(expect.receive, session.received):
        failures.append(_receive_failure(spec, session))
    latency, degraded = response_time_failures(expect, session.elapsed)
    failures.extend(latency)
    failures.extend(certificate_failures(expect.certificate_valid_for, session.cert_not_after, now))
    if expect.tls_version is not None and session.tls_version != expect.tls_version:
        failures.append(Failure("version", f"expected TLS {expect.tls_version}, got TLS {session.tls_version}"))
    return failures, degraded


def _receive_failure(spec: CheckSpec, session: Session) -> Failure:
    """What was expected and what came, and why reading stopped (the timeout, the server, the size limit)."""
    expected = show_expected(spec.expect.receive or "")
    data = masked(session.received, spec.send_hidden)
    if session.receiving:
        within = format_duration(spec.timeout)
        if not data:
            return Failure("timeout", f"nothing received within {within}; expected {expected}")
        return Failure("receive", f"expected {expected} within {within}, got {show_bytes(data)}")
    if session.lost is not None:
        if not data:
            return Failure("reset", f"the server {session.lost} the connection without sending anything; expected {expected}")
        return Failure("receive", f"expected {expected}, got {show_bytes(data)} and then the server {session.lost} the connection")
    return Failure("receive", f"expected {expected} in the first {format_size(RECEIVE_LIMIT)}, got {show_bytes(data)}")
