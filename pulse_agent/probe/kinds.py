"""The probes by check kind: one shape (spec, due -> Result), one module per protocol. A new kind of check
is a new probe module, an entry in PROBES, a CheckKind value and a schema branch; schedulers and
executors only ever call `Probes.run`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pulse_agent.clock import Clock, SystemClock
from pulse_agent.config.model import CheckKind, CheckSpec
from pulse_agent.probe.connect import forget_targets
from pulse_agent.probe.http import Prober
from pulse_agent.result import Result


class Probe(Protocol):
    """Runs checks of one kind; owns whatever connections it keeps."""

    async def run(self, spec: CheckSpec, scheduled_ts: float | None = None) -> Result:
        """One run of spec (retries included) and its verdict."""
        ...

    async def close(self) -> None:
        """Release what it keeps between runs."""
        ...

    def forget(self) -> None:
        """Checks changed: drop what it keeps that may hold an old check's secrets (clients made with a proxy's credentials)."""
        ...


def _tcp(clock: Clock) -> Probe:
    from pulse_agent.probe.tcp import TcpProbe

    return TcpProbe(clock=clock)


def _dns(clock: Clock) -> Probe:
    from pulse_agent.probe.dns import DnsProbe  # dnspython is imported by agents with dns:// checks only

    return DnsProbe(clock=clock)


def _icmp(clock: Clock) -> Probe:
    from pulse_agent.probe.icmp import IcmpProbe  # icmplib likewise

    return IcmpProbe(clock=clock)


PROBES: dict[CheckKind, Callable[[Clock], Probe]] = {
    "http": lambda clock: Prober(clock=clock),
    "tcp": _tcp,
    "tls": _tcp,  # a tcp check with a handshake
    "dns": _dns,
    "icmp": _icmp,
}


class Probes:
    """One probe per kind, made at its first check, for a scheduler to run any check with."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._made: dict[CheckKind, Probe] = {}

    async def run(self, spec: CheckSpec, scheduled_ts: float | None = None) -> Result:
        """Run spec with the probe of its kind."""
        probe = self._made.get(spec.kind)
        if probe is None:
            probe = self._made[spec.kind] = PROBES[spec.kind](self._clock)
        return await probe.run(spec, scheduled_ts)

    async def close(self) -> None:
        """Close every probe made."""
        for probe in self._made.values():
            await probe.close()

    def forget(self) -> None:
        """Checks were removed or edited: no parsed URL or kept client may outlive the credentials it was made with."""
        forget_targets()
        for probe in self._made.values():
            probe.forget()
