"""Shared fixtures: misbehaving TCP targets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def misbehaving(mode: str) -> AsyncIterator[str]:
    """A local target that reads the request and then: hangs, closes, resets, or answers garbage."""
    hold = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            if mode == "hang":
                await hold.wait()
            elif mode == "garbage":
                writer.write(b"SSH-2.0-OpenSSH_9.6\r\nthis is not http\r\n\r\n")
                await writer.drain()
            elif mode == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif mode == "headers-then-close":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
                await writer.drain()
            writer.close()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        hold.set()
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
