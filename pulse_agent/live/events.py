"""The event feed behind GET /api/v1/events: results and incident changes fanned out to subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Event = tuple[str, dict[str, Any]]  # (kind, JSON-ready data)


@dataclass(eq=False, slots=True)
class Subscription:
    """One listener's queue; events it was too slow for are counted, not queued without bound."""

    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    dropped: int = 0


class EventHub:
    """Publishes to every current subscriber; costs nothing while nobody listens."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._closed = False

    @property
    def active(self) -> bool:
        """Whether anybody listens (callers skip building events otherwise)."""
        return bool(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Offer an event to every subscriber."""
        for sub in self._subscribers:
            try:
                sub.queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                sub.dropped += 1

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """A subscription for the duration of the with-block; its queue yields None once the hub closes."""
        sub = Subscription()
        if self._closed:
            sub.queue.put_nowait(None)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every subscription (the agent is stopping)."""
        self._closed = True
        for sub in self._subscribers:
            while True:
                try:
                    sub.queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    sub.queue.get_nowait()  # make room for the end marker
