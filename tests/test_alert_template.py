"""Notification templates, and maintenance windows: pure functions over plain values."""

import re
from datetime import datetime

import pytest

from pulse_agent.alerts.machine import AlertState, replay
from pulse_agent.alerts.template import compose, event_fields, human_duration, template_problem, trial_fields
from pulse_agent.config.model import AlertSpec, Expect, MaintenanceWindow, NotifierSpec
from pulse_agent.result import Result
from pulse_agent.schedule import parse_schedule
from tests.conftest import spec


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("[{event}] {check} {response_time:>8}", None),
        ("{{literal}} {check}", None),
        ("{status}", "unknown template field {status}"),
        ("{check.__class__}", "unknown template field {check.__class__}"),
        ("{check[0]}", "unknown template field {check[0]}"),
        ("{check", "invalid template: "),
        ("{check:.2f}", "invalid template: Unknown format code 'f'"),
        ("{}", "unknown template field {}"),
    ],
)
def test_template_problems(template, problem):
    found = template_problem(template)
    assert (found is None) if problem is None else found.startswith(problem), found


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (42, "42s"), (60, "1m"), (125, "2m 5s"), (3725, "1h 2m"), (90061, "1d 1h 1m")])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


T0 = datetime.fromisoformat("2026-11-22T10:00:00+00:00").timestamp()
API = spec("https://user:pw@api.example.com/health?key=s3cret", name="api", labels=(("team", "payments"),),
           expect=Expect(degraded_response_time=0.3))  # fmt: skip


def _down(i: int, **kw) -> Result:
    kw = {"status_code": 503, "response_time_ms": 12.4, "error_kind": "status", "error": "status 503 not in [2xx]", **kw}
    return Result("api", T0 + 60 * i, False, **kw)


def _events(results, **rule) -> list:
    _, events = replay(AlertState(), results, AlertSpec(**rule))
    return events


def _default(event) -> tuple[str, str]:
    return compose(NotifierSpec("ops", ("json://x",)), event_fields(event, API))


def test_default_failure_message():
    (failure,) = _events([_down(i) for i in range(3)])
    title, body = _default(failure)
    assert title == "[pulse] api is down (status)"
    assert body.splitlines() == [
        "api is down (status)",
        "status 503 not in [2xx]",
        "check: api (https://***@api.example.com/health?key=***)",
        "HTTP 503 in 12 ms",
        "down since 2026-11-22T10:00:00.000Z (2m)",
        "labels: team=payments",
        "incident: api@1795341600000",
    ]


def test_default_resolved_message_names_the_outage_and_its_first_error():
    results = [_down(i) for i in range(3)] + [Result("api", T0 + 60 * i, True, status_code=200, response_time_ms=1534.0) for i in (3, 4)]
    _, resolved = _events(results)
    title, body = _default(resolved)
    assert title == "[pulse] api is up again after 3m"  # first failure to first success
    assert body.splitlines() == [
        "api is up again after 3m",
        "check: api (https://***@api.example.com/health?key=***)",
        "was down 3m, from 2026-11-22T10:00:00.000Z to 2026-11-22T10:03:00.000Z",
        "first error: status 503 not in [2xx]",
        "now: HTTP 200 in 1.53 s",
        "labels: team=payments",
        "incident: api@1795341600000",
    ]


def test_default_reminder_of_a_timeout_has_no_status_line():
    timeouts = [_down(i, status_code=None, response_time_ms=None, error_kind="timeout", error="no response within 5s") for i in range(63)]
    _, reminder = _events(timeouts, remind_every=3600)
    title, body = _default(reminder)
    assert title == "[pulse] api is still down after 1h 2m"
    assert body.splitlines()[:3] == [
        "api is still down after 1h 2m",
        "no response within 5s",
        "check: api (https://***@api.example.com/health?key=***)",
    ]
    assert not any(line.startswith("HTTP") for line in body.splitlines())


def test_default_degraded_and_recovered_messages_give_the_response_time_against_its_limit():
    slow = [Result("api", T0 + 60 * i, True, degraded=True, status_code=200, response_time_ms=450.0) for i in range(3)]
    fast = [Result("api", T0 + 60 * i, True, status_code=200, response_time_ms=120.0) for i in (3, 4)]
    degraded, recovered = _events(slow + fast, notify_on_degraded=True)
    assert _default(degraded)[1].splitlines()[:2] == [
        "api is degraded (responses slower than expected)",
        "response time 450 ms, over degraded_response_time 300 ms",
    ]
    assert _default(recovered)[1].splitlines()[:2] == ["api is fast again", "response time 120 ms, within degraded_response_time 300 ms"]


