"""Where a URL points and how to reach it: name resolution, TCP, TLS, each marked on a PhaseClock."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from pulse_agent.probe.phases import PhaseClock, peer_cert_not_after
from pulse_agent.probe.wire import Connection, basic_credentials, fail

KEEPALIVE = 90.0  # seconds an idle kept-alive connection is trusted


@dataclass(frozen=True, slots=True)
class Target:
    """The parts of a URL a request needs."""

    tls: bool
    host: str  # for DNS and TLS server name (IDNA-encoded)
    port: int
    host_header: str
    path: str  # request target: path and query
    ip: bool  # host is an IP address: nothing to resolve
    authorization: str | None  # from user:password in the URL

    @property
    def origin(self) -> tuple[bool, str, int]:
        """Scheme, host and port: what a redirect must keep for credentials to follow it."""
        return (self.tls, self.host, self.port)


@lru_cache(maxsize=65536)
def target_of(url: str) -> Target:
    """Parse an http(s) URL (ProbeFailure 'connect' when it cannot be requested)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise fail("connect", f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise fail("connect", "invalid URL: only http:// and https:// URLs with a host can be checked")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
        ip = True
    except ValueError:
        ip = False
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    tls = scheme == "https"
    default = 443 if tls else 80
    shown = f"[{host}]" if ":" in host else host
    authorization = None
    if parts.username is not None:
        authorization = basic_credentials(unquote(parts.username), unquote(parts.password or ""))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        tls=tls,
        host=host,
        port=port or default,
        host_header=shown if port in (None, default) else f"{shown}:{port}",
        path=path.replace(" ", "%20"),
        ip=ip,
        authorization=authorization,
    )


def forget_targets() -> None:
    """Drop every parsed URL: called when checks change, so no removed or edited check's
    credentials (user info, query values) stay in memory; running checks parse theirs again once."""
    target_of.cache_clear()


Allow = Callable[[Target, Sequence[str]], bool]  # may a connection to this target at these addresses be made?


async def open_connection(target: Target, context: ssl.SSLContext | None, clock: PhaseClock, allow: Allow | None = None) -> Connection:
    """A new connection to target (TLS when context is given), phases marked; ProbeFailure otherwise.
    `allow` judges the addresses about to be connected to (so a name cannot resolve elsewhere later)."""
    loop = asyncio.get_running_loop()
    addresses = [target.host] if target.ip else await _resolve(loop, target, clock)
    if allow is not None and not allow(target, addresses):
        raise fail("connect", f"{target.host}:{target.port} ({', '.join(addresses)}) is not an allowed target")
    clock.conn_start = time.perf_counter()
    error: OSError | None = None
    for address in addresses:  # in the resolver's order, like a browser without happy eyeballs
        try:
            _, connection = await loop.create_connection(Connection, address, target.port)
            break
        except OSError as exc:
            error = exc
    else:
        reason = (error.strerror or str(error)) if error else "no address"
        raise fail("connect", f"cannot connect to {target.host}:{target.port}: {reason}")
    clock.tcp_done = time.perf_counter()
    if context is not None:
        await _start_tls(loop, connection, target, context)
        clock.tls_done = time.perf_counter()
        clock.cert_not_after = peer_cert_not_after(connection.transport)
    return connection


async def _resolve(loop: asyncio.AbstractEventLoop, target: Target, clock: PhaseClock) -> list[str]:
    """The target's addresses, resolved now (every run, so a DNS outage shows as one)."""
    clock.dns_start = time.perf_counter()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: a label the IDNA codec refuses
        raise fail("dns", f"cannot resolve {target.host}: {getattr(exc, 'strerror', None) or exc}") from None
    clock.dns_end = time.perf_counter()
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _start_tls(loop: asyncio.AbstractEventLoop, connection: Connection, target: Target, context: ssl.SSLContext) -> None:
    assert connection.transport is not None
    try:
        transport = await loop.start_tls(connection.transport, connection, context, server_hostname=target.host)
    except ssl.SSLCertVerificationError as exc:
        connection.close()
        raise fail("tls", f"certificate not trusted: {exc.verify_message or exc.reason}") from None
    except (ssl.SSLError, OSError) as exc:
        connection.close()
        raise fail("tls", f"TLS failed: {getattr(exc, 'reason', None) or exc.strerror or exc}") from None
    connection.transport = transport  # type: ignore[assignment]


class Pool:
    """Idle kept-alive connections by origin and TLS settings, for checks that reuse connections."""

    def __init__(self) -> None:
        self._idle: dict[tuple[object, ...], list[tuple[float, Connection]]] = {}

    def take(self, key: tuple[object, ...]) -> Connection | None:
        """An idle connection still open and not idle too long, if there is one."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            since, connection = idle.pop()
            if not connection.closed and now - since < KEEPALIVE:
                return connection
            connection.close()
        return None

    def give(self, key: tuple[object, ...], connection: Connection) -> None:
        """Keep connection for the next run with the same key."""
        self._idle.setdefault(key, []).append((time.monotonic(), connection))

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for _, connection in idle:
                connection.close()
        self._idle.clear()
