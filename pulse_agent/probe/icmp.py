"""The ICMP probe: `count` echo requests `interval` apart to an icmp:// host, replies collected until all are in or
the check's timeout ends the run, through icmplib's sockets (raw as root, else Linux's unprivileged ping sockets)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from icmplib import AsyncSocket, ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPLibError, SocketPermissionError

from pulse_agent.clock import sleep_until
from pulse_agent.config.icmp import IcmpCheck
from pulse_agent.config.model import CheckSpec, Expect
from pulse_agent.durations import format_duration
from pulse_agent.probe.attempts import AttemptingProbe, Outcome, attempt_within, run_attempts
from pulse_agent.probe.connect import first_address
from pulse_agent.probe.expect import response_time_failures
from pulse_agent.probe.wire import fail
from pulse_agent.result import Failure, Result

ECHO_REPLY = {4: 0, 6: 129}
ERROR_TYPES = {4: {3: "destination unreachable", 11: "time exceeded"}, 6: {1: "destination unreachable", 3: "time exceeded"}}
GRACE = 1.0  # the attempt's safety net beyond the timeout, at which the ping has already ended itself
PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


@dataclass(slots=True)
class Echoes:
    """What one run sent and got back: send times and round trips by sequence number, ICMP errors and send errors."""

    sent: dict[int, float] = field(default_factory=dict)
    rtts: dict[int, float] = field(default_factory=dict)  # milliseconds
    errors: list[str] = field(default_factory=list)


def summary(echoes: Echoes, address: str, privileged: bool) -> dict[str, Any]:
    """The result's details JSON (docs/probes.md, ICMP checks)."""
    sent, rtts = len(echoes.sent), list(echoes.rtts.values())
    return {
        "address": address, "sent": sent, "received": len(rtts),
        "packet_loss": round(100.0 * (sent - len(rtts)) / sent, 3) if sent else 100.0,
        "rtt_min_ms": round(min(rtts), 3) if rtts else None, "rtt_avg_ms": round(sum(rtts) / len(rtts), 3) if rtts else None,
        "rtt_max_ms": round(max(rtts), 3) if rtts else None, "privileged": privileged, "errors": echoes.errors[:5],
    }  # fmt: skip


def judge(expect: Expect, check: IcmpCheck, facts: dict[str, Any], timeout: float) -> tuple[list[Failure], bool]:
    """Failures of one ping run: no reply at all, more loss than allowed, a slow average; and whether it is degraded."""
    address, sent, received, loss = facts["address"], facts["sent"], facts["received"], facts["packet_loss"]
    if received == 0:
        if facts["errors"]:
            return [Failure("connect", f"no echo reply from {address}: {facts['errors'][0]}")], False
        requests = "1 request" if sent == 1 else f"{sent} requests"
        return [Failure("timeout", f"no echo reply from {address} to {requests} within {format_duration(timeout)}")], False
    failures = []
    allowed = check.max_packet_loss
    if allowed is not None and loss > allowed:
        failures.append(Failure("packet_loss", f"{loss:g}% packet loss ({received} of {sent} replies) over max_packet_loss {allowed:g}%"))
    latency, degraded = response_time_failures(expect, facts["rtt_avg_ms"] / 1000, "average round-trip time")
    return failures + latency, degraded


def no_sockets_reason() -> str:
    """Why this process can open neither kind of ICMP socket, naming what would let it."""
    try:
        groups = "which is " + " ".join(PING_GROUP_RANGE.read_text().split())
    except OSError:
        groups = "which cannot be read here"
    return (
        "cannot send ICMP echo requests: raw sockets need root or CAP_NET_RAW, and unprivileged ping sockets need "
        f"this process's group (gid {os.getgid()}) in sysctl net.ipv4.ping_group_range, {groups}"
    )


def open_socket(family: int) -> tuple[ICMPv4Socket | ICMPv6Socket, bool]:
    """An ICMP socket of family (4 or 6), raw if allowed, else a ping socket; and whether it is raw (privileged)."""
    kind = ICMPv6Socket if family == 6 else ICMPv4Socket
    for privileged in (True, False):
        try:
            return kind(None, privileged), privileged
        except SocketPermissionError:
            continue
        except ICMPLibError as exc:
            raise fail("connect", f"cannot open an ICMPv{family} socket: {exc}") from None
    raise fail("connect", no_sockets_reason())


