"""Server-Sent Events: a subscription to the agent's events written to one response until the agent stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from aiohttp import web

from pulse_agent.live.events import Event, Subscription

KEEP_ALIVE_S = 15.0
BATCH = 100  # events in one write at most: serialising them is a couple of milliseconds of the event loop
COALESCE_S = 0.05  # a caught-up stream waits this long before its next write, so events go out many to a send


def sse(kind: str, data: dict[str, Any]) -> bytes:
    """One event in the text/event-stream format."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def event_stream(
    request: web.Request, subscribe: Callable[[], AbstractContextManager[Subscription]], transform: Callable[[Event], bytes | None]
) -> web.StreamResponse:
    """Stream events as transform writes them (None: not for this stream), with keep-alives and a
    `dropped` event when the listener was too slow for some."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    with subscribe() as sub, contextlib.suppress(ConnectionResetError):  # the listener left
        await response.write(b": connected\n\n")
        while True:
            try:
                async with asyncio.timeout(KEEP_ALIVE_S):  # no task per event, as wait_for would make
                    item = await sub.queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            out, ended = _batch(sub, item, transform)
            if out:
                await response.write(out)
            if ended:
                break
            # A send per event cost more of the loop than the events themselves (a system call each at
            # 1,000 results/s); behind, the rest is taken after one pass of the loop, else after a short wait.
            await asyncio.sleep(0 if sub.queue.qsize() >= BATCH else COALESCE_S)
    return response


def _batch(sub: Subscription, item: Event | None, transform: Callable[[Event], bytes | None]) -> tuple[bytes, bool]:
    """This event and those queued meanwhile (up to BATCH), as one write: a send for many events under
    load, not one each; and whether the stream ended (None)."""
    out: list[bytes] = []
    for taken in range(1, BATCH + 1):
        if item is None:
            return b"".join(out), True
        if sub.dropped:
            out.append(sse("dropped", {"events": sub.dropped}))
            sub.dropped = 0
        if (text := transform(item)) is not None:
            out.append(text)
        if taken == BATCH or sub.queue.empty():
            break
        item = sub.queue.get_nowait()
    return b"".join(out), False
