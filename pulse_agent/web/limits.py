"""How many inbound connections the web surface may hold, so the prober never runs out of file
descriptors because of them; and the server that enforces it.

Every run of a check needs a socket, and so does every inbound connection. Without a bound, a
client opening thousands of connections (or half-sent requests) takes the descriptors the probes
need, and every check then fails with "Too many open files": false failures. So:

- at start the soft RLIMIT_NOFILE is raised to the hard limit (`raise_nofile`);
- `inbound_budget` reserves `max_concurrency + RESERVED_FDS` descriptors for the prober and the
  rest of the agent (DuckDB, logs, notifications, DNS, workers' pipes), and gives the web surface
  half of what is left: a listen backlog and a cap on open connections;
- `BoundedSite` answers connections beyond the cap with `503` and closes them at once;
- a connection must send a complete request head within IDLE_TIMEOUT_S of opening, or of the end
  of its previous response (keep-alive idle), else it is closed (aiohttp's one keep-alive timer
  covers both); a request body must arrive within BODY_TIMEOUT_S, else 408 (`body_deadline`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger("pulse_agent.web")

IDLE_TIMEOUT_S = 5.0  # header read and keep-alive idle timeout (Apache's KeepAliveTimeout is 5 s too)
BODY_TIMEOUT_S = 10.0  # a request body (at most 1 MiB, aiohttp's client_max_size) must arrive within this
RESERVED_FDS = 128  # besides one per concurrent run: database, logs, notifications, DNS, pipes
MAX_CONNECTIONS = 10_000  # the API and /metrics never need more, however many descriptors there are
_REFUSAL_BODY = b"too many connections\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


@dataclass(frozen=True, slots=True)
class InboundBudget:
    """File descriptors the web surface may use: open connections, plus a backlog of new ones."""

    nofile: int  # the process's descriptor limit
    max_connections: int
    backlog: int

    @property
    def tight(self) -> bool:
        """Whether the limit leaves the prober less than it was promised (the minimums won)."""
        return self.max_connections + self.backlog > (self.nofile - RESERVED_FDS) // 2


def inbound_budget(nofile: int, max_concurrency: int) -> InboundBudget:
    """Pure: what the web surface may hold of `nofile` descriptors when up to `max_concurrency`
    runs are in flight. Connections accepted in one batch before the cap applies are at most the
    backlog, so inbound sockets never exceed max_connections + backlog."""
    share = max(0, nofile - max_concurrency - RESERVED_FDS) // 2
    backlog = min(128, max(4, share // 4))
    return InboundBudget(nofile, min(MAX_CONNECTIONS, max(4, share - backlog)), backlog)


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    try:
        import resource
    except ImportError:  # not a POSIX system: nothing to raise, assume the usual limit
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the file-descriptor limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


@web.middleware
async def body_deadline(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Read a request's body within BODY_TIMEOUT_S (handlers then get it from aiohttp's cache), else
    answer 408: a body sent a byte at a time never holds a connection for long."""
    if request.body_exists:
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                await request.read()
        except TimeoutError:
            return web.json_response({"error": f"request body not received within {BODY_TIMEOUT_S:g} s"}, status=408)
    return await handler(request)


class _Refusal(asyncio.Protocol):
    """A connection over the cap: told 503 and closed, without reading it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(REFUSAL)
        transport.close()


class BoundedSite(web.TCPSite):
    """A TCP site whose server holds at most `max_connections` connections; more get 503."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, budget: InboundBudget, on_refused: Callable[[], object] | None = None
    ) -> None:
        super().__init__(runner, host, port, backlog=budget.backlog)
        self.max_connections = budget.max_connections
        self._on_refused = on_refused

    @property
    def open_connections(self) -> int:
        """Connections being served now."""
        server = self._runner.server
        return len(server.connections) if server is not None else 0

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        if len(server.connections) >= self.max_connections:
            if self._on_refused is not None:
                self._on_refused()
            return _Refusal()
        return server()

    async def start(self) -> None:
        """Listen, like TCPSite.start, with the bounded protocol factory."""
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = server = await loop.create_server(self._protocol, self._host, self._port, backlog=self._backlog)
        self._bound_port = server.sockets[0].getsockname()[1] if server.sockets else self._port
