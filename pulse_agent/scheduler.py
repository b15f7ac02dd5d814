"""The timing heap: runs each enabled check when due, never two runs of one check at once."""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pulse_agent.clock import Clock, SystemClock, Timer, resolve
from pulse_agent.names import spread
from pulse_agent.schedule import Interval, Schedule

log = logging.getLogger("pulse_agent.scheduler")


class Schedulable(Protocol):
    """What the scheduler reads of a check: a CheckSpec, or a worker's CompactCheck (compact.py)."""

    @property
    def name(self) -> str: ...
    @property
    def schedule(self) -> Schedule: ...
    @property
    def enabled(self) -> bool: ...


S = TypeVar("S", bound=Schedulable)
Runner = Callable[[S, float], Awaitable[object]]  # starts one run of a check due at a time


@dataclass(slots=True)
class _Entry(Generic[S]):
    spec: S
    generation: int


def first_due(spec: Schedulable, now: float, window: float | None) -> float | None:
    """When a newly scheduled check first runs: its next due time; or, for an interval check added or
    changed while running (window set), within `window` seconds (spread by name), so an edit shows at once."""
    if window is not None and isinstance(spec.schedule, Interval):
        return now + spread(spec.name) * min(window, spec.schedule.seconds)
    return spec.schedule.next_due(now, spec.name)


PROMPT_RATE = 1000.0  # checks per second that a reload may start at once


class Scheduler(Generic[S]):
    """Pops due checks off a heap and starts their runs, within a global concurrency bound."""

    def __init__(
        self,
        runner: Runner[S],
        *,
        clock: Clock | None = None,
        max_concurrency: int = 256,
        on_skip: Callable[[str], None] | None = None,
        on_lag: Callable[[float], None] | None = None,
        on_due: Callable[[str, float | None], None] | None = None,
    ) -> None:
        self._runner = runner
        self._clock = clock or SystemClock()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._on_skip = on_skip
        self._on_lag = on_lag
        self._on_due = on_due  # told each check's next due time as it is set (None: never again)
        self._heap: list[tuple[float, int, str, int]] = []
        self._entries: dict[str, _Entry[S]] = {}
        self._generation = 0
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._stopping = False

    @property
    def inflight(self) -> int:
        """Runs in progress now."""
        return len(self._inflight)

    @property
    def checks(self) -> list[S]:
        """The checks being scheduled."""
        return [e.spec for e in self._entries.values()]

    def set_checks(self, specs: Iterable[S], *, soon: bool = False) -> None:
        """Schedule exactly these (enabled) checks; unchanged ones keep their place in time. With
        soon (a reload), new and changed interval checks run once soon (spread at 1,000 per second: one
        at once, 100 within 0.1 s), then on their grid."""
        specs = list(specs)
        names = {spec.name for spec in specs}
        self.update(specs, [name for name in self._entries if name not in names], soon=soon)

    def update(self, changed: Iterable[S], removed: Iterable[str], *, soon: bool = False) -> None:
        """As set_checks, given only what changed: checks new, edited or disabled, and the names of those
        gone; the others stay as they are (a probe worker keeps its checks here and nowhere else)."""
        now = self._clock.time()
        entries = self._entries
        for name in removed:
            entries.pop(name, None)
        fresh: list[S] = []
        for spec in changed:
            old = entries.get(spec.name)
            if not spec.enabled:
                entries.pop(spec.name, None)
            elif old is None or not (old.spec is spec or old.spec == spec):
                fresh.append(spec)
        window = len(fresh) / PROMPT_RATE if soon else None  # many new checks: a wider spread; one: no wait
        for spec in fresh:
            self._generation += 1
            entries[spec.name] = _Entry(spec, self._generation)
            self._push(first_due(spec, now, window), spec.name, self._generation)
        self._wake()

    def stop(self) -> None:
        """Start no more runs; run() returns."""
        self._stopping = True
        self._wake()

    def running(self, name: str) -> bool:
        """Whether a run of the check called name is in progress."""
        return name in self._inflight

    def running_checks(self) -> frozenset[str]:
        """The names of the checks with a run in progress."""
        return frozenset(self._inflight)

    async def run_now(self, spec: S, scheduled_ts: float, runner: Runner[S] | None = None) -> asyncio.Task[object] | None:
        """Start a run outside the heap (catch-up, run-now), by runner if given, else the scheduler's: its
        task, whose result is the runner's; None if that check is already running or the scheduler is stopping."""
        if spec.name in self._inflight or self._stopping:
            return None
        await self._slots.acquire()
        if spec.name in self._inflight:  # started while we waited for a slot
            self._slots.release()
            return None
        return self._start(spec, scheduled_ts, runner)

    async def drain(self, timeout: float) -> int:
        """Wait for in-flight runs to finish (cancel those past timeout); return how many were cancelled."""
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return len(pending)

    async def run(self) -> None:
        """Start runs as they fall due until stop() is called."""
        while not self._stopping:
            if not self._heap:
                await self._sleep_until(None)
                continue
            due, _, name, generation = self._heap[0]
            entry = self._entries.get(name)
            if entry is None or entry.generation != generation:
                heapq.heappop(self._heap)  # a removed or replaced check
                continue
            now = self._clock.time()
            if due > now:
                await self._sleep_until(due)
                continue
            heapq.heappop(self._heap)
            spec = entry.spec
            self._push(spec.schedule.next_due(max(due, now), name), name, generation)
            if name in self._inflight:
                if self._on_skip is not None:
                    self._on_skip(name)
                continue
            await self._slots.acquire()
            if self._stopping:
                self._slots.release()
                break
            if self._on_lag is not None:
                self._on_lag(max(0.0, self._clock.time() - due))
            self._start(spec, due)

    def _start(self, spec: S, due: float, runner: Runner[S] | None = None) -> asyncio.Task[object]:
        """Start a run; the caller holds a concurrency slot for it."""
        self._inflight.add(spec.name)
        task = asyncio.create_task(self._run_one(spec, due, runner or self._runner), name=f"check:{spec.name}")
        self._tasks.add(task)
        return task

    async def _run_one(self, spec: S, due: float, runner: Runner[S]) -> object:
        try:
            return await runner(spec, due)
        except asyncio.CancelledError:
            raise
        except Exception:  # the runner's bug must not stop the scheduler
            log.exception("run of check %s failed", spec.name)
            return None
        finally:
            self._inflight.discard(spec.name)
            self._slots.release()
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _push(self, due: float | None, name: str, generation: int) -> None:
        if due is not None:
            heapq.heappush(self._heap, (due, generation, name, generation))
        if self._on_due is not None:
            self._on_due(name, due)

    async def _sleep_until(self, when: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        timer: Timer | None = None
        if when is not None:
            timer = self._clock.call_at(when, lambda: resolve(waiter))
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        if self._waiter is not None:
            resolve(self._waiter)
