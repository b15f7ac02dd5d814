"""The shell around probe/push.py: the push checks' states in memory and in the database, a timer per
check at its deadline, and the runs that pings and deadlines finish handed to the result pipeline.
Pushes are handled here, in the agent process, never by an executor or a probe worker."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import replace
from typing import TypeVar

import duckdb

from pulse_agent.clock import Clock, Timer
from pulse_agent.config.model import CheckSpec
from pulse_agent.probe import push
from pulse_agent.probe.push import PushState, Signal
from pulse_agent.result import Result
from pulse_agent.store import push_state
from pulse_agent.view import StoreClosed

log = logging.getLogger("pulse_agent.push")
T = TypeVar("T")

Finished = Callable[[CheckSpec, Result], Awaitable[Result]]  # the pipeline: store, metrics, alerts, events
Call = Callable[[Callable[[duckdb.DuckDBPyConnection], T]], Awaitable[T]]  # ResultStore.call


class PushMonitor:
    """Every running push check: its state, its deadline timer, and what a ping does to it."""

    def __init__(self, clock: Clock, finished: Finished, on_due: Callable[[str, float | None], None]) -> None:
        self._clock = clock
        self._finished = finished
        self._on_due = on_due  # told each check's deadline as it is set (the next-run gauge)
        self._checks: dict[str, CheckSpec] = {}
        self._states: dict[str, PushState] = {}
        self._timers: dict[str, Timer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._call: Call[object] | None = None
        self._dirty: dict[str, PushState] = {}  # states changed since the last write
        self._written: asyncio.Future[None] | None = None  # resolved once the dirty states are written
        self._writer: asyncio.Task[None] | None = None
        self._accepting = False  # between open() and stop(): pings can be recorded
        self._paused: set[str] = set()  # paused checks: no deadline armed

    async def open(self, call: Call[object]) -> None:
        """Read the stored states (pings received before a restart); writes go through call from now on."""
        self._call = call
        self._states = await call(push_state.load)  # type: ignore[assignment]
        self._accepting = True

    def set_checks(self, checks: Iterable[CheckSpec], paused: Collection[str] = ()) -> None:
        """Watch exactly these (enabled) push checks: kept ones keep their state, whatever their new schedule
        or grace; new ones start now (no due time before now is expected); removed ones are forgotten.
        A paused one keeps its state and takes pings, but nothing is late while paused: on resume it is
        watched afresh from then."""
        now = self._clock.time()
        self._checks = {c.name: c for c in checks if c.kind == "push" and c.enabled}
        gone = [name for name in self._states if name not in self._checks]
        for name in gone:
            del self._states[name]
        for name in [n for n in self._timers if n not in self._checks or n in paused]:
            self._timers.pop(name).cancel()
            self._on_due(name, None)
        if gone:
            self._spawn(self._write(lambda con: push_state.forget(con, gone)))
        for name, spec in self._checks.items():
            if name in paused:
                self._paused.add(name)
                continue
            if name not in self._states or name in self._paused:
                self._states[name] = replace(self._states.get(name) or PushState(since=now), since=now, accounted=None)
                self._save(name)
            self._paused.discard(name)
            self._arm(spec)

    def spec(self, name: str) -> CheckSpec | None:
        """The running push check called name; StoreClosed while starting or stopping (a ping could not be kept)."""
        if not self._accepting:
            raise StoreClosed("the agent is starting or stopping; try again in a moment")
        return self._checks.get(name)

    def state(self, name: str) -> PushState | None:
        """What is known of the push check called name."""
        return self._states.get(name)

    def due(self, name: str) -> float | None:
        """When the push check called name next expects a ping."""
        spec, state = self._checks.get(name), self._states.get(name)
        return None if spec is None or state is None else push.due(spec, state)

    async def ping(self, spec: CheckSpec, signal: Signal, code: int | None = None) -> Result | None:
        """A ping of spec: the run it finishes, once stored in the pipeline (None for /start)."""
        if not self._accepting:
            raise StoreClosed("the agent is stopping; try again in a moment")
        state = self._states.get(spec.name)
        if state is None or self._checks.get(spec.name) is not spec:
            return None
        state, result = push.ping(spec, state, self._clock.time(), signal, code)
        return await self._apply(spec, state, result)

    async def stop(self) -> None:
        """Take no more pings, cancel the timers; let state writes and runs under way finish."""
        self._accepting = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _apply(self, spec: CheckSpec, state: PushState, result: Result | None) -> Result | None:
        """Keep the new state (synchronously: pings racing each other see it), write it, re-arm, then the run."""
        self._states[spec.name] = state
        self._arm(spec)
        await self._persist(spec.name, state)
        return None if result is None else await self._finished(spec, result)

    def _arm(self, spec: CheckSpec) -> None:
        if (old := self._timers.pop(spec.name, None)) is not None:
            old.cancel()
        when = push.deadline(spec, self._states[spec.name])
        self._on_due(spec.name, when)
        if when is not None:
            self._timers[spec.name] = self._clock.call_at(when, lambda: self._spawn(self._deadline(spec.name)))

    async def _deadline(self, name: str) -> None:
        spec, state = self._checks.get(name), self._states.get(name)
        if spec is None or state is None:
            return
        state, result = push.overdue(spec, state, self._clock.time())
        if result is None:  # a timer early by a rounding: look again at the deadline
            self._arm(spec)
            return
        await self._apply(spec, state, result)

    def _save(self, name: str) -> None:
        self._spawn(self._persist(name, self._states[name]))

    async def _persist(self, name: str, state: PushState) -> None:
        """Written before this returns. Group commit: the states that change while a write is under way
        go together in the next one (a thousand cron jobs pinging at 02:00 make a few transactions)."""
        if self._call is None:
            return
        self._dirty[name] = state
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_dirty())
            self._tasks.add(self._writer)
            self._writer.add_done_callback(self._tasks.discard)
        await asyncio.shield(written)

    async def _write_dirty(self) -> None:
        while self._dirty:
            batch, self._dirty = self._dirty, {}
            done, self._written = self._written, None
            await self._write(functools.partial(_save_many, batch))
            if done is not None and not done.done():
                done.set_result(None)

    async def _write(self, fn: Callable[[duckdb.DuckDBPyConnection], object]) -> None:
        if self._call is None:
            return
        try:
            await self._call(fn)
        except Exception as exc:  # the run still goes through the pipeline; only a restart would forget it
            log.error("writing a push check's state failed: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _save_many(states: dict[str, PushState], con: duckdb.DuckDBPyConnection) -> None:
    push_state.save_many(con, states)
