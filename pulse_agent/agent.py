"""Wires the shells together: config -> scheduler -> prober -> (store, metrics, log)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pulse_agent.alerts import humans
from pulse_agent.alerts.alerting import Alerting
from pulse_agent.alerts.humans import Pause
from pulse_agent.alerts.machine import Event as AlertEvent
from pulse_agent.alerts.sender import Deliver, Sender
from pulse_agent.capacity import checks_per_second, resolve_workers
from pulse_agent.clock import Clock, SystemClock, sleep_until
from pulse_agent.config import ConfigInvalid, Memo, gc_paused, load_config
from pulse_agent.config.files import digest, read_sources
from pulse_agent.config.model import AgentSpec, CheckSpec
from pulse_agent.listen import api_exposure
from pulse_agent.live.diff import RESTART_SETTINGS, ConfigDiff, diff
from pulse_agent.live.events import EventHub
from pulse_agent.live.reload import Reload, record_version
from pulse_agent.live.watch import watch_config
from pulse_agent.probe.connect import forget_targets
from pulse_agent.probe.http import Prober, run_budget
from pulse_agent.result import Result, iso
from pulse_agent.schedule import missed_due
from pulse_agent.scheduler import Scheduler
from pulse_agent.shard import Shard, owned
from pulse_agent.store import ResultStore, retention
from pulse_agent.store.db import History
from pulse_agent.web.api import api_routes
from pulse_agent.web.app import make_app, serve
from pulse_agent.web.limits import inbound_budget, raise_nofile
from pulse_agent.web.metrics import Metrics
from pulse_agent.web.probe import ProbeEndpoint
from pulse_agent.workers import WorkerPool, WorkerSettings

log = logging.getLogger("pulse_agent.agent")
results_log = logging.getLogger("pulse_agent.result")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line overrides of the config's agent settings."""

    database: str | None = None
    listen: str | None = None
    config: str | None = None  # file or directory to reload from; None: no reloads
    shard: str | None = None  # K/N over agent.shard (--shard, PULSE_SHARD)
    watch: bool = True  # follow changes of the config on disk


def log_result(result: Result) -> None:
    """One structured line per finished run (nothing is formatted when info is off)."""
    if results_log.isEnabledFor(logging.INFO):
        fields = result.to_json()
        fields.pop("ts")
        results_log.info("result", extra=fields)


def freeze_heap() -> None:
    """Exempt what start-up built (specs, metric children, library state) from full collections.

    Measured: without this, a full collection scans that whole heap every few seconds at 1,000
    checks/s and stalls the event loop 45-80 ms (docs/performance.md). No collection first: at
    10,000 checks start-up leaves about 325 unreachable objects, and finding them took 75 ms.
    """
    gc.freeze()


async def apprise_deliver(url: str, title: str, body: str, kind: str, timeout: float) -> str | None:
    """Deliver through Apprise, imported on first use: agents without notifiers never load it."""
    from pulse_agent.alerts.notify import deliver

    return await deliver(url, title, body, kind, timeout)


def stopped(store: ResultStore, cancelled: int) -> int:
    """The last log line, and the exit status: 0, or 1 when results could not be written (the
    line then says how many, at error level)."""
    fields = {"results_written": store.written, "results_not_written": store.dropped, "cancelled_runs": cancelled}
    if store.dropped:
        log.error("agent stopped", extra={**fields, "database_error": store.failing})
        return 1
    log.info("agent stopped", extra=fields)
    return 0


def disk_digest(config: str) -> str:
    """Digest of the config as it is on disk now; "unreadable" while it cannot be read (reload says why)."""
    try:
        return digest(read_sources(config))
    except (ConfigInvalid, OSError, ValueError):
        return "unreadable"


MAINTAIN_EVERY_S = 600.0  # roll up hours and apply retention this often


async def _store_call(store: ResultStore | None, fn: Callable[[Any], None]) -> None:
    if store is None:
        raise RuntimeError("the database is not open")
    await store.call(fn)


def drain_budget(checks: tuple[CheckSpec, ...]) -> float:
    """Longest time an in-flight run can still take, plus a second to store it."""
    return max((run_budget(c) for c in checks), default=0.0) + 1.0


