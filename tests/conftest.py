"""Shared fixtures: misbehaving TCP targets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import trustme

from pulse_agent.config.model import CheckSpec
from pulse_agent.probe.http import Prober

REQUIRE_SYSTEM_TOOLS = os.environ.get("PULSE_REQUIRE_SYSTEM_TOOLS") == "1"


@pytest.fixture(scope="session", autouse=True)
def own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests' own cache directory (what `report` remembers of configs: config_facts.py), never the user's."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


def require_binary(name: str, package: str) -> str:
    """The path of system binary `name`; skip (or fail, under .ci/run) when it is absent.

    `.ci/run` installs the Debian packages and sets PULSE_REQUIRE_SYSTEM_TOOLS=1, so CI
    always runs these tests; README's test command on a bare machine skips them visibly.
    """
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path:
        return path
    reason = f"{name} not installed (apt-get install {package})"
    if REQUIRE_SYSTEM_TOOLS:
        pytest.fail(reason + " but PULSE_REQUIRE_SYSTEM_TOOLS=1")
    pytest.skip(reason)


@asynccontextmanager
async def misbehaving(mode: str) -> AsyncIterator[str]:
    """A local target that reads the request and then misbehaves as `mode` says.

    hang: never answers; close: closes; reset: sends RST; garbage: not HTTP; drip: one body byte
    every 0.1 s; huge: a 50 MiB body; many-headers: 10,000 headers; headers-then-close: cut body.
    """
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
            elif mode == "drip":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                for _ in range(1000):
                    writer.write(b".")
                    await writer.drain()
                    await asyncio.sleep(0.1)
            elif mode == "huge":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (50 * 1024 * 1024))
                chunk = b"x" * 65536
                for _ in range(800):  # 50 MiB at most, stops when the client hangs up
                    writer.write(chunk)
                    await writer.drain()
            elif mode == "many-headers":
                head = b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
                writer.write(b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 2\r\n\r\nok")
                await writer.drain()
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


@asynccontextmanager
async def scripted(answer: bytes, requests: list[bytes] | None = None) -> AsyncIterator[str]:
    """A local target that answers every request with exactly `answer` and closes; the request heads
    it read go to `requests`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if requests is not None:
                requests.append(head)
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()
        await server.wait_closed()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def tls_server(cert, body: bytes = b"ok") -> AsyncIterator[str]:
    """An https target on 127.0.0.1 serving `cert` (a trustme LeafCert), answering 200 `body`."""
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://localhost:{port}/"
    finally:
        server.close()
        await server.wait_closed()


def spec(url: str, **kw: object) -> CheckSpec:
    """A check of url named "t" unless given a name; other CheckSpec fields by keyword."""
    return CheckSpec(name=str(kw.pop("name", "t")), url=url, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def prober() -> AsyncIterator[Prober]:
    """A Prober closed after the test."""
    p = Prober()
    yield p
    await p.close()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """pulse-agent ARGS in a subprocess, output captured; env adds to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "pulse_agent", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority of the tests' own (trustme), one per test module."""
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """That CA's certificate as a PEM file, for ca_file settings."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)
