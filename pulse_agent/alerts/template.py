"""Notification text: {field} templates checked at validate time and rendered per event. Pure."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pulse_agent.redact import redact_url
from pulse_agent.result import iso

if TYPE_CHECKING:
    from pulse_agent.alerts.machine import Event
    from pulse_agent.config.model import CheckSpec, NotifierSpec

# Every field a title or body template may use; each is rendered as text.
FIELDS = (
    "check",  # check name
    "url",  # the check's URL, user info and query values masked
    "event",  # failure, reminder, resolved, degraded, recovered, test
    "summary",  # one line: "api is down (status)", "api is up again after 4m"
    "error_kind",  # timeout, status, ... ("-" when none)
    "error",  # the error message of the run ("-" when none)
    "status_code",  # HTTP status of the run ("-" when none)
    "response_time",  # "123 ms" ("-" when none)
    "started_at",  # incident start, ISO-8601 UTC
    "duration",  # incident length so far, "1h 4m"
    "labels",  # "team=payments, tier=1"
    "incident",  # incident id
)

DEFAULT_TITLE = "[pulse] {summary}"
DEFAULT_BODY = """{summary}
check: {check} ({url})
error: {error_kind}: {error}
status: {status_code}, response time: {response_time}
incident: {incident}, started {started_at}, {duration}
labels: {labels}"""

_SAMPLE = dict.fromkeys(FIELDS, "x")
MAX_WIDTH = 1000  # {check:>99999999999} would build a gigabyte-sized message
_NUMBER = re.compile(r"[0-9]+")


def template_problem(template: str) -> str | None:
    """Why template cannot be rendered, or None when it can."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"invalid template: {exc} (write {{{{ and }}}} for literal braces)"
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        if field not in FIELDS:
            return f"unknown template field {{{field}}}; fields: {', '.join(FIELDS)}"
        if spec and any(len(n) > 4 or int(n) > MAX_WIDTH for n in _NUMBER.findall(spec)):
            return f"{{{field}:{spec[:20]}}}: a width or precision is at most {MAX_WIDTH}"
    try:
        render(template, _SAMPLE)
    except (ValueError, KeyError, IndexError) as exc:
        return f"invalid template: {exc}"
    return None


def render(template: str, fields: Mapping[str, str]) -> str:
    """template with every {field} replaced; only known plain names reach format_map."""
    return template.format_map(fields)


def compose(notifier: NotifierSpec, fields: Mapping[str, str]) -> tuple[str, str]:
    """The title and body notifier sends for these fields (its templates, else the defaults)."""
    return render(notifier.title or DEFAULT_TITLE, fields), render(notifier.body or DEFAULT_BODY, fields)


def human_duration(seconds: float) -> str:
    """3725 -> '1h 2m', 42 -> '42s'."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if total < 3600:
        parts.append(f"{secs}s" if secs or not minutes else "")
    return " ".join(p for p in parts if p) or "0s"


# Apprise's notify types, which colour or prefix the message in most services.
NOTIFY_TYPE = {
    "failure": "failure",
    "reminder": "failure",
    "resolved": "success",
    "degraded": "warning",
    "recovered": "success",
    "test": "info",
}


def event_fields(event: Event, spec: CheckSpec) -> dict[str, str]:
    """Every template field of event, as text."""
    r, incident = event.result, event.incident
    duration = ""
    if incident is not None:
        duration = human_duration((incident.resolved_at or r.ts) - incident.opened_at)
    summary = {
        "failure": f"{spec.name} is down ({r.error_kind})",
        "reminder": f"{spec.name} is still down after {duration}",
        "resolved": f"{spec.name} is up again after {duration}",
        "degraded": f"{spec.name} is degraded (responses slower than expected)",
        "recovered": f"{spec.name} is fast again",
    }[event.kind]
    return {
        "check": spec.name,
        "url": redact_url(spec.url),  # messages travel to third parties: no user info, no query values
        "event": event.kind,
        "summary": summary,
        "error_kind": r.error_kind or "-",
        "error": r.error or "-",
        "status_code": str(r.status_code) if r.status_code is not None else "-",
        "response_time": f"{r.response_time_ms:.0f} ms" if r.response_time_ms is not None else "-",
        "started_at": iso(incident.opened_at) if incident is not None else "-",
        "duration": duration or "-",
        "labels": ", ".join(f"{k}={v}" for k, v in spec.labels) or "-",
        "incident": incident.id if incident is not None else "-",
    }


def trial_fields(notifier: str, message: str) -> dict[str, str]:
    """Template fields of a `pulse-agent notify` test message."""
    fields = dict.fromkeys(FIELDS, "-")
    fields.update(check="pulse-agent", event="test", summary=f"test notification to {notifier}: {message}", error="-")
    return fields
