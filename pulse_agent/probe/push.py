"""Pure: the verdicts of a push (heartbeat) check. The agent does not run it; the job pings, and time
passes. A state of plain data, a ping or the clock in, the new state and a Result (or none) out.

Due times come from the check's schedule: cron, calendar phrases and one-shot times fire where they
say, in the check's time zone; an interval counts from the last ping (healthchecks.io's "simple"
checks), or from when the agent began to watch the check. A due time is met by a success or failure
ping at most `grace` before it or after it; with no ping by due + grace the run fails (`late`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from pulse_agent.config.model import CheckSpec, PushSpec
from pulse_agent.durations import format_duration
from pulse_agent.result import Failure, Result, iso
from pulse_agent.schedule import Interval, Schedule, time_zone

Signal = Literal["success", "start", "fail", "exit"]
_NO_PUSH = PushSpec()


@dataclass(frozen=True, slots=True)
class PushState:
    """What the agent remembers of a push check (persisted, so a ping before a restart counts)."""

    since: float  # when the agent began to watch it: the first due time is after this
    last_ping: float | None = None  # the last success or failure ping
    accounted: float | None = None  # the latest due time met by a ping or reported late
    started: float | None = None  # a /start not followed by its end yet


def due(spec: CheckSpec, state: PushState) -> float | None:
    """The due time a ping is expected for next (None: none any more, a one-shot that was met)."""
    schedule = spec.schedule
    if isinstance(schedule, Interval):
        base = max(state.since, state.last_ping or state.since, state.accounted or state.since)
        return base + schedule.seconds
    return schedule.next_due(max(state.since, state.accounted or state.since), spec.name)


def deadline(spec: CheckSpec, state: PushState) -> float | None:
    """When the next ping is late: its due time + grace."""
    when = due(spec, state)
    return None if when is None else when + _grace(spec)


def ping(spec: CheckSpec, state: PushState, now: float, signal: Signal, code: int | None = None) -> tuple[PushState, Result | None]:
    """A ping arrived at now: the new state and the run it finishes (None for /start, which only marks the start)."""
    if signal == "start":
        return replace(state, started=now), None
    when, grace = due(spec, state), _grace(spec)
    meets = when is not None and now >= when - grace  # early by up to grace still meets it
    duration = now - state.started if state.started is not None and state.started <= now else None
    cron_met = meets and not isinstance(spec.schedule, Interval)  # an interval counts from the ping itself
    state = replace(state, last_ping=now, started=None, accounted=when if cron_met else state.accounted)
    failures = []
    if signal == "fail":
        failures.append(Failure("signal", "the job signalled failure (/fail)"))
    elif signal == "exit" and code != 0:
        failures.append(Failure("signal", f"the job exited with code {code}"))
    limit = spec.expect.max_duration
    if duration is not None and limit is not None and duration > limit:
        failures.append(
            Failure(
                "latency",
                f"the job took {format_duration(round(duration, 3))} from /start, over expect.max_duration {format_duration(limit)}",
            )
        )
    details: dict[str, object] = {
        "signal": signal,
        **({"exit_code": code} if signal == "exit" else {}),
        "due": iso(when) if meets and when is not None else None,
    }
    return state, _result(spec, now, when if meets else None, failures, duration, details)


def overdue(spec: CheckSpec, state: PushState, now: float) -> tuple[PushState, Result | None]:
    """The clock reached now: a failed run (`late`) for the latest due time whose grace has passed
    unmet, once (several missed while the agent was down make one); else nothing."""
    first, grace = due(spec, state), _grace(spec)
    if first is None or now < first + grace:
        return state, None
    missed = _latest_due(spec.schedule, spec.name, first, now - grace)
    message = (
        f"no ping by {iso(missed + grace)}: due {iso(missed)}{_local(spec, missed)} + grace {format_duration(grace)}; "
        + (f"last ping {iso(state.last_ping)}" if state.last_ping is not None else "never pinged")
        + (f"; started {iso(state.started)} and not finished" if state.started is not None else "")
    )
    details = {
        "signal": "late",
        "due": iso(missed),
        "grace_s": grace,
        "last_ping": None if state.last_ping is None else iso(state.last_ping),
    }
    return replace(state, accounted=missed), _result(spec, now, missed, [Failure("late", message)], None, details)


def _latest_due(schedule: Schedule, name: str, first: float, until: float) -> float:
    """The last due time at or before until, starting from first (which is)."""
    if isinstance(schedule, Interval):
        return first + int((until - first) // schedule.seconds) * schedule.seconds
    latest = schedule.previous_due(until)
    return first if latest is None or latest < first else latest


def _result(
    spec: CheckSpec, now: float, scheduled: float | None, failures: list[Failure], duration: float | None, details: dict[str, object]
) -> Result:
    return Result(
        check=spec.name,
        ts=now,
        ok=not failures,
        response_time_ms=None if duration is None else round(duration * 1000, 3),
        error_kind=failures[0].kind if failures else None,
        error="; ".join(f.message for f in failures) if failures else None,
        scheduled_ts=scheduled,
        details=details,
    )


def _grace(spec: CheckSpec) -> float:
    return (spec.push or _NO_PUSH).grace


def _local(spec: CheckSpec, ts: float) -> str:
    """' (03:00 Europe/Berlin)' for a check in another zone than UTC."""
    if spec.timezone == "UTC":
        return ""
    return f" ({datetime.fromtimestamp(ts, time_zone(spec.timezone)).strftime('%Y-%m-%d %H:%M')} {spec.timezone})"
