"""Push checks, the pure part (probe/push.py) and its shell (push_monitor.py) on a ManualClock: when a
ping is late, what a ping or a signal records, and what reloads keep."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pulse_agent.clock import ManualClock
from pulse_agent.config import ConfigInvalid, parse_config
from pulse_agent.config.model import CheckSpec
from pulse_agent.probe import push
from pulse_agent.probe.push import PushState
from pulse_agent.push_monitor import PushMonitor
from pulse_agent.result import Result, from_iso
from pulse_agent.view import StoreClosed

TOKEN = "s3cret-push-token-0123"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() if "+" not in text else datetime.fromisoformat(text).timestamp()


def check(body: str, **env: str) -> CheckSpec:
    text = "version: 1\nchecks:\n  - name: job\n" + textwrap.indent(textwrap.dedent(body), "    ")
    [spec] = parse_config(text, "p.yaml", {"TOK": TOKEN, **env}).checks
    return spec


def test_the_config_makes_a_push_check_and_refuses_what_cannot_hold():
    spec = check("push: {grace: 5m, token: '${TOK}'}\nschedule: every weekday at 02:00\ntimezone: Europe/Berlin\n")
    assert (spec.kind, spec.push.grace, spec.push.token, spec.url) == ("push", 300.0, TOKEN, "")
    assert TOKEN not in repr(spec)
    cases = {
        "push: {token: short}\n": "checks[0].push.token: must be at least 16 characters",
        "push: {token: '${TOK}', grace: soon}\n": "checks[0].push.grace:",
        "push: {token: '${TOK}'}\nurl: http://127.0.0.1/\n": "checks[0].url: 'url' does not apply to a push check",
        "push: {token: '${TOK}'}\ntimeout: 5s\n": "checks[0].timeout: 'timeout' does not apply to a push check",
        "push: {token: '${TOK}'}\nmissed: run_once\n": "checks[0].missed: 'missed' does not apply to a push check",
        "push: {token: '${TOK}'}\nexpect: {status: 200}\n": "checks[0].expect.status: a push check cannot evaluate 'status'",
        "push: {grace: 1m}\n": "checks[0].push: missing required key 'token'",
        "schedule: 5m\n": "checks[0]: missing required key 'url'; a check needs a url, or a push: block",
        "expect: {max_duration: 1m}\nurl: http://127.0.0.1/\n": "checks[0].expect.max_duration: a http check cannot evaluate 'max_duration'",
    }
    for body, message in cases.items():
        with pytest.raises(ConfigInvalid) as info:
            check(body)
        errors = [str(e) for e in info.value.errors]
        assert len(errors) == 1 and message in errors[0], (body, errors)
        assert TOKEN not in errors[0]


def test_a_push_check_refused_for_a_short_token_does_not_show_it():
    with pytest.raises(ConfigInvalid) as info:
        check("push: {token: '${T}'}\n", T="abc-secret")
    assert "abc-secret" not in str(info.value.errors[0])


def test_cron_in_a_time_zone_no_false_alarm_before_the_first_due_and_late_after_grace():
    spec = check("push: {grace: 10m, token: '${TOK}'}\nschedule: every weekday at 02:00\ntimezone: Europe/Berlin\n")
    start = ts("2026-12-01T12:00:00")  # a Tuesday, after that day's 02:00 Berlin: nothing is expected of it
    state = PushState(since=start)
    due = ts("2026-12-02T01:00:00")  # Wednesday 02:00 Berlin
    assert push.due(spec, state) == due and push.deadline(spec, state) == due + 600
    assert push.overdue(spec, state, due + 599) == (state, None)
    state, late = push.overdue(spec, state, due + 600)
    assert (late.ok, late.error_kind, late.scheduled_ts) == (False, "late", due)
    assert late.error == (
        "no ping by 2026-12-02T01:10:00.000Z: due 2026-12-02T01:00:00.000Z (2026-12-02 02:00 Europe/Berlin) + grace 10m; never pinged"
    )
    assert late.details == {"signal": "late", "due": "2026-12-02T01:00:00.000Z", "grace_s": 600.0, "last_ping": None}
    assert push.overdue(spec, state, due + 700)[1] is None  # reported once
    assert push.due(spec, state) == ts("2026-12-03T01:00:00")


def test_a_ping_up_to_grace_early_meets_the_due_time_and_more_pings_per_period_only_record():
    spec = check("push: {grace: 10m, token: '${TOK}'}\nschedule: '0 2 * * *'\n")
    state = PushState(since=ts("2026-12-01T12:00:00"))
    due = ts("2026-12-02T02:00:00")
    state, mid = push.ping(spec, state, ts("2026-12-01T20:00:00"), "success")  # a manual run in the afternoon
    assert (mid.ok, mid.scheduled_ts, push.due(spec, state)) == (True, None, due)  # still expected at 02:00
    state, early = push.ping(spec, state, due - 300, "success")  # the job ran 5 minutes early
    assert (early.ok, early.scheduled_ts, early.details["due"]) == (True, due, "2026-12-02T02:00:00.000Z")
    assert push.due(spec, state) == due + 86400
    assert push.overdue(spec, state, due + 601)[1] is None  # met: no late
    state, again = push.ping(spec, state, due + 60, "success")  # a second ping of the same night
    assert again.ok and again.scheduled_ts is None and push.due(spec, state) == due + 86400


def test_an_interval_counts_from_the_last_ping_and_reports_each_missed_interval_once():
    spec = check("push: {grace: 30s, token: '${TOK}'}\nschedule: 5m\n")
    t0 = 1_800_000_000.0
    state = PushState(since=t0)
    assert push.deadline(spec, state) == t0 + 330  # the first period: no alarm before start + interval + grace
    state, ok = push.ping(spec, state, t0 + 100, "success")
    assert ok.ok and push.deadline(spec, state) == t0 + 430
    state, late = push.overdue(spec, state, t0 + 430)
    assert late.error_kind == "late" and late.scheduled_ts == t0 + 400
    assert push.deadline(spec, state) == t0 + 730  # the next interval
    # down for an hour: one late for the latest missed due time, not twelve
    state, late = push.overdue(spec, state, t0 + 4000)
    assert late.scheduled_ts == t0 + 3700 and push.overdue(spec, state, t0 + 4000)[1] is None


def test_signals_exit_codes_and_the_job_duration():
    spec = check("push: {grace: 1m, token: '${TOK}'}\nschedule: 1h\nexpect: {max_duration: 10m}\n")
    t0 = 1_800_000_000.0
    state = PushState(since=t0)
    state, none = push.ping(spec, state, t0 + 10, "start")
    assert none is None and state.started == t0 + 10
    state, ok = push.ping(spec, state, t0 + 70, "success")
    assert (ok.ok, ok.response_time_ms, state.started) == (True, 60000.0, None)
    state, failed = push.ping(spec, state, t0 + 80, "fail")
    assert (failed.ok, failed.error_kind, failed.error, failed.response_time_ms) == (
        False,
        "signal",
        "the job signalled failure (/fail)",
        None,
    )
    state, _ = push.ping(spec, state, t0 + 100, "start")
    state, code = push.ping(spec, state, t0 + 130, "exit", 3)
    assert (code.error_kind, code.error, code.details["exit_code"], code.response_time_ms) == (
        "signal",
        "the job exited with code 3",
        3,
        30000.0,
    )
    state, zero = push.ping(spec, state, t0 + 140, "exit", 0)
    assert zero.ok and zero.details["exit_code"] == 0
    state, _ = push.ping(spec, state, t0 + 200, "start")
    state, slow = push.ping(spec, state, t0 + 200 + 601, "success")
    assert (slow.ok, slow.error_kind) == (False, "latency")
    assert slow.error == "the job took 10m1s from /start, over expect.max_duration 10m"


def test_a_one_shot_expects_one_ping():
    spec = check("push: {grace: 1m, token: '${TOK}'}\nschedule: at 2026-12-24T18:00:00Z\n")
    state = PushState(since=ts("2026-12-01T00:00:00"))
    state, ok = push.ping(spec, state, ts("2026-12-24T18:00:30"), "success")
    assert ok.scheduled_ts == ts("2026-12-24T18:00:00") and push.due(spec, state) is None and push.deadline(spec, state) is None


def memory_store():
    """The store's call on a real in-memory DuckDB with the agent's tables: (call, connection)."""
    import duckdb

    from pulse_agent.store.migrations import migrate

    con = duckdb.connect()
    migrate(con)

    async def call(fn):
        return fn(con)

    return call, con


class Collected:
    def __init__(self) -> None:
        self.results: list[Result] = []
        self.dues: dict[str, float | None] = {}

    async def finished(self, spec: CheckSpec, result: Result) -> Result:
        self.results.append(result)
        return result


async def test_the_monitor_fires_at_the_deadline_keeps_state_across_reloads_and_stops_removed_checks():
    clock = ManualClock(1_800_000_000.0)
    seen = Collected()
    monitor = PushMonitor(clock, seen.finished, lambda name, when: seen.dues.__setitem__(name, when))
    spec = check("push: {grace: 2s, token: '${TOK}'}\nschedule: 10s\n")
    with pytest.raises(StoreClosed):  # not open yet: a ping could not be kept (the web answers 503)
        monitor.spec("job")
    await monitor.open(memory_store()[0])
    monitor.set_checks([spec])
    assert seen.dues["job"] == clock.now + 12
    await clock.advance(11.9)
    assert seen.results == []
    await clock.advance(0.2)
    [late] = seen.results
    assert late.error_kind == "late" and late.ts == 1_800_000_012.0
    assert await monitor.ping(spec, "success") is not None and seen.results[-1].ok
    pinged = clock.now
    # a reload changing grace and schedule keeps the last ping: the deadline moves with the new settings
    changed = check("push: {grace: 5s, token: '${TOK}'}\nschedule: 20s\n")
    monitor.set_checks([changed])
    assert monitor.state("job").last_ping == pinged and seen.dues["job"] == pinged + 25
    assert await monitor.ping(spec, "success") is None  # the old spec is no longer running
    await clock.advance(24.9)
    assert len(seen.results) == 2
    monitor.set_checks([])  # removed: its timer stops
    await clock.advance(100)
    assert len(seen.results) == 2 and monitor.spec("job") is None
    await monitor.stop()
    with pytest.raises(StoreClosed):
        await monitor.ping(changed, "success")


def test_check_of_a_push_check_probes_nothing_and_says_what_is_expected(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from pulse_agent.cli import main

    full = Path(__file__).resolve().parent.parent / "examples" / "full.yaml"
    monkeypatch.chdir(tmp_path)  # no database here yet
    monkeypatch.setenv("BACKUP_PUSH_TOKEN", TOKEN)
    assert main(["check", "backup", "-c", str(full)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("push check backup: waits for pings at /push/backup")
    assert "schedule every weekday at 02:00 (Europe/Berlin), grace 30m" in out and "no result yet" in out
    assert "no database at" in out and TOKEN not in out
    assert main(["check", "backup", "-c", str(full), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["kind"], shown["grace_s"], shown["last_result"]) == ("push", 1800.0, None)
    due = from_iso(shown["next_due"])
    assert datetime.fromtimestamp(due, ZoneInfo("Europe/Berlin")).strftime("%H:%M %a") in {
        f"02:00 {d}" for d in ("Mon", "Tue", "Wed", "Thu", "Fri")
    }
    assert from_iso(shown["deadline"]) == due + 1800


async def test_a_late_run_inside_a_maintenance_window_is_stored_flagged_through_the_pipeline():
    from pulse_agent.live.events import EventHub
    from pulse_agent.pipeline import ResultPipeline
    from pulse_agent.web.metrics import Metrics

    # 2027-01-15T08:00:00Z; the window: every day 08:00-09:00 UTC
    clock = ManualClock(ts("2027-01-15T08:00:00"))
    spec = check("push: {grace: 1m, token: '${TOK}'}\nschedule: 10m\nmaintenance: [{schedule: 'every day at 08:00', duration: 1h}]\n")
    metrics = Metrics()
    pipeline = ResultPipeline(metrics, EventHub())
    pipeline.set_checks([spec])
    monitor = PushMonitor(clock, pipeline.finished, pipeline.next_run)
    monitor.set_checks([spec])
    await clock.advance(11 * 60)
    late = pipeline.last("job")
    assert late is not None and (late.error_kind, late.maintenance) == ("late", True)
    assert 'pulse_check_failures_total{check="job",error_kind="late"} 1.0' in metrics.render().decode()
    await monitor.stop()


async def test_pings_arriving_together_are_written_in_few_transactions_and_each_waits_for_its_write():
    import asyncio

    import duckdb

    from pulse_agent.store import push_state
    from pulse_agent.store.migrations import migrate

    con = duckdb.connect()
    migrate(con)
    writes: list[int] = []

    async def call(fn):  # the store's writer: one transaction per call, taking a while
        writes.append(len(con.execute("SELECT * FROM push_state").fetchall()))
        await asyncio.sleep(0.01)
        return fn(con)

    clock = ManualClock(1_800_000_000.0)
    seen = Collected()
    monitor = PushMonitor(clock, seen.finished, lambda name, when: None)
    await monitor.open(call)
    text = "version: 1\nchecks:\n" + "".join(f"  - {{name: j{i}, schedule: 1h, push: {{token: '${{TOK}}'}}}}\n" for i in range(50))
    specs = parse_config(text, "p.yaml", {"TOK": TOKEN}).checks
    monitor.set_checks(specs)
    await asyncio.sleep(0.05)  # the new checks' first states
    before = len(writes)
    clock.now += 5
    await asyncio.gather(*(monitor.ping(s, "success") for s in specs))
    assert len(seen.results) == 50 and len(writes) - before <= 2
    stored = push_state.load(con)
    assert {name: s.last_ping for name, s in stored.items()} == {s.name: clock.now for s in specs}
    await monitor.stop()


async def test_a_paused_push_check_keeps_its_state_takes_pings_is_never_late_and_is_watched_afresh_on_resume():
    clock = ManualClock(1_800_000_000.0)
    seen = Collected()
    monitor = PushMonitor(clock, seen.finished, lambda name, when: seen.dues.__setitem__(name, when))
    spec = check("push: {grace: 2s, token: '${TOK}'}\nschedule: 10s\n")
    await monitor.open(memory_store()[0])
    monitor.set_checks([spec])
    assert await monitor.ping(spec, "success") is not None
    pinged = clock.now
    monitor.set_checks([spec], paused={"job"})  # pause
    assert seen.dues["job"] is None and monitor.spec("job") is spec  # no deadline; its pings are still taken
    await clock.advance(100)
    assert [r.ok for r in seen.results] == [True]  # nothing late while paused
    assert monitor.state("job").last_ping == pinged  # what it knew is kept
    monitor.set_checks([spec])  # resume: watched from now
    resumed = clock.now
    assert seen.dues["job"] == resumed + 12
    await clock.advance(11.9)
    assert len(seen.results) == 1
    await clock.advance(0.2)
    assert seen.results[-1].error_kind == "late" and seen.results[-1].ts == resumed + 12
    await monitor.stop()
