"""The narrow port the web layer sees of a running agent: its checks, the status of one, read-only
queries, live events, run-now, reload, silences, acks and pause/resume. `web/` depends on this, never on the agent itself."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

import duckdb

from pulse_agent.alerts.humans import Pause
from pulse_agent.alerts.machine import Incident
from pulse_agent.alerts.silence import Silence
from pulse_agent.config.model import CheckSpec, ModuleSpec
from pulse_agent.live.events import Subscription
from pulse_agent.live.reload import Reload
from pulse_agent.probe.push import PushState, Signal
from pulse_agent.report import Report, ReportRequest
from pulse_agent.result import Result
from pulse_agent.store.connect import StoreClosed as StoreClosed  # the port's name for it (503)
from pulse_agent.store.export import Exported

T = TypeVar("T")


class AlertingClosed(Exception):
    """Alerting has not started (or has stopped): silences and acks cannot be handled now."""


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """What is known of one check now."""

    running: bool  # a run of it is in progress, wherever it runs
    in_maintenance: bool
    consecutive_failures: int
    consecutive_successes: int
    degraded: bool
    incident: Incident | None  # the open one
    next_due: float | None  # None: disabled, or a one-shot that ran
    last_result: Result | None
    paused: Pause | None = None  # paused through the API (next_due is then None)


class AgentView(Protocol):
    """A running agent as the web layer uses it."""

    def now(self) -> float:
        """The agent's clock."""
        ...

    def checks(self) -> tuple[CheckSpec, ...]:
        """Every check of the running config this agent serves (disabled ones too)."""
        ...

    def check(self, name: str) -> CheckSpec | None:
        """The check called name, if the running config has it."""
        ...

    def status(self, spec: CheckSpec) -> CheckStatus:
        """The status of one check."""
        ...

    def modules(self) -> tuple[ModuleSpec, ...]:
        """The /probe modules of the running config."""
        ...

    async def read(self, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run one of the agent's own read-only queries on the results database; StoreClosed while it is not open."""
        ...

    async def report(self, question: ReportRequest) -> Report:
        """Answer a report request in the sandbox user queries run in (ReportError, QueriesBusy, StoreClosed)."""
        ...

    def export_dir(self) -> str | None:
        """Where the API may write exports (agent.export_dir); None: nowhere."""
        ...

    async def export(self, out: str, start: float, end: float, agent_name: str) -> Exported:
        """Export [start, end) as Parquet under out; what was written."""
        ...

    def subscribe(self) -> AbstractContextManager[Subscription]:
        """Live events (results, incidents) until the agent stops."""
        ...

    async def run_now(self, spec: CheckSpec) -> Result | None:
        """Run spec now where it runs; its result, or None while a run of it is in progress."""
        ...

    async def reload(self, reason: str) -> Reload:
        """Load the config again and apply it, or say why not."""
        ...

    def silences(self) -> list[Silence]:
        """Every silence alerting knows, expired ones too (AlertingClosed before alerting starts)."""
        ...

    async def add_silence(self, body: dict[str, object]) -> Silence:
        """A new silence from an API body (ValueError naming the wrong field; AlertingClosed)."""
        ...

    async def expire_silence(self, silence_id: str) -> Silence | None:
        """End a silence now; None when there is no such silence (AlertingClosed)."""
        ...

    async def ack(self, incident_id: str, by: str | None) -> Incident | None:
        """Acknowledge an open incident (no reminders while acked); None when none is open with that id (AlertingClosed)."""
        ...

    async def pause(self, spec: CheckSpec, author: str | None, reason: str | None) -> Pause:
        """Stop running spec until resumed, across reloads and restarts (StoreClosed)."""
        ...

    async def resume(self, spec: CheckSpec) -> bool:
        """Run spec again; False when it was not paused (StoreClosed)."""
        ...


class PushReceiver(Protocol):
    """What /push/{check} (web/push.py) may ask of a running agent: its push checks, and a ping."""

    def push_check(self, name: str) -> CheckSpec | None:
        """The running push check called name; StoreClosed while pings cannot be kept (starting, stopping)."""
        ...

    async def push(self, spec: CheckSpec, signal: Signal, code: int | None = None) -> Result | None:
        """A ping of spec: the run it finished, once through the pipeline (None for /start)."""
        ...

    def push_state(self, name: str) -> PushState | None:
        """What the agent knows of the push check called name (None: no such push check)."""
        ...
