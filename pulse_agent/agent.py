"""Wiring and lifecycle: config -> executor -> result pipeline -> (store, metrics, alerts, events); reloads;
the web surface through the AgentView port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from pulse_agent.alerts import humans
from pulse_agent.alerts.alerting import Alerting, incident_json
from pulse_agent.alerts.humans import Pause
from pulse_agent.alerts.machine import Event as AlertEvent
from pulse_agent.alerts.machine import Incident
from pulse_agent.alerts.sender import Deliver, Sender, apprise_deliver
from pulse_agent.alerts.silence import Silence
from pulse_agent.alerts.watch import Watch
from pulse_agent.capacity import checks_per_second, resolve_workers
from pulse_agent.clock import Clock, SystemClock
from pulse_agent.config import Memo
from pulse_agent.config.model import AgentSpec, CheckSpec, ModuleSpec, StatusPageSpec
from pulse_agent.executor import Executor, LocalExecutor, catch_up, drain_budget
from pulse_agent.gc_policy import GcPolicy, LeaveGc
from pulse_agent.live.diff import ConfigDiff, diff
from pulse_agent.live.events import EventHub, Subscription
from pulse_agent.live.reload import Reload
from pulse_agent.live.reloader import Reloader
from pulse_agent.live.watch import watch_config
from pulse_agent.pipeline import ResultPipeline
from pulse_agent.probe.push import PushState, Signal
from pulse_agent.push_monitor import PushMonitor
from pulse_agent.report import Report, ReportRequest, answer
from pulse_agent.report_source import export
from pulse_agent.result import Result
from pulse_agent.shard import Shard, owned
from pulse_agent.store import ResultStore
from pulse_agent.store.export import Exported
from pulse_agent.store.maintenance import Maintenance
from pulse_agent.view import AlertingClosed, CheckStatus, StoreClosed
from pulse_agent.web.api import api_routes
from pulse_agent.web.app import inbound_plan, make_app, serve
from pulse_agent.web.metrics import Metrics
from pulse_agent.web.probe import ProbeEndpoint
from pulse_agent.web.push import push_routes
from pulse_agent.web.status import public_app, status_routes
from pulse_agent.workers import WorkerExecutor, WorkerSettings

log = logging.getLogger("pulse_agent.agent")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line overrides of the config's agent settings."""

    database: str | None = None
    listen: str | None = None
    config: str | None = None  # file or directory to reload from; None: no reloads
    shard: str | None = None  # K/N over agent.shard (--shard, PULSE_SHARD)
    watch: bool = True  # follow changes of the config on disk


def stopped(store: ResultStore, cancelled: int) -> int:
    """The last log line, and the exit status: 0, or 1 when results could not be written (the
    line then says how many, at error level)."""
    fields = {"results_written": store.written, "results_not_written": store.dropped, "cancelled_runs": cancelled}
    if store.dropped:
        log.error("agent stopped", extra={**fields, "database_error": store.failing})
        return 1
    log.info("agent stopped", extra=fields)
    return 0