class Agent:
    """One running agent: owns the store, prober, scheduler, metrics and web surface."""

    def __init__(
        self,
        spec: AgentSpec,
        options: RunOptions = RunOptions(),
        *,
        clock: Clock | None = None,
        deliver: Deliver | None = None,
        memo: Memo | None = None,
    ) -> None:
        self.shard = Shard.parse(options.shard or spec.agent.shard)
        self.spec = owned(spec, self.shard)
        self.database = options.database or spec.agent.database
        self.listen = options.listen or spec.agent.listen
        self.clock = clock or SystemClock()
        self.metrics = Metrics(str(self.shard), spec.agent.location)
        self.options = options
        self._memo = memo or Memo()
        self.events = EventHub()
        self.last_results: dict[str, Result] = {}
        self.store: ResultStore | None = None
        self.alerting: Alerting | None = None
        self._deliver = deliver
        self.prober = Prober(wall=self.clock.time)
        self.probes = ProbeEndpoint(self.spec.modules, spec.agent.max_concurrency)  # /probe
        self.scheduler = Scheduler(
            self._run_check,
            clock=self.clock,
            max_concurrency=spec.agent.max_concurrency,
            on_skip=self.metrics.skipped,
            on_lag=self.metrics.scheduler_lag.observe,
            on_due=self.metrics.next_run,
        )
        self.metrics.inflight.set_function(lambda: self.scheduler.inflight)
        self.workers, self.workers_reason = resolve_workers(
            spec.agent.workers, checks_per_second((c for c in self.spec.checks if c.enabled), self.clock.time()), os.cpu_count() or 1
        )
        self.pool = (
            WorkerPool(
                self.workers,
                WorkerSettings(spec.agent.max_concurrency, spec.agent.log_format, spec.agent.log_level),
                self._worker_results,
                self.metrics.worker_restarts.inc,
            )
            if self.workers
            else None
        )
        self._by_name: dict[str, CheckSpec] = {}
        self.paused: dict[str, Pause] = {}  # paused through the API, kept in the database
        self._reload_lock = asyncio.Lock()
        self._refused_digest = ""  # a broken config is reported once, not at every file event
        self.port: int | None = None
        self.started = asyncio.Event()  # set once serving and catch-up runs have been started

    def ready(self) -> tuple[bool, str]:
        """Ready when the config is loaded, the database is open and takes the results written to it."""
        if self.store is None:
            return False, "database not open"
        if (failing := self.store.failing) is not None:
            return False, f"writing results fails ({self.store.pending} waiting): {failing}"
        return True, f"ready: {len(self._by_name)} checks"

    async def _run_check(self, spec: CheckSpec, due: float) -> Result:
        return await self._finished(spec, await self.prober.run(spec, due))

    async def _finished(self, spec: CheckSpec, result: Result) -> Result:
        """Everything that follows a run, wherever it ran: store, metrics, events, log, alerts."""
        if spec.maintenance and spec.in_maintenance(result.ts):
            result = replace(result, maintenance=True)
        if self.store is not None:
            self.store.submit(result)
        self.metrics.observe(result)
        self.last_results[spec.name] = result
        if self.events.active:
            self.events.publish("result", result.to_json())
        log_result(result)
        if self.alerting is not None and (events := self.alerting.observe(spec, result)) is not None:
            await events  # recorded before the run counts as finished: the next run of this check sees them
        return result

    async def _worker_results(self, results: list[Result], skipped: list[str], dues: dict[str, float | None]) -> None:
        """Results a probe worker sent, in the order its runs finished, and its checks' next due times."""
        for name in skipped:
            self.metrics.skipped(name)
        for name, due in dues.items():
            self.metrics.next_run(name, due)
        for result in results:
            if result.scheduled_ts is not None:
                self.metrics.scheduler_lag.observe(max(0.0, result.ts - result.scheduled_ts))
            spec = self._by_name.get(result.check)
            if spec is not None:
                await self._finished(spec, result)
            elif self.store is not None:  # removed by a reload while it ran: kept as history only
                self.store.submit(result)

    async def _start_alerting(self, store: ResultStore, checks: list[CheckSpec]) -> Alerting:
        """Alert state restored from the store, undelivered notifications queued again."""
        sender = Sender(store, self.clock, self._deliver or apprise_deliver, on_outcome=self.metrics.notification)
        alerting = Alerting(store, sender, self.clock, on_event=self._publish_alert)
        alerting.set_notifiers(self.spec.notifiers)
        await alerting.restore(checks)
        self.metrics.notification_queue.set_function(lambda: alerting.queued)
        self.metrics.incidents_open.set_function(lambda: alerting.open_incidents)
        self.alerting = alerting
        return alerting

    def _publish_alert(self, event: AlertEvent) -> None:
        if self.events.active:
            incident = event.incident
            self.events.publish("incident", {
                "event": event.kind, "check": event.check, "ts": iso(event.result.ts),
                "incident": incident.id if incident else None,
                "opened_at": iso(incident.opened_at) if incident else None,
                "resolved_at": iso(incident.resolved_at) if incident and incident.resolved_at else None})  # fmt: skip

    async def run_now(self, spec: CheckSpec) -> Result | None:
        """Run spec now and return its result; None when a run of it is in progress already."""
        task = await self.scheduler.run_now(spec, self.clock.time())
        if task is None:
            return None
        result = await task
        return result if isinstance(result, Result) else None

    async def reload(self, reason: str) -> Reload:
        """Load the config again and apply what changed; a config with errors changes nothing."""
        async with self._reload_lock:
            return await self._reload(reason)

    async def reload_if_changed(self) -> Reload | None:
        """Reload when the files' digest differs from the running (or last refused) config's."""
        if self.options.config is None:
            return None
        now = await asyncio.to_thread(disk_digest, self.options.config)
        if now == self.spec.digest and self._refused_digest:
            async with self._reload_lock:  # a refused edit was undone: the files are the running config again
                if self._refused_digest:
                    self._refused_digest = ""
                    self.metrics.config_restored()
                    log.info("config on disk is the running config again", extra={"digest": now})
            return None
        if now in (self.spec.digest, self._refused_digest):
            return None
        return await self.reload("file")

    async def _reload(self, reason: str) -> Reload:
        if self.options.config is None:
            return Reload(False, reason, self.spec.digest, errors=("the agent was not started from a config file",))
        loading = time.perf_counter()
        try:
            new = owned(await asyncio.to_thread(load_config, self.options.config, None, self._memo), self.shard)
        except ConfigInvalid as exc:
            return await self._refuse(reason, tuple(str(e) for e in exc.errors))
        except Exception as exc:  # all or nothing: whatever went wrong, the running config stays
            log.exception("loading the config failed")
            return await self._refuse(reason, (f"{self.options.config}: cannot be loaded ({type(exc).__name__}: {str(exc)[:200]})",))
        started = time.perf_counter()
        load_ms = round((started - loading) * 1000, 1)
        old = self.spec
        try:
            change = diff(old, new)
            diffed = time.perf_counter()
            stopped = self._apply(new, change)
        except Exception as exc:
            log.exception("applying the config failed; going back to the running one")
            self._apply(old, diff(new, old))
            return await self._refuse(reason, (f"{self.options.config}: cannot be applied ({type(exc).__name__}: {str(exc)[:200]})",))
        if self.alerting is not None:  # checks no longer run: their incidents close
            await self.alerting.retire(stopped)
        diff_ms, apply_ms = round((diffed - started) * 1000, 1), round((time.perf_counter() - diffed) * 1000, 1)
        self._refused_digest = ""
        self.metrics.reloaded(True, self.clock.time())
        await self._record_version(change, reason)
        restart = [s for s in change.settings if s in RESTART_SETTINGS]
        notifiers = change.notifiers
        fields = {"reason": reason, "digest": new.digest, "load_ms": load_ms, "diff_ms": diff_ms, "apply_ms": apply_ms,
                  **change.checks.counts(),
                  "notifiers_changed": len(notifiers.added) + len(notifiers.removed) + len(notifiers.changed)}  # fmt: skip
        log.info("config reloaded", extra=fields)
        if restart:
            log.warning("these agent settings take effect at the next restart", extra={"settings": restart})
        return Reload(True, reason, new.digest, change)

    async def _refuse(self, reason: str, errors: tuple[str, ...]) -> Reload:
        """A refused reload: counted, logged once per content, the running config untouched."""
        self.metrics.reloaded(False, self.clock.time())
        log.error("config reload refused; still running the last good config", extra={
            "reason": reason, "running": self.spec.digest, "errors": list(errors)})  # fmt: skip
        self._refused_digest = await asyncio.to_thread(disk_digest, self.options.config or "")
        return Reload(False, reason, self.spec.digest, errors=errors)

    def _apply(self, new: AgentSpec, change: ConfigDiff) -> list[str]:
        """Swap in the new config: unchanged checks keep their place in time, counters and incidents.
        Returns the checks that stopped running (removed, or now disabled)."""
        before = {c.name for c in self._running()}
        self.spec = new
        running = self._schedule(prompt=True)
        stopped = sorted(before - {c.name for c in running})
        for name in stopped:
            self.last_results.pop(name, None)
        if change.checks.removed or change.checks.changed:
            forget_targets()  # no parsed URL keeps an old check's credentials
        if self.alerting is not None:
            self.alerting.set_notifiers(new.notifiers)
        self.probes.set_modules(new.modules)
        if "log_level" in change.settings:
            logging.getLogger("pulse_agent").setLevel(new.agent.log_level.upper())
        return stopped

    def _running(self) -> list[CheckSpec]:
        """The checks of the config this agent runs (its shard's, enabled, not paused)."""
        return [c for c in self.spec.checks if c.enabled and c.name not in self.paused]

    async def pause(self, spec: CheckSpec, author: str | None, reason: str | None) -> Pause:
        """Stop running spec until resumed (across reloads and restarts); its open incident stays open."""
        pause = self.paused.get(spec.name) or Pause(spec.name, self.clock.time(), author, reason)
        await _store_call(self.store, lambda con: humans.save_pause(con, pause))
        self.paused[spec.name] = pause
        self._schedule(prompt=False)
        log.info("check paused", extra={"check": spec.name, "by": author, "reason": reason})
        return pause

    async def resume(self, spec: CheckSpec) -> bool:
        """Run spec again (at once, then on its schedule); False when it was not paused."""
        if spec.name not in self.paused:
            return False
        await _store_call(self.store, lambda con: humans.drop_pause(con, spec.name))
        del self.paused[spec.name]
        self._schedule(prompt=True)
        log.info("check resumed", extra={"check": spec.name})
        return True

    def _schedule(self, *, prompt: bool) -> list[CheckSpec]:
        """Hand the running checks to the scheduler and the metrics; prompt: a reload (see Scheduler)."""
        checks = self._running()
        self._by_name = {c.name: c for c in checks}
        self.metrics.set_checks([c.name for c in checks], {c.name: c.labels for c in checks})  # first: it takes next due times
        if self.pool is not None:
            self.pool.set_checks(checks, prompt)
        self.scheduler.set_checks(checks if self.pool is None else [], prompt=prompt)
        return checks

    async def _record_version(self, change: ConfigDiff, reason: str) -> None:
        if self.store is None:
            return
        spec, at = self.spec, self.clock.time()
        try:
            await self.store.call(lambda con: record_version(con, spec, change, reason, at))
        except Exception as exc:  # the reload stands; only its record is missing
            log.error("recording config version %s failed: %s", spec.digest, exc)

    async def maintain_storage(self) -> dict[str, int]:
        """Roll up complete hours, then delete raw results past agent.retention (in batches, so
        writes go on between them) and hourly rows past agent.rollup; what was done."""
        store, now, settings = self.store, self.clock.time(), self.spec.agent
        if store is None:
            return {}
        rolled = await store.call(lambda con: retention.roll_up(con, now))
        backfilled = 0  # hours rolled up by a release without sketches: before retention deletes their raw rows
        while n := await store.call(retention.backfill_sketches):
            backfilled += n
        deleted = 0
        while True:
            n = await store.call(lambda con: retention.delete_raw_batch(con, now - settings.retention))
            deleted += n
            if n < retention.BATCH:
                break
        expired = await store.call(lambda con: retention.delete_old_rollups(con, now - settings.rollup))
        done = {"hours_rolled_up": rolled, "sketches_backfilled": backfilled, "results_deleted": deleted, "hourly_rows_deleted": expired}
        if any(done.values()):
            log.info("storage maintained", extra=done)
        return done

    async def _maintain_forever(self) -> None:
        while True:
            try:
                await self.maintain_storage()
            except Exception as exc:  # a full disk must not stop the checks; the next round retries
                log.error("storage maintenance failed: %s", exc)
            await sleep_until(self.clock, self.clock.time() + MAINTAIN_EVERY_S)

    async def _catch_up(self, checks: list[CheckSpec], history: History) -> None:
        """Runs missed while the agent was down: one catch-up per `missed: run_once` check, else a log line."""
        now = self.clock.time()
        for spec in checks:
            due = missed_due(spec.schedule, history.last_runs.get(spec.name), history.last_seen, now)
            if due is None:
                continue
            fields = {"check": spec.name, "missed_due": iso(due), "policy": spec.missed}
            if spec.missed == "run_once":
                log.info("running a missed run now", extra=fields)
                await self.scheduler.run_now(spec, due)
            else:
                log.info("skipping a run missed while the agent was down", extra=fields)

    async def run(self, stop: asyncio.Event) -> int:
        """Run until stop is set; then finish in-flight runs, flush and close. Returns the exit code."""
        started = time.monotonic()
        settings = self.spec.agent
        if api_exposure(self.listen, settings.api_token, settings.insecure_api) == "insecure":
            log.warning(
                "the API is open to anyone who can reach the listen address: agent.insecure_api is true and agent.api_token is not set",
                extra={"listen": self.listen},
            )
        # The store first: a locked or missing database must fail before anything starts.
        store = await asyncio.to_thread(
            ResultStore,
            self.database,
            on_written=self.metrics.results_written.inc,
            on_write_failed=self.metrics.results_write_failures.inc,
            export_dir=settings.export_dir,
            memory_limit=settings.query_memory_limit,
            query_timeout=settings.query_timeout,
        )
        self.metrics.results_unwritten.set_function(lambda: store.pending)
        web_runner = None
        starting = contextlib.ExitStack()  # until freeze_heap: start-up only builds what lives on
        try:
            starting.enter_context(gc_paused())
            app = make_app(self.metrics, self.ready, [*api_routes(self), *self.probes.routes()], self.spec.agent.api_token)
            budget = inbound_budget(raise_nofile(), self.spec.agent.max_concurrency)
            if budget.tight:
                fields = {"nofile": budget.nofile, "max_concurrency": self.spec.agent.max_concurrency}
                log.warning("the file-descriptor limit is low for agent.max_concurrency: runs may fail with "
                            "'Too many open files'; raise it (ulimit -n, LimitNOFILE=)", extra=fields)  # fmt: skip
            web_runner, self.port = await serve(app, self.listen, budget, self.metrics)
            self.store = store
            self.paused = await store.call(humans.load_pauses)
            checks = self._running()
            self.metrics.config_applied(self.clock.time())
            await self._start_alerting(store, [c for c in self.spec.checks if c.enabled])  # a paused check keeps its incident
            self._schedule(prompt=False)
            if self.pool is not None:
                await self.pool.start()
            await self._catch_up(checks, store.history)
            await self._record_version(diff(AgentSpec(source=self.spec.source), self.spec), "start")
            watcher = None
            if self.options.config is not None and self.options.watch:
                watcher = asyncio.create_task(watch_config(Path(self.options.config), self.reload_if_changed, stop), name="watcher")
            freeze_heap()
            starting.close()
            self.started.set()
            log.info(
                "agent started",
                extra={
                    "config": self.spec.source,
                    "checks": len(checks),
                    "shard": str(self.shard),
                    "workers": len(self.pool.workers) if self.pool else 0,
                    "workers_reason": self.workers_reason,
                    "database": self.database,
                    "listen": f"{self.listen.rpartition(':')[0]}:{self.port}",
                    "startup_ms": round((time.monotonic() - started) * 1000, 1),
                    "nofile": budget.nofile,
                    "max_connections": budget.max_connections,
                },
            )
            loop_task = asyncio.create_task(self.scheduler.run(), name="scheduler")
            maintenance = asyncio.create_task(self._maintain_forever(), name="storage-maintenance")
            await stop.wait()
            if watcher is not None:
                await watcher
            log.info("stopping: finishing in-flight runs", extra={"inflight": self.scheduler.inflight})
            self.scheduler.stop()
            await loop_task
            if self.pool is not None:
                await self.pool.stop(drain_budget(self.spec.checks))
            maintenance.cancel()
            await asyncio.gather(maintenance, return_exceptions=True)
            cancelled = await self.scheduler.drain(drain_budget(self.spec.checks))
        finally:
            if self.alerting is not None:
                await self.alerting.close()
            gc.unfreeze()  # the heap was this agent's; an embedding process keeps collecting it
            starting.close()  # start-up failed: collect again
            self.store = None
            await self.prober.close()
            await self.probes.close()
            await asyncio.to_thread(store.close)
            self.events.close()  # ends the event streams, so the web server can stop
            if web_runner is not None:
                await web_runner.cleanup()
        return stopped(store, cancelled)
