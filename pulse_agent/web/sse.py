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
                item = await asyncio.wait_for(sub.queue.get(), KEEP_ALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            if sub.dropped:
                await response.write(sse("dropped", {"events": sub.dropped}))
                sub.dropped = 0
            if (out := transform(item)) is not None:
                await response.write(out)
    return response
