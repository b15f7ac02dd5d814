"""Where runs happen: the Executor seam, and the local executor (the agent's own scheduler and probers).
The other executor is the pool of probe worker processes (workers.py); both feed a ResultPipeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from pulse_agent.clock import Clock
from pulse_agent.config.model import CheckSpec
from pulse_agent.pipeline import ResultPipeline
from pulse_agent.probe.kinds import Probes
from pulse_agent.probe.retry import run_budget
from pulse_agent.result import Result, iso
from pulse_agent.schedule import missed_due
from pulse_agent.scheduler import Scheduler
from pulse_agent.store.db import History

log = logging.getLogger("pulse_agent.agent")

Outcome = asyncio.Future[Result | None]  # a started run's result; None when it was refused (or cancelled)


class Executor(Protocol):
    """Schedules the running checks and runs them (also on demand), never two runs of one check at once."""

    @property
    def inflight(self) -> int:
        """Runs in progress now."""
        ...

    def set_checks(self, checks: Sequence[CheckSpec], *, soon: bool) -> None:
        """Schedule exactly these checks; unchanged ones keep their place in time; soon: a reload's
        new and changed interval checks run once soon."""
        ...

    async def start(self) -> None:
        """Start running checks as they fall due."""
        ...

    async def stop(self, budget: float) -> int:
        """Start no more runs, let in-flight ones finish within budget seconds; how many were cancelled."""
        ...

    async def run_now(self, spec: CheckSpec, due: float | None = None) -> Outcome:
        """Start a run of spec now (scheduled_ts due, else now), where its scheduled runs happen; returns
        once it started or was refused (a run of it is in progress, or the executor is stopping)."""
        ...

    def running(self, name: str) -> bool:
        """Whether a run of the check called name is in progress."""
        ...


async def catch_up(executor: Executor, checks: Sequence[CheckSpec], history: History, now: float) -> None:
    """Runs missed while the agent was down: one catch-up per `missed: run_once` check, else a log line."""
    for spec in checks:
        due = missed_due(spec.schedule, history.last_runs.get(spec.name), history.last_seen, now)
        if due is None:
            continue
        fields = {"check": spec.name, "missed_due": iso(due), "policy": spec.missed}
        if spec.missed == "run_once":
            log.info("running a missed run now", extra=fields)
            await executor.run_now(spec, due)  # started, not awaited: its result goes through the pipeline
        else:
            log.info("skipping a run missed while the agent was down", extra=fields)


def drain_budget(checks: Sequence[CheckSpec]) -> float:
    """Longest time an in-flight run can still take, plus a second to store it."""
    return max((run_budget(c) for c in checks), default=0.0) + 1.0


class LocalExecutor:
    """Runs checks in this process: one scheduler, a probe per kind of check."""

    def __init__(self, pipeline: ResultPipeline, clock: Clock, max_concurrency: int) -> None:
        self._pipeline = pipeline
        self._clock = clock
        self.probes = Probes(clock)
        self.scheduler = Scheduler(
            self._run,
            clock=clock,
            max_concurrency=max_concurrency,
            on_skip=pipeline.skipped,
            on_lag=pipeline.lag,
            on_due=pipeline.next_run,
        )
        self._loop: asyncio.Task[None] | None = None
        self._checks: tuple[CheckSpec, ...] = ()

    async def _run(self, spec: CheckSpec, due: float) -> Result:
        return await self._pipeline.finished(spec, await self.probes.run(spec, due))

    @property
    def inflight(self) -> int:
        """Runs in progress now."""
        return self.scheduler.inflight

    def set_checks(self, checks: Sequence[CheckSpec], *, soon: bool) -> None:
        """Hand the checks to the scheduler; when one was removed or edited, the probes forget what they kept of it."""
        if self._checks and not set(self._checks) <= set(checks):
            self.probes.forget()
        self._checks = tuple(checks)
        self.scheduler.set_checks(checks, soon=soon)

    async def start(self) -> None:
        """Start the scheduler's loop."""
        self._loop = asyncio.create_task(self.scheduler.run(), name="scheduler")

    async def stop(self, budget: float) -> int:
        """Stop the loop, drain in-flight runs, close connections."""
        self.scheduler.stop()
        if self._loop is not None:
            await self._loop
        cancelled = await self.scheduler.drain(budget)
        await self.probes.close()
        return cancelled

    async def run_now(self, spec: CheckSpec, due: float | None = None) -> Outcome:
        """Start a run in this process's scheduler."""
        task = await self.scheduler.run_now(spec, self._clock.time() if due is None else due)
        outcome: Outcome = asyncio.get_running_loop().create_future()
        if task is None:
            outcome.set_result(None)
        else:
            task.add_done_callback(lambda t: outcome.set_result(_result_of(t)))
        return outcome

    def running(self, name: str) -> bool:
        """Asked of the scheduler that runs it."""
        return self.scheduler.running(name)


def _result_of(task: asyncio.Task[object]) -> Result | None:
    result = None if task.cancelled() else task.result()
    return result if isinstance(result, Result) else None
