"""`pulse-agent check NAME` of a push check: nothing to probe, so it tells what the agent knows of it,
from the database file, or from the running agent that holds it (as `report` does)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import duckdb

from pulse_agent.config.model import CheckSpec, PushSpec
from pulse_agent.durations import format_duration
from pulse_agent.probe import push
from pulse_agent.probe.push import PushState
from pulse_agent.report import ReportError
from pulse_agent.report_source import local_or_agent
from pulse_agent.result import from_iso, iso
from pulse_agent.store import push_state, queries


@dataclass(frozen=True, slots=True)
class PushView:
    """What is known of one push check, and where it came from."""

    next_due: float | None
    last_ping: float | None
    started: float | None
    last_result: dict[str, Any] | None  # as the API answers a result
    source: str  # "the database file", "the agent at URL", or why neither could be read


def push_view(spec: CheckSpec, database: str, listen: str, now: float | None = None) -> PushView:
    """The push check's state from the database file, or the agent holding it; a fresh state when neither has one."""
    now = time.time() if now is None else now

    def local(con: duckdb.DuckDBPyConnection) -> PushView:
        state = push_state.load(con).get(spec.name) or PushState(since=now)
        rows = queries.results(con, spec.name, None, 1)
        return PushView(push.due(spec, state), state.last_ping, state.started, rows[0] if rows else None, "")

    def remote(url: str) -> PushView:
        base = f"{url.rstrip('/')}/api/v1/checks/{spec.name}"
        state, last = _get(f"{base}/push"), _get(base).get("last_result")
        due, ping, started = (from_iso(t) if (t := state.get(k)) else None for k in ("next_due", "last_ping", "started"))
        return PushView(due, ping, started, last, "")

    try:
        view, source = local_or_agent(database, listen, local, remote)
    except ReportError as exc:
        return PushView(push.due(spec, PushState(since=now)), None, None, None, str(exc))
    return PushView(view.next_due, view.last_ping, view.started, view.last_result, source)


def describe(spec: CheckSpec, view: PushView) -> str:
    """The human text of `check NAME` for a push check."""
    grace = (spec.push or PushSpec()).grace
    zone = f" ({spec.timezone})" if spec.timezone != "UTC" else ""
    lines = [
        f"push check {spec.name}: waits for pings at /push/{spec.name} (GET or POST; ?token= or Authorization: Bearer)",
        f"schedule {spec.schedule.text}{zone}, grace {format_duration(grace)}",
        "next due: none (a one-shot that was met)"
        if view.next_due is None
        else f"next due {iso(view.next_due)}, late after {iso(view.next_due + grace)}",
    ]
    if view.last_ping is not None:
        lines.append(f"last ping {iso(view.last_ping)}")
    if view.started is not None:
        lines.append(f"started {iso(view.started)}, not finished yet")
    last = view.last_result
    if last is None:
        lines.append("no result yet")
    else:
        verdict = "OK" if last["ok"] else f"FAIL {last['error_kind']}: {last['error']}"
        lines.append(f"last result {last['ts']}: {verdict}")
    lines.append(f"(from {view.source})")
    return "\n".join(lines)


def as_json(spec: CheckSpec, view: PushView) -> dict[str, Any]:
    """The JSON of `check NAME --format json` for a push check."""
    grace = (spec.push or PushSpec()).grace
    return {
        "check": spec.name,
        "kind": "push",
        "next_due": None if view.next_due is None else iso(view.next_due),
        "deadline": None if view.next_due is None else iso(view.next_due + grace),
        "grace_s": grace,
        "last_ping": None if view.last_ping is None else iso(view.last_ping),
        "started": None if view.started is None else iso(view.started),
        "last_result": view.last_result,
        "source": view.source,
    }


def _get(url: str) -> dict[str, Any]:
    import httpx

    token = os.environ.get("PULSE_API_TOKEN")
    try:
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=30)
    except httpx.HTTPError as exc:
        raise ReportError(f"the database is locked by a running agent, and asking it failed: {exc}") from None
    if answer.status_code != 200:
        raise ReportError(f"the agent answered {answer.status_code}" + (": set PULSE_API_TOKEN" if answer.status_code == 401 else ""))
    result: dict[str, Any] = answer.json()
    return result
