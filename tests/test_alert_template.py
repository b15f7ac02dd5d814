"""Notification templates, and maintenance windows: pure functions over plain values."""

from datetime import datetime

import pytest

from pulse_agent.alerts.machine import AlertState, replay
from pulse_agent.alerts.template import DEFAULT_BODY, DEFAULT_TITLE, event_fields, human_duration, render, template_problem
from pulse_agent.config.model import AlertSpec, MaintenanceWindow
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


def test_default_texts_of_a_failure_and_its_resolution():
    check = spec("https://api.example.com/health", name="api", labels=(("team", "payments"),))
    t0 = datetime.fromisoformat("2026-11-22T10:00:00+00:00").timestamp()
    results = [Result("api", t0 + 60 * i, False, status_code=503, response_time_ms=12.4, error_kind="status",
                      error="status 503 not in [2xx]") for i in range(3)]  # fmt: skip
    results += [Result("api", t0 + 60 * i, True, status_code=200, response_time_ms=8.0) for i in range(3, 5)]
    _, (failure, resolved) = replay(AlertState(), results, AlertSpec())
    down = event_fields(failure, check)
    assert render(DEFAULT_TITLE, down) == "[pulse] api is down (status)"
    assert render(DEFAULT_BODY, down).splitlines() == [
        "api is down (status)",
        "check: api (https://api.example.com/health)",
        "error: status: status 503 not in [2xx]",
        "status: 503, response time: 12 ms",
        "incident: api@1795341600000, started 2026-11-22T10:00:00.000Z, 2m",
        "labels: team=payments",
    ]
    up = event_fields(resolved, check)
    assert render(DEFAULT_TITLE, up) == "[pulse] api is up again after 3m"  # first failure to first success
    assert up["status_code"] == "200" and up["error"] == "-" and up["duration"] == "3m"


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
    from pulse_agent.alerts.machine import EVENT_KINDS
    from pulse_agent.alerts.template import NOTIFY_TYPE

    assert set(NOTIFY_TYPE) == {*EVENT_KINDS, "test"}
