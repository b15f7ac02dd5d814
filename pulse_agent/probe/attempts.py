"""Runs of the probes that make one exchange per attempt (TCP, TLS, DNS, ICMP): attempts with retries and
backoff on the injected clock, and the Result of the last attempt. HTTP has its own loop (delivery, redirects)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pulse_agent.clock import Clock, SystemClock, sleep_until
from pulse_agent.config.model import CheckSpec
from pulse_agent.durations import format_duration
from pulse_agent.probe.retry import JITTER, backoff
from pulse_agent.probe.wire import ProbeFailure
from pulse_agent.result import Failure, Result

log = logging.getLogger("pulse_agent.probe")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt: the expectations it failed (none: ok), its timings and kind-specific facts."""

    failures: tuple[Failure, ...] = ()
    degraded: bool = False
    response_time_ms: float | None = None
    dns_ms: float | None = None
    details: dict[str, Any] | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    cert_expires: float | None = None
    tls_version: str | None = None


class AttemptingProbe:
    """What the probes of one exchange per attempt share: the clock and jitter their retries wait on,
    and nothing kept between runs that a check's secrets could reach."""

    def __init__(self, *, clock: Clock | None = None, jitter: Callable[[], float] | None = None) -> None:
        self._clock = clock or SystemClock()
        self._jitter = jitter or random.Random().random

    async def close(self) -> None:
        """Nothing is kept between runs."""

    def forget(self) -> None:
        """Nothing is kept that a check's secrets reach."""


async def attempt_within(spec: CheckSpec, exchange: Callable[[], Awaitable[Outcome]], waiting_for: str, grace: float = 0.0) -> Outcome:
    """exchange() within the check's timeout (plus grace); a ProbeFailure, the timeout or a bug of ours becomes a failed Outcome."""
    try:
        async with asyncio.timeout(spec.timeout + grace):
            return await exchange()
    except ProbeFailure as exc:
        return Outcome((exc.failure,))
    except TimeoutError:
        return Outcome((Failure("timeout", f"no {waiting_for} within {format_duration(spec.timeout)}"),))
    except Exception as exc:  # a bug of ours must fail this run only, never the agent
        log.exception("probe of %s failed unexpectedly", spec.name)
        return Outcome((Failure("internal", f"internal error: {type(exc).__name__}: {exc}"),))


async def run_attempts(
    spec: CheckSpec, clock: Clock, jitter: Callable[[], float], attempt: Callable[[], Awaitable[Outcome]], scheduled_ts: float | None
) -> Result:
    """Attempts until one passes or the check's retries are spent (a query or ping is safe to repeat), as a Result."""
    started = clock.time()
    attempts = max(1, spec.retries.attempts)
    for number in range(1, attempts + 1):
        outcome = await attempt()
        if not outcome.failures or number == attempts:
            break
        await sleep_until(clock, clock.time() + backoff(spec, number) * (1 + JITTER * jitter()))
    failures = outcome.failures
    return Result(
        check=spec.name,
        ts=started,
        ok=not failures,
        degraded=outcome.degraded and not failures,
        response_time_ms=outcome.response_time_ms,
        error_kind=failures[0].kind if failures else None,
        error="; ".join(f.message for f in failures) if failures else None,
        attempts=number,
        scheduled_ts=scheduled_ts,
        dns_ms=outcome.dns_ms,
        connect_ms=outcome.connect_ms,
        tls_ms=outcome.tls_ms,
        first_byte_ms=outcome.first_byte_ms,
        cert_expires=outcome.cert_expires,
        tls_version=outcome.tls_version,
        details=outcome.details,
    )
