"""What follows a run, wherever it ran (the agent's scheduler or a probe worker): maintenance flag, store,
metrics, last result, live events, log line, alerts; and the scheduler's lag and skip accounting."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from pulse_agent.alerts.alerting import Alerting
from pulse_agent.config.model import CheckSpec, MaintenanceWindow
from pulse_agent.live.events import EventHub
from pulse_agent.result import Result, from_kept, kept
from pulse_agent.store import ResultStore
from pulse_agent.view import CheckStatus
from pulse_agent.web.metrics import Metrics

results_log = logging.getLogger("pulse_agent.result")


def log_result(result: Result) -> None:
    """One structured line per finished run (nothing is formatted when info is off)."""
    if results_log.isEnabledFor(logging.INFO):
        fields = result.to_json()
        fields.pop("ts")
        results_log.info("result", extra=fields)


class WindowSpans:
    """The span around the last time asked about, per maintenance window: asking cron costs ~0.3 ms, and
    consecutive results almost always fall in the same span."""

    def __init__(self) -> None:
        self._spans: dict[MaintenanceWindow, tuple[float, float]] = {}

    def in_maintenance(self, spec: CheckSpec, ts: float) -> bool:
        """Whether ts falls in one of spec's maintenance windows."""
        return any(self._covers(w, ts) for w in spec.maintenance)

    def _covers(self, window: MaintenanceWindow, ts: float) -> bool:
        span = self._spans.get(window)
        if span is None or not span[0] <= ts < span[1]:
            span = self._spans[window] = window.span(ts)
        return window.covers(ts, span)

    def clear(self) -> None:
        """Forget every span (windows may have changed)."""
        self._spans.clear()


class ResultPipeline:
    """Takes finished runs from either executor; the store and alerting are attached once open."""

    def __init__(self, metrics: Metrics, events: EventHub) -> None:
        self.metrics = metrics
        self.events = events
        self.store: ResultStore | None = None
        self.alerting: Alerting | None = None
        self._checks: dict[str, CheckSpec] = {}
        self._last: dict[str, bytes | Result] = {}  # by check: its last result, as `kept` packs it
        self._windows = WindowSpans()

    def set_checks(self, checks: Iterable[CheckSpec]) -> list[str]:
        """The checks whose results count from now on; returns those that stopped (their last result goes)."""
        before = self._checks
        self._checks = {c.name: c for c in checks}
        stopped = sorted(before.keys() - self._checks.keys())
        for name in stopped:
            self._last.pop(name, None)
        self._windows.clear()
        return stopped

    def spec(self, name: str) -> CheckSpec | None:
        """The running check called name."""
        return self._checks.get(name)

    def status(self, spec: CheckSpec, now: float, running: bool) -> CheckStatus:
        """What is known of spec now (running: asked of the executor that runs it)."""
        state = self.alerting.state(spec.name) if self.alerting is not None else None
        return CheckStatus(
            running=running,
            in_maintenance=spec.in_maintenance(now),
            consecutive_failures=state.failures if state is not None else 0,
            consecutive_successes=state.successes if state is not None else 0,
            degraded=state.degraded if state is not None else False,
            incident=state.incident if state is not None else None,
            next_due=spec.schedule.next_due(now, spec.name) if spec.enabled else None,
            last_result=self.last(spec.name),
        )

    def last(self, name: str) -> Result | None:
        """The last result of the check called name, since the agent started."""
        value = self._last.get(name)
        return from_kept(name, value) if value is not None else None

    async def finished(self, spec: CheckSpec, result: Result) -> Result:
        """Everything that follows one run; returns the result as stored."""
        if spec.maintenance and self._windows.in_maintenance(spec, result.ts):
            result = replace(result, maintenance=True)
        if self.store is not None:
            self.store.submit(result)
        self.metrics.observe(result)
        self._last[spec.name] = kept(result, spec.name)
        if self.events.active:
            self.events.publish("result", result.to_json())
        log_result(result)
        if self.alerting is not None and (events := self.alerting.observe(spec, result)) is not None:
            await events  # recorded before the run counts as finished: the next run of this check sees them
        return result

    async def from_worker(self, results: list[Result], skipped: list[str], dues: dict[str, float | None]) -> None:
        """Results a probe worker sent, in the order its runs finished, and its checks' next due times."""
        for name in skipped:
            self.skipped(name)
        for name, due in dues.items():
            self.next_run(name, due)
        for result in results:
            if result.scheduled_ts is not None:
                self.lag(max(0.0, result.ts - result.scheduled_ts))
            await self.settle(result)

    async def settle(self, result: Result, spec: CheckSpec | None = None) -> Result:
        """A result that ran elsewhere: through the pipeline under spec (else the running check of its name);
        one of a check a reload removed while it ran is kept as history only."""
        spec = spec or self._checks.get(result.check)
        if spec is not None:
            return await self.finished(spec, result)
        if self.store is not None:
            self.store.submit(result)
        return result

    def skipped(self, name: str) -> None:
        """A due run of name did not start: the previous one was still going."""
        self.metrics.skipped(name)

    def lag(self, seconds: float) -> None:
        """A run started this long after it was due."""
        self.metrics.scheduler_lag.observe(seconds)

    def next_run(self, name: str, due: float | None) -> None:
        """The next due time of name (None: never again)."""
        self.metrics.next_run(name, due)
