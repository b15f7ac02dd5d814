"""Shell: evaluates SLO burn rates and SQL rules on the clock and hands what fired or resolved to Alerting.

SLOs: every SLO_EVERY seconds, one query counts runs and failures of every SLO check over every
window any of them needs; alerts/burn.py decides. Rules: each on its own `every`, its SQL through
the same path as `report --sql` (the sandbox: read-only, timeout, bounded answer). What fires
and resolves is decided by alerts/condition.py and recorded with its messages in one transaction.
An instance waiting out its `for` is not persisted: after a restart its `for` starts again.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

import duckdb

from pulse_agent.alerts import condition, outbox
from pulse_agent.alerts.burn import Counts, budget_line, slo_actives, slo_windows
from pulse_agent.alerts.condition import Active, Change, Tracked
from pulse_agent.clock import Clock, sleep_until
from pulse_agent.config.model import AgentSpec, CheckSpec, RuleSpec
from pulse_agent.report import Report, ReportError, ReportRequest
from pulse_agent.result import utc
from pulse_agent.store import ResultStore

log = logging.getLogger("pulse_agent.alerts")

SLO_EVERY = 60.0  # seconds between SLO evaluations (the shortest default window is 5 minutes)
Ask = Callable[[ReportRequest], Awaitable[Report]]
Raise = Callable[[Sequence[tuple[Change, tuple[str, ...], str]]], Awaitable[None]]


def slo_counts(con: duckdb.DuckDBPyConnection, checks: list[str], lengths: list[float], now: float) -> dict[str, dict[float, Counts]]:
    """Runs and failures per check over every window (now - length, now], maintenance excluded: one
    counting statement for all checks and windows (after a lookup of where the rollups end). Whole
    hours already rolled up come from results_hourly (30 days read 720 rows a check, not every
    run); raw results give the rest: each window's partial first hour, and what is not rolled up
    yet, as reports split a window (store/queries.py). Range scans, so DuckDB skips the rest."""
    if not checks or not lengths:
        return {}
    [(rolled,)] = con.execute("SELECT epoch(max(hour)) + 3600 FROM results_hourly").fetchall()
    if rolled is not None:  # only hours that ended by now (an evaluation of the past, or a clock behind the rollups)
        rolled = min(rolled, math.floor(now / 3600) * 3600)
    lowest = now - max(lengths)
    recent = max(lowest, rolled) if rolled is not None else lowest  # raw rows after this are not rolled up
    scans = [f"SELECT check_name, ts, ok, -1 AS part FROM results WHERE ts >= to_timestamp({recent}) AND ts <= $now AND NOT maintenance"]
    cols = []
    for i, w in enumerate(lengths):
        start = now - w
        first = math.floor(start / 3600) * 3600 + 3600  # the first hour starting after start (the window excludes start)
        hours = rolled is not None and first < rolled
        # raw rows before `recent` (those from it on are one scan for all windows)
        part = (start, first) if hours else (start, recent) if start < recent else None
        if part is not None:
            scans.append(
                f"SELECT check_name, ts, ok, {i} FROM results WHERE ts > to_timestamp({part[0]}) AND ts < to_timestamp({part[1]})"
                " AND NOT maintenance"
            )
        hour = f"ts >= to_timestamp({first}) AND ts < to_timestamp({rolled})" if hours else "false"
        counted = f"CASE WHEN is_hour THEN {hour} ELSE part = {i} OR (part = -1 AND ts > to_timestamp({start})) END"
        cols.append(f"coalesce(sum(n) FILTER (WHERE {counted}), 0), coalesce(sum(f) FILTER (WHERE {counted}), 0)")
    hourly = (
        f"UNION ALL SELECT check_name, hour, runs, runs - ok_runs, NULL, true FROM results_hourly"
        f" WHERE hour >= to_timestamp({math.floor(lowest / 3600) * 3600}) AND hour < to_timestamp({rolled})"
        " AND check_name IN (SELECT check_name FROM chosen)"
    ) if rolled is not None else ""  # fmt: skip
    sql = f"""
        WITH chosen AS (SELECT unnest($checks) AS check_name),
        raw AS ({" UNION ALL ".join(scans)}),
        runs AS (
            SELECT check_name, ts, 1 AS n, CASE WHEN ok THEN 0 ELSE 1 END AS f, part, false AS is_hour
            FROM raw WHERE check_name IN (SELECT check_name FROM chosen)
            {hourly}
        )
        SELECT check_name, {", ".join(cols)} FROM runs GROUP BY check_name"""
    rows = con.execute(sql, {"now": utc(now), "checks": checks}).fetchall()
    found = {row[0]: {w: Counts(int(row[1 + 2 * i]), int(row[2 + 2 * i])) for i, w in enumerate(lengths)} for row in rows}
    empty = {w: Counts(0, 0) for w in lengths}
    return {name: found.get(name, empty) for name in checks}


class Watch:
    """The SLO and rule evaluations of one agent, on its clock."""

    def __init__(self, store: ResultStore, clock: Clock, ask: Ask, raise_: Raise) -> None:
        self._store, self._clock, self._ask, self._raise = store, clock, ask, raise_
        self._slos: list[CheckSpec] = []
        self._rules: dict[str, RuleSpec] = {}
        self._tracked: dict[str, Tracked] = {}
        self._due: dict[str, float] = {}  # "slo" or "rule:<name>" -> next evaluation
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.evaluations = 0  # finished, for the clock's user to wait on

    async def set_config(self, spec: AgentSpec) -> None:
        """Evaluate these checks' SLOs and these rules from now on (a rule that changed starts afresh;
        the open incidents of a rule or SLO no longer configured close without a message)."""
        self._slos = [c for c in spec.checks if c.enabled and c.slo is not None and c.slo_alerts is not None]
        changed = {r.name for r in spec.rules if self._rules.get(r.name) not in (None, r)}
        self._rules = {r.name: r for r in spec.rules}
        now = self._clock.time()
        slos = {(f"slo:{sev}", c.name) for c in self._slos for sev in ("page", "ticket")}
        rules = {("rule", name) for name in self._rules}
        gone = [k for k, t in self._tracked.items() if (t.active.source, t.active.name) not in slos | rules]
        closing = [self._tracked.pop(k) for k in gone]
        closed = [(Change("rule_resolved", t.active, replace(t.incident, resolved_at=now)), (), "") for t in closing if t.incident]
        if closed:
            await self._raise(closed)
        keep = {f"rule:{name}" for name in self._rules if name not in changed} | ({"slo"} if self._slos else set())
        self._due = {k: v for k, v in self._due.items() if k in keep}
        for key in ({"slo"} if self._slos else set()) | {f"rule:{n}" for n in self._rules}:
            self._due.setdefault(key, now)
        self._wake.set()

    async def start(self, spec: AgentSpec) -> None:
        """Take up the open SLO and rule incidents, then evaluate on the clock."""
        labels = {c.name: c.labels for c in spec.checks}
        self._tracked = condition.restored(await self._store.call(outbox.open_conditions), labels)
        await self.set_config(spec)
        self._task = asyncio.create_task(self._run(), name="slo-rules")

    async def close(self) -> None:
        """Stop evaluating (an evaluation under way is cancelled; nothing it had not recorded counts)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            when = min(self._due.values())
            if when > self._clock.time():
                self._wake.clear()
                sleeper = asyncio.ensure_future(sleep_until(self._clock, when))
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait([sleeper, waker], return_when=asyncio.FIRST_COMPLETED)
                sleeper.cancel()
                waker.cancel()
                continue
            now = self._clock.time()
            for key in [k for k, t in self._due.items() if t <= now]:
                try:
                    await self.evaluate(key, now)
                except Exception as exc:  # one bad evaluation must not stop the others
                    log.error("alert evaluation failed", extra={"evaluation": key, "error": str(exc)})
                self.evaluations += 1
                every = SLO_EVERY if key == "slo" else self._rules[key[5:]].every if key[5:] in self._rules else None
                if every is not None and key in self._due:
                    self._due[key] = now + every

    async def evaluate(self, key: str, now: float) -> list[Change]:
        """One evaluation ("slo" or "rule:<name>") at now: what fired and resolved, recorded and sent."""
        if key == "slo":
            specs = {c.name: c for c in self._slos}
            lengths = sorted({w for c in self._slos if c.slo_alerts is not None for w in slo_windows(c.slo_alerts)})
            counts = await self._store.read(lambda con: slo_counts(con, sorted(specs), lengths, now))
            active = [a for c in self._slos for a in slo_actives(c, counts[c.name])]
            changes = self._step(lambda a: a.source.startswith("slo:"), active, now, 0.0)
            out = []
            for ch in changes:
                spec = specs.get(ch.active.name)
                alerts = spec.slo_alerts if spec is not None else None
                notify = () if alerts is None else alerts.page if ch.active.source == "slo:page" else alerts.ticket
                figures = budget_line(spec, counts[spec.name]) if spec is not None else None
                out.append((ch, notify, condition.body(ch, figures)))
        else:
            rule = self._rules[key[5:]]
            try:
                report = await self._ask(ReportRequest(now - rule.window, now, sql=rule.sql))
            except ReportError as exc:
                log.error("rule failed", extra={"rule": rule.name, "error": str(exc)})
                return []  # its instances stay as they were: a failing query is no evidence either way
            active = condition.rule_actives(rule.name, report.columns, report.rows)
            changes = self._step(lambda a: a.source == "rule" and a.name == rule.name, active, now, rule.hold)
            out = [(ch, rule.notify, condition.body(ch, None, rule.description)) for ch in changes]
        if out:
            await self._raise(out)
        return [ch for ch, _, _ in out]

    def _step(self, mine: Callable[[Active], bool], active: Iterable[Active], now: float, hold: float) -> list[Change]:
        scope = {k: t for k, t in self._tracked.items() if mine(t.active)}
        after, changes = condition.step(scope, active, now, hold)
        for k in scope:
            self._tracked.pop(k)
        self._tracked.update(after)
        return changes
