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

# Every field a title or body template may use; each is rendered as text ("-" when it has no value).
FIELDS = (
    "check",  # check name
    "url",  # the check's URL, user info and query values masked
    "event",  # failure, reminder, resolved, degraded, recovered, test
    "summary",  # one line: "api is down (status)", "api is up again after 4m"
    "error_kind",  # timeout, status, ... of the run
    "error",  # the error message of the run: what was expected and what came
    "first_error",  # the error of the run that opened the incident
    "detail",  # one line on what the event is about: the error, or the slow response against its limit
    "status_code",  # HTTP status of the run
    "response_time",  # "123 ms", "1.2 s"
    "started_at",  # incident start, ISO-8601 UTC
    "resolved_at",  # incident end, ISO-8601 UTC
    "duration",  # incident length so far, "1h 4m"
    "labels",  # "team=payments, tier=1"
    "incident",  # incident id
    "note",  # why the message is held back or late, when it is ("-" mostly)
)

DEFAULT_TITLE = "[pulse] {summary}"
# The default body of each event. A line with a field that has no value is left out, so a
# message never shows "-" placeholders: a timeout has no status line, a resolution no error.
DEFAULT_BODIES = {
    "failure": """{summary}
{detail}
check: {check} ({url})
HTTP {status_code} in {response_time}
down since {started_at} ({duration})
labels: {labels}
incident: {incident}
{note}""",
    "resolved": """{summary}
check: {check} ({url})
was down {duration}, from {started_at} to {resolved_at}
first error: {first_error}
now: HTTP {status_code} in {response_time}
labels: {labels}
incident: {incident}
{note}""",
    "degraded": """{summary}
{detail}
check: {check} ({url})
labels: {labels}""",
    "test": """{summary}
{detail}""",
}
DEFAULT_BODIES["reminder"] = DEFAULT_BODIES["failure"]
DEFAULT_BODIES["recovered"] = DEFAULT_BODIES["degraded"]
# Kept for templates that start from the old default: every line, no line left out.
DEFAULT_BODY = DEFAULT_BODIES["failure"]
NO_VALUE = "-"

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
    body = render(notifier.body, fields) if notifier.body else default_body(fields)
    return render(notifier.title or DEFAULT_TITLE, fields), body


def default_body(fields: Mapping[str, str]) -> str:
    """The default body of fields' event: its lines whose every field has a value."""
    kept = []
    for line in DEFAULT_BODIES[fields["event"]].splitlines():
        names = [name for _, name, _, _ in string.Formatter().parse(line) if name]
        if all(fields.get(name, NO_VALUE) != NO_VALUE for name in names):
            kept.append(render(line, fields))
    return "\n".join(kept)


def human_ms(ms: float) -> str:
    """12.4 -> '12 ms', 1534 -> '1.53 s'."""
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.3g} s"


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
    "slo_burn": "failure",
    "slo_recovered": "success",
    "rule_firing": "failure",
    "rule_resolved": "success",
}


def event_fields(event: Event, spec: CheckSpec, note: str | None = None) -> dict[str, str]:
    """Every template field of event, as text; note says why the message is held back or late."""
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
    first_error = incident.first_error if incident is not None and incident.first_error else NO_VALUE
    fields = dict.fromkeys(FIELDS, NO_VALUE)
    fields.update(
        check=spec.name,
        url=redact_url(spec.url),  # messages travel to third parties: no user info, no query values
        event=event.kind,
        summary=summary,
        first_error=first_error,
        detail=_detail(event, spec),
        labels=", ".join(f"{k}={v}" for k, v in spec.labels) or NO_VALUE,
        duration=duration or NO_VALUE,
        note=note or NO_VALUE,
    )
    if r.error_kind:
        fields["error_kind"] = r.error_kind
    if r.error:
        fields["error"] = r.error
    if r.status_code is not None:
        fields["status_code"] = str(r.status_code)
    if r.response_time_ms is not None:
        fields["response_time"] = human_ms(r.response_time_ms)
    if incident is not None:
        fields.update(started_at=iso(incident.opened_at), incident=incident.id)
        if incident.resolved_at is not None:
            fields["resolved_at"] = iso(incident.resolved_at)
    return fields


def _detail(event: Event, spec: CheckSpec) -> str:
    r, limit = event.result, spec.expect.degraded_response_time
    if event.kind in ("degraded", "recovered") and r.response_time_ms is not None and limit is not None:
        side = "over" if event.kind == "degraded" else "within"
        return f"response time {human_ms(r.response_time_ms)}, {side} degraded_response_time {human_ms(limit * 1000)}"
    if event.kind in ("failure", "reminder") and r.error:
        return r.error
    return NO_VALUE


def event_line(fields: Mapping[str, str]) -> str:
    """One line for a grouped message: the check and what happened to it."""
    event, check = fields["event"], fields["check"]
    text = {
        "failure": f"{check} is down: {fields['detail']}",
        "reminder": f"{check} is still down after {fields['duration']}: {fields['detail']}",
        "resolved": f"{check} is up again after {fields['duration']}",
        "degraded": f"{check} is degraded: {fields['detail']}",
        "recovered": f"{check} is fast again",
    }.get(event, fields["summary"])
    return text if fields.get("note", NO_VALUE) == NO_VALUE else f"{text} ({fields['note']})"


def trial_fields(notifier: str, message: str) -> dict[str, str]:
    """Template fields of a `pulse-agent notify` test message."""
    fields = dict.fromkeys(FIELDS, NO_VALUE)
    fields.update(
        check="pulse-agent",
        event="test",
        summary=f"test notification to {notifier}: {message}",
        detail=f"sent by `pulse-agent notify {notifier}`: alerts of checks that notify {notifier} arrive here the same way",
    )
    return fields
