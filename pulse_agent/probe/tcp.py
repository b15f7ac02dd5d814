"""The tcp:// and tls:// probe: connect (resolution, Happy Eyeballs and per-address deadlines as for HTTP),
for tls:// optionally STARTTLS and then the handshake, optionally `send`, and read until `expect.receive`
holds, the server closes, 64 KiB or the timeout; then judge. A tls:// check is a tcp:// check with a
handshake, so one probe serves both kinds.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pulse_agent.clock import Clock
from pulse_agent.config.model import CheckSpec
from pulse_agent.durations import format_duration
from pulse_agent.probe.attempts import AttemptingProbe, Outcome, run_attempts
from pulse_agent.probe.connect import Resolver, open_connection, target_of, upgrade
from pulse_agent.probe.phases import PhaseClock, Phases
from pulse_agent.probe.received import holds, masked, show_bytes
from pulse_agent.probe.starttls import starttls
from pulse_agent.probe.stream import RECEIVE_LIMIT, Stream
from pulse_agent.probe.stream_expect import Session, judge
from pulse_agent.probe.target import Target
from pulse_agent.probe.tlsconf import Contexts
from pulse_agent.probe.wire import ProbeFailure
from pulse_agent.result import Failure, Result

Stage = Literal["connect", "starttls", "tls", "send", "receive", "done"]

log = logging.getLogger("pulse_agent.probe")


@lru_cache(maxsize=4096)
def endpoint_of(url: str) -> Target:
    """host and port of a tcp:// or tls:// URL, parsed as an http URL's would be (IDNA, IPv6 brackets);
    ProbeFailure 'connect' when it cannot be."""
    return target_of("http://" + url.split("://", 1)[1])


@dataclass(slots=True)
class _Progress:
    """How far one attempt got: what a timeout or a failure is reported against."""

    stage: Stage = "connect"
    stream: Stream | None = None
    tls_start: float | None = None
    starttls_ms: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)


class TcpProbe(AttemptingProbe):
    """Runs tcp:// and tls:// checks, a fresh connection per attempt. Result times and retry waits follow
    `clock`; `jitter` draws from [0, 1); `resolve` replaces the system resolver (tests)."""

    def __init__(self, *, clock: Clock | None = None, jitter: Callable[[], float] | None = None, resolve: Resolver | None = None) -> None:
        super().__init__(clock=clock, jitter=jitter)
        self._resolve = resolve
        self._ssl = Contexts()

    async def run(self, spec: CheckSpec, scheduled_ts: float | None = None) -> Result:
        """Run spec once, retrying a failed attempt as its retries allow, and judge the last attempt."""
        return await run_attempts(spec, self._clock, self._jitter, lambda: self._judged(spec), scheduled_ts)

    async def _judged(self, spec: CheckSpec) -> Outcome:
        """One attempt and its verdict."""
        session = await self._attempt(spec)
        failures, degraded = judge(spec, session, self._clock.time())
        phases = session.phases
        return Outcome(
            failures=tuple(failures),
            degraded=degraded,
            response_time_ms=round(session.elapsed * 1000, 3) if session.failure is None else None,
            dns_ms=phases.dns_ms,
            details=session.details or None,
            connect_ms=phases.connect_ms,
            tls_ms=phases.tls_ms,
            first_byte_ms=phases.first_byte_ms,
            cert_expires=session.cert_not_after,
            tls_version=session.tls_version,
        )

    async def _attempt(self, spec: CheckSpec) -> Session:
        """One connection: every step within the check's timeout; what it found, or why it stopped."""
        progress = _Progress()
        try:  # the context first: loading CAs takes a while the first time, and it is no time the server took
            context = self._ssl.get(spec) if spec.kind == "tls" else None
            failure: Failure | None = None
        except ProbeFailure as exc:
            context, failure = None, exc.failure
        clock = PhaseClock()
        try:
            if failure is None:
                async with asyncio.timeout(spec.timeout):
                    await self._exchange(spec, context, clock, progress)
        except ProbeFailure as exc:
            failure = exc.failure
        except TimeoutError:
            failure = _timed_out(spec, clock, progress)
        except Exception as exc:  # a bug of ours must fail this run only, never the agent
            log.exception("probe of %s failed unexpectedly", spec.name)
            failure = Failure("internal", f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if progress.stream is not None:
                progress.stream.close()
        return _session(spec, clock, progress, failure)

    async def _exchange(self, spec: CheckSpec, context: ssl.SSLContext | None, clock: PhaseClock, progress: _Progress) -> None:
        """Connect, upgrade (when given a context), send and read as spec says, noting progress as it goes."""
        target = endpoint_of(spec.url)
        server_name = spec.tls.server_name or target.host
        direct = context if spec.starttls is None else None  # else TLS comes after the STARTTLS dialogue
        connection = await open_connection(target, direct, clock, server_name, self._resolve, factory=Stream)
        assert isinstance(connection, Stream)
        progress.stream = connection
        progress.facts["address"] = _peer(connection)
        if context is not None and spec.starttls is not None:
            progress.stage = "starttls"
            begun = time.perf_counter()
            await starttls(spec.starttls, connection)
            progress.starttls_ms = round((time.perf_counter() - begun) * 1000, 3)
            progress.stage = "tls"
            progress.tls_start = time.perf_counter()
            await upgrade(connection, context, clock, server_name)
        if context is not None:
            progress.facts["cipher"] = _cipher(connection)
        if spec.send is not None:
            progress.stage = "send"
            connection.write(spec.send)
        if spec.expect.receive is not None:
            progress.stage = "receive"
            expected = spec.expect.receive
            await connection.read_until(lambda data: holds(expected, data))
        progress.stage = "done"


def _session(spec: CheckSpec, clock: PhaseClock, progress: _Progress, failure: Failure | None) -> Session:
    """The facts of one attempt for judging."""
    stream = progress.stream
    phases = clock.phases()
    tls_start = progress.tls_start if progress.tls_start is not None else clock.tcp_done
    reading = spec.expect.receive is not None and progress.stage in ("receive", "done")
    details = dict(progress.facts)
    if spec.starttls is not None:
        details.update(starttls=spec.starttls, starttls_ms=progress.starttls_ms)
    received = bytes(stream.data[:RECEIVE_LIMIT]) if stream is not None and reading else b""  # a last chunk may pass the limit
    if reading:
        details.update(received=show_bytes(masked(received, spec.send_hidden), quote=False), received_bytes=len(received))
    return Session(
        failure=failure,
        elapsed=time.perf_counter() - clock.start,
        phases=Phases(
            dns_ms=phases.dns_ms,
            connect_ms=phases.connect_ms,
            tls_ms=_ms(tls_start, clock.tls_done),
            first_byte_ms=_ms(clock.start, stream.first_at) if stream is not None and reading else None,
        ),
        receiving=progress.stage == "receive",
        received=received,
        lost=_lost(stream) if stream is not None else None,
        cert_not_after=stream.cert_not_after if stream is not None else None,
        tls_version=stream.tls_version if stream is not None else None,
        details=details,
    )


def _lost(stream: Stream) -> str | None:
    """How the server ended the connection: "closed", "reset (why)", or None while it was open."""
    if not stream.eof:
        return None
    if isinstance(stream.error, OSError):
        return f"reset ({stream.error.strerror or stream.error})"
    return "closed"


def _timed_out(spec: CheckSpec, clock: PhaseClock, progress: _Progress) -> Failure | None:
    """Why an attempt that ran out of time failed; None while receiving (judged on what came)."""
    within = format_duration(spec.timeout)
    if progress.stage == "receive":
        return None
    if progress.stage == "starttls":
        return Failure("timeout", f"no complete {(spec.starttls or '').upper()} STARTTLS exchange within {within}")
    if progress.stage == "tls" or (progress.stage == "connect" and clock.tcp_done is not None):
        return Failure("timeout", f"TLS handshake not complete within {within}")
    return Failure("timeout", f"no connection within {within}")


def _peer(stream: Stream) -> str | None:
    peer = stream.transport.get_extra_info("peername") if stream.transport is not None else None
    return str(peer[0]) if peer else None


def _cipher(stream: Stream) -> str | None:
    cipher = stream.transport.get_extra_info("cipher") if stream.transport is not None else None
    return str(cipher[0]) if cipher else None


def _ms(a: float | None, b: float | None) -> float | None:
    return round((b - a) * 1000, 3) if a is not None and b is not None else None
