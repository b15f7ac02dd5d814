"""Where a URL points and how to reach it: name resolution, TCP, TLS, each marked on a PhaseClock."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from itertools import zip_longest
from urllib.parse import unquote, urlsplit

from pulse_agent.probe.cert import peer_cert_not_after
from pulse_agent.probe.phases import PhaseClock
from pulse_agent.probe.syntax import encode_target
from pulse_agent.probe.target import Target
from pulse_agent.probe.tlsconf import version_name
from pulse_agent.probe.wire import Connection, basic_credentials, fail

# An idle kept-alive connection is trusted for the server's Keep-Alive timeout less a margin (its close may
# be on the way), or, when the server says nothing, for less than the 5 s after which Apache, nginx-ingress
# defaults, Node and uvicorn close idle connections.
KEEPALIVE_MARGIN = 1.0
KEEPALIVE_DEFAULT = 4.0
ATTEMPT_DELAY = 0.25  # RFC 8305 "Connection Attempt Delay": the next address is tried after this long

Resolver = Callable[[str, int], Awaitable[list[str]]]  # host, port -> addresses in the order to try


# scheme://netloc, then the path, query and fragment: a URL urlsplit reads the same whole or cut after its netloc
# (printable ASCII netloc, no tab or line break, which urlsplit would drop). Anything else is parsed whole.
_PLAIN = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[!\"$-.0-9:->@-~]*)((?:[/?#][^\t\r\n]*)?)")


def target_of(url: str) -> Target:
    """Parse an http(s) URL (ProbeFailure 'connect' when it cannot be requested)."""
    plain = _PLAIN.fullmatch(url)
    if plain is None:
        return _parse(url)
    # Only the origin is cached: a target per checked URL was a worker's largest structure, and most URLs
    # share a few origins; the path and query are cut out per run.
    origin = _origin_of(plain[1])
    rest = plain[2].split("#", 1)[0]
    if rest in ("", "/"):
        return origin
    path, mark, query = rest.partition("?")
    return Target(
        tls=origin.tls,
        host=origin.host,
        port=origin.port,
        host_header=origin.host_header,
        path=encode_target((path or "/") + (f"?{query}" if mark and query else "")),
        ip=origin.ip,
        authorization=origin.authorization,
    )


@lru_cache(maxsize=65536)
def _origin_of(scheme_netloc: str) -> Target:
    """The parse of a URL with nothing after its netloc (its path '/')."""
    return _parse(scheme_netloc)


def _parse(url: str) -> Target:
    """Parse an http(s) URL whole."""
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
        try:
            host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError as exc:  # as getaddrinfo fails for an ASCII label it refuses
            raise fail("dns", f"cannot resolve {host}: {exc}") from None
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
        path=encode_target(path),
        ip=ip,
        authorization=authorization,
    )


def forget_targets() -> None:
    """Drop every parsed URL: called when checks change, so no removed or edited check's
    credentials (user info, query values) stay in memory; running checks parse theirs again once."""
    _origin_of.cache_clear()


Allow = Callable[[Target, Sequence[str]], bool]  # may a connection to this target at these addresses be made?


async def open_connection(
    target: Target,
    context: ssl.SSLContext | None,
    clock: PhaseClock,
    server_name: str,
    resolve: Resolver | None = None,
    allow: Allow | None = None,
    factory: Callable[[], Connection] = Connection,
) -> Connection:
    """A new connection to target (TLS for server_name when context is given), phases marked; ProbeFailure otherwise.
    `allow` judges the addresses about to be connected to (so a name cannot resolve elsewhere later);
    `factory` makes the protocol that reads it (an HTTP response reader unless told)."""
    loop = asyncio.get_running_loop()
    if target.ip:
        addresses = [target.host]
    else:
        clock.dns_start = time.perf_counter()
        addresses = await (resolve or _resolve)(target.host, target.port)
        clock.dns_end = time.perf_counter()
    if allow is not None and not allow(target, addresses):
        raise fail("connect", f"{target.host}:{target.port} ({', '.join(addresses)}) is not an allowed target")
    clock.conn_start = time.perf_counter()
    if len(addresses) == 1:  # nearly every check: no race to run
        try:
            _, connection = await loop.create_connection(factory, addresses[0], target.port)
        except OSError as exc:
            raise _cannot_connect(target, [exc]) from None
    else:
        connection = await _happy_eyeballs(loop, addresses, target, factory)
    clock.tcp_done = time.perf_counter()
    if context is not None:
        await upgrade(connection, context, clock, server_name)
    return connection


async def upgrade(connection: Connection, context: ssl.SSLContext, clock: PhaseClock, server_name: str) -> None:
    """TLS on an open connection (just made, or after STARTTLS): its end marked, the peer certificate's expiry
    and the negotiated version noted on the connection; ProbeFailure 'tls' otherwise."""
    await _start_tls(asyncio.get_running_loop(), connection, server_name, context)
    clock.tls_done = time.perf_counter()
    connection.cert_not_after = peer_cert_not_after(connection.transport)
    transport = connection.transport
    connection.tls_version = version_name(transport.get_extra_info("ssl_object")) if transport is not None else None


async def _resolve(host: str, port: int) -> list[str]:
    """The host's addresses, resolved now (every run, so a DNS outage shows as one)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: a label the IDNA codec refuses
        raise fail("dns", f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def first_address(host: str, port: int) -> tuple[str, float | None]:
    """An IP literal as it is, else host's first address resolved now, and how long resolving took (ms)."""
    try:
        ipaddress.ip_address(host)
        return host, None
    except ValueError:
        resolving = time.perf_counter()
        address = (await _resolve(host, port))[0]
        return address, round((time.perf_counter() - resolving) * 1000, 3)


def interleave(addresses: list[str]) -> list[str]:
    """Addresses in the order RFC 8305 tries them: the resolver's first family first, then alternating families."""
    v6 = [a for a in addresses if ":" in a]
    v4 = [a for a in addresses if ":" not in a]
    if not v6 or not v4:
        return addresses
    first, second = (v6, v4) if ":" in addresses[0] else (v4, v6)
    return [a for pair in zip_longest(first, second) for a in pair if a is not None]


async def _happy_eyeballs(
    loop: asyncio.AbstractEventLoop, addresses: list[str], target: Target, factory: Callable[[], Connection] = Connection
) -> Connection:
    """A TCP connection to the first of several addresses that answers (RFC 8305): a new attempt every
    ATTEMPT_DELAY, or as soon as one fails; the losers are closed."""
    waiting = interleave(addresses)
    attempts: set[asyncio.Task[tuple[asyncio.BaseTransport, Connection]]] = set()
    errors: list[OSError] = []
    try:
        while waiting or attempts:
            if waiting:  # a new attempt when the delay passed or an attempt failed
                attempts.add(loop.create_task(loop.create_connection(factory, waiting.pop(0), target.port)))
            done, attempts = await asyncio.wait(attempts, timeout=ATTEMPT_DELAY if waiting else None, return_when=asyncio.FIRST_COMPLETED)
            winner = _first_connected(done, errors)
            if winner is not None:
                return winner
    finally:
        for attempt in attempts:  # the losers (or all of them, when the run's timeout struck)
            if not attempt.done():
                attempt.cancel()
            elif not attempt.cancelled() and attempt.exception() is None:
                attempt.result()[1].close()
    raise _cannot_connect(target, errors)


def _first_connected(done: set[asyncio.Task[tuple[asyncio.BaseTransport, Connection]]], errors: list[OSError]) -> Connection | None:
    """The connection of the first finished attempt that connected (closing any other); errors collected."""
    winner = None
    for attempt in done:
        exc = attempt.exception()
        if exc is not None:
            if not isinstance(exc, OSError):
                raise exc
            errors.append(exc)
        elif winner is None:
            winner = attempt.result()[1]
        else:
            attempt.result()[1].close()
    return winner


def _cannot_connect(target: Target, errors: list[OSError]) -> Exception:
    last = errors[-1] if errors else None
    reason = "no address" if last is None else os.strerror(last.errno) if last.errno else (last.strerror or str(last))
    return fail("connect", f"cannot connect to {target.host}:{target.port}: {reason}")


async def _start_tls(loop: asyncio.AbstractEventLoop, connection: Connection, server_name: str, context: ssl.SSLContext) -> None:
    assert connection.transport is not None
    try:
        transport = await loop.start_tls(connection.transport, connection, context, server_hostname=server_name)
    except ssl.SSLCertVerificationError as exc:
        connection.close()
        raise fail("tls", f"certificate not trusted: {exc.verify_message or exc.reason}") from None
    except (ssl.SSLError, OSError) as exc:
        connection.close()
        # A server refusing the handshake (no common version, a client certificate it wants) often just
        # closes: asyncio then raises a ConnectionResetError without a message.
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc) or "the server closed the connection during the handshake"
        raise fail("tls", f"TLS failed: {reason}") from None
    connection.transport = transport  # type: ignore[assignment]


