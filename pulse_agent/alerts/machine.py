"""The alert state machine: (state, result) -> (new state, events). Pure: no clock, no I/O.

One incident at most per check. `failure_threshold` consecutive failures open it, with
`opened_at` the first failing run of that streak; `success_threshold` consecutive successes
resolve it, with `resolved_at` the first successful run of that streak. Degraded runs (ok but
slow) count as successes for incidents and, with `notify_on_degraded`, raise their own
degraded / recovered events on the same thresholds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from pulse_agent.config.model import AlertSpec
from pulse_agent.result import Result

EVENT_KINDS = ("failure", "reminder", "resolved", "degraded", "recovered")


@dataclass(frozen=True, slots=True)
class Incident:
    """An open (or just resolved) outage of one check."""

    id: str
    check: str
    opened_at: float
    first_error_kind: str | None
    first_error: str | None
    last_notified_at: float  # when failure or the last reminder fell due
    resolved_at: float | None = None
    acked_at: float | None = None  # acknowledged: no more reminders
    acked_by: str | None = None
    held: str | None = None  # why its failure message was recorded but not sent (silence, depends_on)
    source: str | None = None  # None: the check's own; "slo:page", "slo:ticket", "rule" (alerts/condition.py)
    instance: str | None = None  # of a rule: its row's labels as JSON


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the machine remembers of one check between runs."""

    failures: int = 0  # consecutive failed runs
    successes: int = 0  # consecutive ok runs
    streak_start: Result | None = None  # first run of the current failed/ok streak
    slow: int = 0  # consecutive degraded runs
    fast: int = 0  # consecutive ok, not degraded runs
    incident: Incident | None = None
    degraded: bool = False  # a degraded event went out and no recovered since


@dataclass(frozen=True, slots=True)
class Event:
    """A state change worth recording; `send` says whether notifiers hear of it."""

    kind: str  # one of EVENT_KINDS
    check: str
    result: Result  # the run that caused it
    incident: Incident | None
    send: bool = True


def incident_id(check: str, opened_at: float) -> str:
    """Stable id of the incident of check opened at opened_at."""
    return f"{check}@{round(opened_at * 1000)}"


def step(state: AlertState, result: Result, rule: AlertSpec) -> tuple[AlertState, tuple[Event, ...]]:
    """Feed one run (outside maintenance) to the machine."""
    if result.ok:
        return _success(state, result, rule)
    return _failure(state, result, rule)


def replay(state: AlertState, results: Iterable[Result], rule: AlertSpec) -> tuple[AlertState, list[Event]]:
    """Feed several runs in order; all events they raise."""
    events: list[Event] = []
    for result in results:
        state, new = step(state, result, rule)
        events.extend(new)
    return state, events


def _failure(state: AlertState, result: Result, rule: AlertSpec) -> tuple[AlertState, tuple[Event, ...]]:
    start = state.streak_start if state.failures else result
    failures = state.failures + 1
    incident = state.incident
    events: tuple[Event, ...] = ()
    if incident is None and failures >= rule.failure_threshold:
        assert start is not None
        incident = Incident(
            id=incident_id(result.check, start.ts),
            check=result.check,
            opened_at=start.ts,
            first_error_kind=start.error_kind,
            first_error=start.error,
            last_notified_at=result.ts,
        )
        events = (Event("failure", result.check, result, incident),)
    elif (
        incident is not None
        and incident.acked_at is None
        and rule.remind_every > 0
        and result.ts - incident.last_notified_at >= rule.remind_every
    ):
        incident = replace(incident, last_notified_at=result.ts)
        events = (Event("reminder", result.check, result, incident),)
    return AlertState(failures, 0, start, 0, 0, incident, state.degraded), events


def _success(state: AlertState, result: Result, rule: AlertSpec) -> tuple[AlertState, tuple[Event, ...]]:
    start = state.streak_start if state.successes else result
    successes = state.successes + 1
    slow, fast = (state.slow + 1, 0) if result.degraded else (0, state.fast + 1)
    incident, degraded = state.incident, state.degraded
    events: list[Event] = []
    if incident is not None and successes >= rule.success_threshold:
        assert start is not None
        closed = replace(incident, resolved_at=start.ts)
        events.append(Event("resolved", result.check, result, closed, send=rule.send_on_resolved))
        incident = None
    if rule.notify_on_degraded and incident is None:
        if not degraded and slow >= rule.failure_threshold:
            degraded = True
            events.append(Event("degraded", result.check, result, None))
        elif degraded and fast >= rule.success_threshold:
            degraded = False
            events.append(Event("recovered", result.check, result, None, send=rule.send_on_resolved))
    if incident is None and not degraded and fast == successes:
        return _all_well(successes), tuple(events)
    # A success streak's start only dates the resolution of an open incident; with none open it is never read
    # (only a failure opens one, and a failure starts a new streak): not keeping it frees a Result per check.
    return AlertState(0, successes, start if incident is not None else None, slow, fast, incident, degraded), tuple(events)


@lru_cache(maxsize=256)
def _all_well(runs: int) -> AlertState:
    """The state after `runs` ok, not degraded runs in a row with nothing open: one object for every check
    at that count (checks of one interval run in step), where each kept its own and two numbers."""
    return AlertState(0, runs, None, 0, runs, None, False)