class Agent:
    """One running agent; also the AgentView the web layer is given."""

    def __init__(
        self, spec: AgentSpec, options: RunOptions = RunOptions(), *,
        clock: Clock | None = None, deliver: Deliver | None = None, memo: Memo | None = None, gc_policy: GcPolicy | None = None,
    ) -> None:  # fmt: skip
        self.shard = Shard.parse(options.shard or spec.agent.shard)
        self.spec = owned(spec, self.shard)
        self.paused: dict[str, Pause] = {}  # paused through the API, kept in the database
        self.database = options.database or spec.agent.database
        self.listen = options.listen or spec.agent.listen
        self.clock = clock or SystemClock()
        self.options = options
        self.gc = gc_policy or LeaveGc()  # cmd_run's choice: the collector is process-wide
        self.metrics = Metrics(str(self.shard), spec.agent.location, spec.agent.metrics_detail)
        self.events = EventHub()
        self.pipeline = ResultPipeline(self.metrics, self.events)
        self.pipeline.set_checks(self._enabled())  # before serving: check() looks the enabled ones up there
        self._disabled = _disabled(self.spec)
        self.workers, self.workers_reason = resolve_workers(
            spec.agent.workers, checks_per_second(_probed(self._running()), self.clock.time()), os.cpu_count() or 1
        )
        self.executor = self._executor(self.workers)
        self.pushes = PushMonitor(self.clock, self.pipeline.finished, self.pipeline.next_run)  # pinged, never run
        self.metrics.inflight.set_function(lambda: self.executor.inflight)
        self.reloader = Reloader(
            options.config, self.shard, lambda: self.spec, self._apply, self.metrics, self.clock, memo, self.gc.paused
        )
        self.probes = ProbeEndpoint(self.modules, spec.agent.max_concurrency)  # /probe
        self._deliver = deliver or apprise_deliver
        self.store: ResultStore | None = None
        self.alerting: Alerting | None = None
        self.watch: Watch | None = None  # SLO burn rates and SQL rules
        self.port: int | None = None
        self.status_port: int | None = None  # status_page.listen's bound port
        self.started = asyncio.Event()  # set once serving and catch-up runs have been started

    def _executor(self, workers: int) -> Executor:
        agent = self.spec.agent
        if not workers:
            return LocalExecutor(self.pipeline, self.clock, agent.max_concurrency)
        settings = WorkerSettings(agent.max_concurrency, agent.log_format, agent.log_level)
        return WorkerExecutor(workers, settings, self.pipeline.from_worker, self.metrics.worker_restarts.inc, self.pipeline.settle)

    # The AgentView port (view.py): what web/ may ask.
    def now(self) -> float:
        return self.clock.time()

    def checks(self) -> tuple[CheckSpec, ...]:
        return self.spec.checks

    def check(self, name: str) -> CheckSpec | None:
        # the pipeline's index of the enabled checks: spec.check scans them all (5 ms of the loop per API
        # request at 100,000 checks, which a client polling a check's state pays at every poll)
        return self.pipeline.spec(name) or self._disabled.get(name)

    def modules(self) -> tuple[ModuleSpec, ...]:
        return self.spec.modules

    def status_page(self) -> StatusPageSpec | None:
        """The running config's status_page settings (web/status.py's StatusSource beside AgentView)."""
        return self.spec.status_page

    def status(self, spec: CheckSpec) -> CheckStatus:
        status = self.pipeline.status(spec, self.clock.time(), self.executor.running(spec.name))
        status = replace(status, next_due=self.pushes.due(spec.name)) if spec.kind == "push" else status
        pause = self.paused.get(spec.name)
        return status if pause is None else replace(status, paused=pause, next_due=None)

    async def read(self, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        return await self._open().read(query)

    async def report(self, question: ReportRequest) -> Report:
        store = self._open()
        return await store.query(lambda con: answer(con, question, store.limits))

    def export_dir(self) -> str | None:
        return self.spec.agent.export_dir

    async def export(self, out: str, start: float, end: float, agent_name: str) -> Exported:
        # COPY runs on its own connection too, but without the query timeout: an export may be long
        return await self._open().query(lambda con: export(con, out, start, end, agent_name), timeout=None)

    def _open(self) -> ResultStore:
        if self.store is None:
            raise StoreClosed("the database is not open")
        return self.store

    def subscribe(self) -> contextlib.AbstractContextManager[Subscription]:
        return self.events.subscribe()

    async def run_now(self, spec: CheckSpec) -> Result | None:
        if spec.kind == "push":  # the job runs elsewhere and pings; the API says so before asking
            return None
        return await (await self.executor.run_now(spec))

    # The PushReceiver port (view.py): what web/push.py may ask.
    def push_check(self, name: str) -> CheckSpec | None:
        return self.pushes.spec(name)

    async def push(self, spec: CheckSpec, signal: Signal, code: int | None = None) -> Result | None:
        return await self.pushes.ping(spec, signal, code)

    def push_state(self, name: str) -> PushState | None:
        return self.pushes.state(name)

    async def reload(self, reason: str) -> Reload:
        return await self.reloader.reload(reason)

    def silences(self) -> list[Silence]:
        return self._alerting().silences()

    async def add_silence(self, body: dict[str, object]) -> Silence:
        return await self._alerting().add_silence(body)

    async def expire_silence(self, silence_id: str) -> Silence | None:
        return await self._alerting().expire_silence(silence_id)

    async def ack(self, incident_id: str, by: str | None) -> Incident | None:
        return await self._alerting().ack(incident_id, by)

    async def pause(self, spec: CheckSpec, author: str | None, reason: str | None) -> Pause:
        """Stop running spec until resumed (across reloads and restarts); its open incident stays open."""
        pause = self.paused.get(spec.name) or Pause(spec.name, self.clock.time(), author, reason)
        await self._store_call(lambda con: humans.save_pause(con, pause))
        self.paused[spec.name] = pause
        self._schedule(soon=False)
        log.info("check paused", extra={"check": spec.name, "by": author, "reason": reason})
        return pause

    async def resume(self, spec: CheckSpec) -> bool:
        """Run spec again (at once, then on its schedule); False when it was not paused."""
        if spec.name not in self.paused:
            return False
        await self._store_call(lambda con: humans.drop_pause(con, spec.name))
        del self.paused[spec.name]
        self._schedule(soon=True)
        log.info("check resumed", extra={"check": spec.name})
        return True

    def _alerting(self) -> Alerting:
        if self.alerting is None:
            raise AlertingClosed("alerting has not started")
        return self.alerting

    async def _store_call(self, fn: Callable[[Any], None]) -> None:
        await self._open().call(fn)

    def ready(self) -> tuple[bool, str]:
        """Ready when the config is loaded, the database is open and takes the results written to it."""
        if self.store is None:
            return False, "database not open"
        if (failing := self.store.failing) is not None:
            return False, f"writing results fails ({self.store.pending} waiting): {failing}"
        return True, f"ready: {len(self._running())} checks"

    def _enabled(self) -> list[CheckSpec]:
        """The checks of the config this agent serves (its shard's, enabled), paused ones too."""
        return [c for c in self.spec.checks if c.enabled]

    def _running(self) -> list[CheckSpec]:
        """The checks of the config this agent runs (its shard's, enabled, not paused)."""
        return [c for c in self.spec.checks if c.enabled and c.name not in self.paused]

    def _schedule(self, *, soon: bool) -> list[str]:
        """Hand the running checks to the metrics and the executor, the enabled ones (paused too: they keep
        their last result and incident) to the pipeline; the checks that stopped (removed or disabled)."""
        checks = self._running()
        self.metrics.set_checks([c.name for c in checks], {c.name: c.labels for c in checks})  # first: it takes next due times
        stopped = self.pipeline.set_checks(self._enabled())
        self.executor.set_checks(_probed(checks), soon=soon)
        self.pushes.set_checks(self._enabled(), paused=self.paused.keys())  # paused: kept, pinged, never late
        return stopped

    async def _apply(self, new: AgentSpec, change: ConfigDiff) -> None:
        """Swap in a reloaded config: unchanged checks keep their place in time, counters and incidents."""
        self.spec, self._disabled = new, _disabled(new)
        stopped = self._schedule(soon=True)
        if self.alerting is not None:
            self.alerting.set_notifiers(new.notifiers)
            await self.alerting.retire(stopped)  # checks no longer run: their incidents close
        if self.watch is not None:
            await self.watch.set_config(new)
        self.metrics.detail = new.agent.metrics_detail
        if "log_level" in change.settings:
            logging.getLogger("pulse_agent").setLevel(new.agent.log_level.upper())

    def _publish(self, event: AlertEvent) -> None:
        if self.events.active:
            self.events.publish("incident", incident_json(event))

    async def _start_alerting(self, store: ResultStore) -> None:
        sender = Sender(store, self.clock, self._deliver, on_outcome=self.metrics.notification)
        # a paused check keeps its incident
        alerting = await Alerting.open(store, self.clock, sender, self.spec.notifiers, self._enabled(), self._publish)
        self.metrics.notification_queue.set_function(lambda: alerting.queued)
        self.metrics.incidents_open.set_function(lambda: alerting.open_incidents)
        self.alerting = self.pipeline.alerting = alerting
        self.watch = Watch(store, self.clock, self.report, alerting.raise_conditions)
        await self.watch.start(self.spec)

    async def run(self, stop: asyncio.Event) -> int:
        """Run until stop is set; then finish in-flight runs, flush and close. Returns the exit code."""
        started, settings = time.monotonic(), self.spec.agent
        budget = inbound_plan(self.listen, settings)
        # The store first: a locked or missing database must fail before anything starts.
        store = await asyncio.to_thread(
            ResultStore, self.database,
            on_written=self.metrics.results_written.inc, on_write_failed=self.metrics.results_write_failures.inc,
            export_dir=settings.export_dir, memory_limit=settings.query_memory_limit, query_timeout=settings.query_timeout,
            trim=self.gc.trim,
        )  # fmt: skip
        self.metrics.results_unwritten.set_function(lambda: store.pending)
        web_runner, public_runner, cancelled = None, None, 0
        starting = contextlib.ExitStack()  # until settled: start-up only builds what lives on
        try:
            starting.enter_context(self.gc.paused())
            routes = [*api_routes(self), *self.probes.routes(), *status_routes(self), *push_routes(self)]
            app = make_app(self.metrics, self.ready, routes, settings.api_token)
            web_runner, self.port = await serve(app, self.listen, budget, self.metrics)
            page = self.spec.status_page
            if page is not None and page.listen:  # read at start, like agent.listen
                public_runner, self.status_port = await serve(public_app(self), page.listen, budget)
                log.info("status page listening", extra={"listen": f"{page.listen.rpartition(':')[0]}:{self.status_port}"})
            # The probe workers start now: they import and set up while the agent opens alerting and metrics.
            await self.executor.start()
            self.store = self.pipeline.store = self.reloader.store = store
            self.paused = await store.call(humans.load_pauses)
            self.metrics.config_applied(self.clock.time())
            await self._start_alerting(store)
            await self.pushes.open(store.call)
            self._schedule(soon=False)
            await catch_up(self.executor, _probed(self._running()), store.history, self.clock.time())
            await self.reloader.record(self.spec, diff(AgentSpec(source=self.spec.source), self.spec), "start")
            watcher = None
            if self.options.config is not None and self.options.watch:
                watching = watch_config(Path(self.options.config), self.reloader.reload_if_changed, stop)
                watcher = asyncio.create_task(watching, name="watcher")
            self.gc.settled()
            starting.close()
            self.started.set()
            log.info("agent started", extra={
                "config": self.spec.source, "checks": len(self._running()), "shard": str(self.shard),
                "workers": self.workers, "workers_reason": self.workers_reason, "database": self.database,
                "listen": f"{self.listen.rpartition(':')[0]}:{self.port}",
                "startup_ms": round((time.monotonic() - started) * 1000, 1),
                "nofile": budget.nofile, "max_connections": budget.max_connections})  # fmt: skip
            maintenance = asyncio.create_task(Maintenance(store, self.clock, lambda: self.spec.agent).forever(), name="storage")
            await stop.wait()
            if watcher is not None:
                await watcher
            log.info("stopping: finishing in-flight runs", extra={"inflight": self.executor.inflight})
            cancelled = await self.executor.stop(drain_budget(self.spec.checks))
            maintenance.cancel()
            await asyncio.gather(maintenance, return_exceptions=True)
        finally:
            await self.pushes.stop()  # its last runs reach alerting and the store before they close
            if self.watch is not None:
                await self.watch.close()
            if self.alerting is not None:
                await self.alerting.close()
            self.gc.released()
            starting.close()  # start-up failed: collect again
            self.store = self.pipeline.store = self.reloader.store = None
            await self.probes.close()
            await asyncio.to_thread(store.close)
            self.events.close()  # ends the event streams, so the web server can stop
            if web_runner is not None:
                await web_runner.cleanup()
            if public_runner is not None:
                await public_runner.cleanup()
        return stopped(store, cancelled)


def _disabled(spec: AgentSpec) -> dict[str, CheckSpec]:
    """The checks of spec that do not run, by name (the enabled ones: ResultPipeline.spec)."""
    return {c.name: c for c in spec.checks if not c.enabled}


def _probed(checks: list[CheckSpec]) -> list[CheckSpec]:
    """The checks an executor runs: all but push checks, which the agent's PushMonitor watches."""
    return [c for c in checks if c.kind != "push"]