def keep_alive_for(header: str | None) -> float:
    """Seconds to keep an idle connection, from the server's `Keep-Alive: timeout=N` (RFC 2068 19.7.1.1)."""
    if not header:
        return KEEPALIVE_DEFAULT
    for param in header.split(","):
        key, _, value = param.partition("=")
        if key.strip().lower() == "timeout":
            try:
                return max(0.0, float(value.strip()) - KEEPALIVE_MARGIN)
            except ValueError:
                break
    return KEEPALIVE_DEFAULT


class Pool:
    """Idle kept-alive connections by origin and TLS settings, for checks that reuse connections."""

    def __init__(self) -> None:
        self._idle: dict[tuple[object, ...], list[tuple[float, Connection]]] = {}  # key -> (usable until, connection)
        self._sweep_at = 0.0

    def take(self, key: tuple[object, ...]) -> Connection | None:
        """An idle connection still open and within its keep-alive time, if there is one."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            until, connection = idle.pop()
            if not connection.closed and now < until:
                return connection
            connection.close()
        return None

    def give(self, key: tuple[object, ...], connection: Connection, keep_for: float) -> None:
        """Keep connection for keep_for seconds for the next run with the same key."""
        now = time.monotonic()
        if keep_for <= 0:
            connection.close()
            return
        self._idle.setdefault(key, []).append((now + keep_for, connection))
        if now >= self._sweep_at:  # connections of checks that stopped running are closed too
            self._sweep_at = now + KEEPALIVE_DEFAULT
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        for key, idle in list(self._idle.items()):
            for until, connection in idle:
                if now >= until or connection.closed:
                    connection.close()
            idle[:] = [(until, c) for until, c in idle if not c.closed]
            if not idle:
                del self._idle[key]

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for _, connection in idle:
                connection.close()
        self._idle.clear()
