"""A connection read as plain bytes (tcp:// and tls:// checks, STARTTLS dialogues): what came, when the first
byte came, and whether the peer closed; buffered up to a limit, so a peer that floods costs bounded memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pulse_agent.probe.received import show_bytes
from pulse_agent.probe.wire import Connection, fail

RECEIVE_LIMIT = 64 * 1024  # bytes read at most; reading stops there (as blackbox_exporter's query_response lines do)
LINE_LIMIT = 4096  # bytes of one line of a STARTTLS dialogue


class Stream(Connection):
    """A TCP (or TLS) connection whose bytes are kept, not parsed as HTTP."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.first_at: float | None = None  # perf_counter of the first byte received
        self.eof = False  # the peer closed (or reset) the connection
        self.error: Exception | None = None  # why it was lost, when not an orderly close
        self._waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.data += data
        if len(self.data) >= RECEIVE_LIMIT and self.transport is not None:
            self.transport.pause_reading()  # the limit is reached: the rest stays in the kernel
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.eof = True
        self.error = exc
        self._wake()

    def write(self, data: bytes) -> None:
        """Send data (ProbeFailure 'reset' when the peer closed already)."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise fail("reset", "the server closed the connection before anything was sent")
        self.transport.write(data)

    async def read_until(self, done: Callable[[bytes], bool]) -> bool:
        """Wait until done(data so far) holds (True), or the peer closed or the limit was reached (False)."""
        while not done(bytes(self.data)):
            if self.eof or len(self.data) >= RECEIVE_LIMIT:
                return False
            await self._more()
        return True

    async def line(self, what: str) -> bytes:
        """The next line (ending in LF, taken out of data); ProbeFailure 'protocol' when the peer closes or the line is too long."""
        while (end := self.data.find(b"\n")) < 0:
            if len(self.data) > LINE_LIMIT:
                raise fail("protocol", f"{what}: a line longer than {LINE_LIMIT} bytes")
            if self.eof:
                got = f", after {show_bytes(self.data)}" if self.data else ""
                raise fail("reset", f"{what}: the server closed the connection{got}")
            await self._more()
        line = bytes(self.data[: end + 1])
        del self.data[: end + 1]
        return line

    async def _more(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
