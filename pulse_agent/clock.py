"""Clocks for the scheduler: the system clock, and a manual one that tests advance by hand."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A pending callback that can be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall time, and callbacks at a wall time."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer: ...


class SystemClock:
    """The real clock: epoch seconds, timers on the running event loop."""

    def time(self) -> float:
        """Epoch seconds now."""
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Call callback at wall time `when` (at once if it has passed)."""
        return asyncio.get_running_loop().call_later(max(0.0, when - time.time()), callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time moves only when advance() is awaited; timers fire in order, the loop settling between."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        """The manual now."""
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Register callback for manual time `when`."""
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing each due timer at its own instant."""
        target = self.now + seconds
        await settle()
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, when)
            timer.callback()
            await settle()
        self.now = target
        await settle()


def resolve(future: asyncio.Future[None]) -> None:
    """Complete future unless it is already done (a timer and a wake-up may race)."""
    if not future.done():
        future.set_result(None)


async def sleep_until(clock: Clock, when: float) -> None:
    """Wait until the clock reads `when`."""
    done = asyncio.get_running_loop().create_future()
    timer = clock.call_at(when, lambda: resolve(done))
    try:
        await done
    finally:
        timer.cancel()


async def settle(rounds: int = 20) -> None:
    """Let every ready task on the loop run until it blocks again."""
    for _ in range(rounds):
        await asyncio.sleep(0)