def test_default_test_message():
    title, body = compose(NotifierSpec("ops", ("json://x",)), trial_fields("ops", "hello"))
    assert title == "[pulse] test notification to ops: hello"
    assert body.splitlines() == [
        "test notification to ops: hello",
        "sent by `pulse-agent notify ops`: alerts of checks that notify ops arrive here the same way",
    ]


def _every_default_message() -> list[tuple[str, str]]:
    results = [_down(i) for i in range(63)] + [
        Result("api", T0 + 60 * i, True, degraded=True, response_time_ms=400.0) for i in range(63, 69)
    ]
    results += [Result("api", T0 + 60 * i, True, response_time_ms=10.0) for i in range(69, 72)]
    events = _events(results, remind_every=3600, notify_on_degraded=True)
    assert [e.kind for e in events] == ["failure", "reminder", "resolved", "degraded", "recovered"]
    return [_default(e) for e in events] + [compose(NotifierSpec("ops", ("json://x",)), trial_fields("ops", "hi"))]


@pytest.mark.parametrize("index", range(6))
def test_every_default_message_reads_well(index):
    title, body = _every_default_message()[index]
    assert "\n" not in title and len(title) <= 100  # a Slack or e-mail subject line
    text = title + "\n" + body
    assert " - " not in text and ": -" not in text and "-: -" not in text and "{" not in text  # no empty placeholders
    assert ("api" in text) or ("ops" in text)  # names what it is about
    assert "None" not in text and "'" not in text  # no Python reprs
    assert not re.search(r"\d\.\d{3,}(?!Z)|\d{4,} ?(s|ms)\b", text)  # durations human: no 1534.0 ms, no 3600s


T = datetime.fromisoformat("2026-11-22T00:00:00+00:00").timestamp()  # a Sunday


@pytest.mark.parametrize(
    ("start", "tz", "duration", "at", "covered"),
    [
        ("every sunday at 02:00", "UTC", 7200, "2026-11-22T01:59:59Z", False),
        ("every sunday at 02:00", "UTC", 7200, "2026-11-22T02:00:00Z", True),
        ("every sunday at 02:00", "UTC", 7200, "2026-11-22T03:59:59Z", True),
        ("every sunday at 02:00", "UTC", 7200, "2026-11-22T04:00:00Z", False),
        ("every sunday at 02:00", "Europe/Berlin", 7200, "2026-11-22T01:30:00Z", True),  # 02:30 in Berlin
        ("every sunday at 02:00", "Europe/Berlin", 7200, "2026-11-22T03:30:00Z", False),
        ("0 23 * * *", "UTC", 7200, "2026-11-23T00:30:00Z", True),  # a window crossing midnight
        ("at 2026-11-22T10:00:00Z", "UTC", 600, "2026-11-22T10:05:00Z", True),
        ("at 2026-11-22T10:00:00Z", "UTC", 600, "2026-11-22T09:59:00Z", False),
        ("at 2026-11-22T10:00:00Z", "UTC", 600, "2026-11-22T10:10:00Z", False),
    ],
)
def test_maintenance_window_covers(start, tz, duration, at, covered):
    window = MaintenanceWindow(parse_schedule(start, tz), duration)
    assert window.covers(datetime.fromisoformat(at).timestamp()) is covered


@pytest.mark.parametrize("start", ["every sunday at 02:00", "*/10 * * * *", "at 2026-11-22T10:00:00Z"])
def test_a_window_asked_again_and_again_answers_like_a_fresh_one(start):
    shared = MaintenanceWindow(parse_schedule(start, "Europe/Berlin"), 150)
    times = [T + 37 * i for i in range(0, 20000, 41)] + [T + 86400 * 8 - 600 * i for i in range(100)]  # forward, then back
    for ts in times:
        assert shared.covers(ts) is MaintenanceWindow(parse_schedule(start, "Europe/Berlin"), 150).covers(ts), ts


def test_every_event_has_an_apprise_type():
    from typing import get_args

    from pulse_agent.alerts.condition import ChangeKind
    from pulse_agent.alerts.grouping import EVENT_WORDS
    from pulse_agent.alerts.machine import EVENT_KINDS
    from pulse_agent.alerts.template import NOTIFY_TYPE

    assert set(NOTIFY_TYPE) == {*EVENT_KINDS, *get_args(ChangeKind), "test"}
    assert set(EVENT_WORDS) == {*EVENT_KINDS, *get_args(ChangeKind)}  # a grouped message counts every kind
