"""Raw HTTP/1.1 origins on 127.0.0.1 for wire tests: exact answer bytes per path, every request recorded."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class Seen:
    """One request as it arrived: request line parts, headers (lower-case names, UTF-8 text) and body."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Answer = bytes | Callable[[Seen], bytes]


@dataclass
class Origin:
    """A running origin: its base URL (no trailing slash), the answers by request target, what it saw."""

    url: str
    routes: dict[str, Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0  # accepted so far

    @property
    def netloc(self) -> str:
        return self.url.split("://", 1)[1]


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


async def _read_request(reader: asyncio.StreamReader) -> Seen:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("utf-8", "surrogateescape").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, target, headers, body)


@asynccontextmanager
async def origin(
    routes: dict[str, Answer] | None = None,
    *,
    cert: object = None,
    keep_alive: bool = False,
    host: str = "127.0.0.1",
    port: int = 0,
    max_tls: ssl.TLSVersion | None = None,
) -> AsyncIterator[Origin]:
    """An origin answering each request target with routes[target] (bytes, or a function of the request),
    404 otherwise; https with a trustme LeafCert; it closes after each answer unless keep_alive, and
    after an empty answer."""
    context = None
    if cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)  # type: ignore[attr-defined]
        if max_tls is not None:
            context.maximum_version = max_tls
    state = Origin("", dict(routes or {}))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                seen = await _read_request(reader)
                state.seen.append(seen)
                answer = state.routes.get(seen.target, NOT_FOUND)
                data = answer(seen) if callable(answer) else answer
                writer.write(data)
                await writer.drain()
                if not keep_alive or not data:  # no answer: close unanswered
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, ssl=context)
    bound = server.sockets[0].getsockname()[1]
    state.url = f"{'https' if cert is not None else 'http'}://{'localhost' if cert is not None else host}:{bound}"
    try:
        yield state
    finally:
        server.close()
        with suppress(Exception):
            await server.wait_closed()


@asynccontextmanager
async def black_hole(host: str, port: int = 0) -> AsyncIterator[int]:
    """A port on host where SYNs are dropped (a listening socket whose backlog is full): a connect hangs."""
    listener = socket.socket()
    listener.bind((host, port))
    listener.listen(0)
    bound = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # the kernel queues backlog+1; the rest wait unanswered
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect_ex((host, bound))
            fillers.append(filler)
        await asyncio.sleep(0.05)
        yield bound
    finally:
        for s in (*fillers, listener):
            s.close()