def socket_problem(url: str) -> str | None:
    """Why an icmp:// check of url could not run in this process (no ICMP socket of its family), or None."""
    try:
        family = 6 if isinstance(ipaddress.ip_address(urlsplit(url).hostname or ""), ipaddress.IPv6Address) else 4
    except ValueError:
        family = 4  # a name: most resolve to IPv4 first
    try:
        sock, _ = open_socket(family)
    except Exception as exc:
        return str(exc)
    sock.close()
    return None


class IcmpProbe(AttemptingProbe):
    """Runs icmp:// checks: a new socket and identifier per attempt, nothing kept between runs."""

    kind = "icmp"

    async def run(self, spec: CheckSpec, scheduled_ts: float | None = None) -> Result:
        """Ping spec's host, retrying as its retries allow, and judge the last attempt."""

        def attempt() -> Any:  # the ping ends itself at the timeout; GRACE only guards against a hang
            return attempt_within(spec, lambda: self._ping(spec), "echo reply", grace=GRACE)

        return await run_attempts(spec, self._clock, self._jitter, attempt, scheduled_ts)

    async def _ping(self, spec: CheckSpec) -> Outcome:
        check = spec.icmp
        if check is None:
            raise fail("internal", "an icmp:// check without its settings (the config builder makes them)")
        started = self._clock.time()
        host = urlsplit(spec.url).hostname or ""
        address, dns_ms = await first_address(host, 0)
        family = 6 if ":" in address else 4
        sock, privileged = open_socket(family)
        echoes = Echoes()
        with AsyncSocket(sock) as channel:
            # Random, not icmplib's PID-based counter: probe workers have neighbouring PIDs, and a raw
            # socket sees every echo reply of the host, told apart by identifier and sequence only.
            ident = secrets.randbelow(1 << 16)
            receiving = asyncio.create_task(_receive(channel, family, privileged, ident, echoes, check.count))
            expired = asyncio.get_running_loop().create_future()

            def expire() -> None:
                if not expired.done():
                    expired.set_result(None)

            timer = self._clock.call_at(started + spec.timeout, expire)
            try:
                for sequence in range(check.count):
                    if sequence:
                        await sleep_until(self._clock, started + sequence * check.interval)
                    request = ICMPRequest(address, ident, sequence, payload_size=check.size)
                    try:
                        channel.send(request)
                    except ICMPLibError as exc:
                        echoes.errors.append(f"cannot send to {address}: {exc}")
                        echoes.sent[sequence] = time.time()
                        continue
                    echoes.sent[sequence] = request.time
                await asyncio.wait({receiving, expired}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
                receiving.cancel()
                await asyncio.gather(receiving, return_exceptions=True)  # it must stop reading before the socket closes
        facts = summary(echoes, address, privileged)
        failures, degraded = judge(spec.expect, check, facts, spec.timeout)
        return Outcome(tuple(failures), degraded, facts["rtt_avg_ms"], dns_ms, facts)


async def _receive(channel: AsyncSocket, family: int, privileged: bool, ident: int, echoes: Echoes, count: int) -> None:
    """Record replies to this run's requests until all `count` are in (cancelled at the deadline)."""
    while len(echoes.rtts) < count:
        try:
            reply = await channel.receive(None, 3600.0)
        except ICMPLibError:
            return  # the socket failed; what came so far is the run's
        # A raw socket sees every ICMP packet of the host (our own requests too, on loopback): keep ours only.
        # A ping socket sees only its own, under an identifier the kernel chose.
        if (privileged and reply.id != ident) or reply.sequence not in echoes.sent or reply.sequence in echoes.rtts:
            continue
        if reply.type == ECHO_REPLY[family]:
            echoes.rtts[reply.sequence] = (reply.time - echoes.sent[reply.sequence]) * 1000
        elif (error := ERROR_TYPES[family].get(reply.type)) is not None:
            echoes.errors.append(f"{error} (ICMP type {reply.type} code {reply.code})")
