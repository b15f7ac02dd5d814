"""The reload diff (pure), and reloads of an in-process agent: what survives, what is refused."""

from __future__ import annotations

import asyncio

import pytest

from pulse_agent.config import parse_config
from pulse_agent.live.diff import diff
from tests.test_alerting import NOW, Receiver, Target, config, running


def spec(checks: str, agent: str = "{}", notifiers: str = "{}"):
    return parse_config(f"version: 1\nagent: {agent}\nnotifiers: {notifiers}\nchecks:\n{checks}", "p.yaml", {})


A = "  - {name: a, url: 'http://127.0.0.1/a'}\n"
A2 = "  - {name: a, url: 'http://127.0.0.1/a', timeout: 3s}\n"
B = "  - {name: b, url: 'http://127.0.0.1/b'}\n"
C = "  - {name: c, url: 'http://127.0.0.1/c', enabled: false}\n"
N1 = "{ops: {urls: ['json://127.0.0.1:9/x']}}"
N2 = "{ops: {urls: ['json://127.0.0.1:9/y']}, page: {urls: ['json://127.0.0.1:9/z']}}"


@pytest.mark.parametrize(
    ("old", "new", "checks", "notifiers", "settings"),
    [
        ((A + B,), (A + B,), ((), (), (), ("a", "b")), ((), (), (), ()), ()),
        ((A,), (A + B,), (("b",), (), (), ("a",)), ((), (), (), ()), ()),
        ((A + B,), (B,), ((), ("a",), (), ("b",)), ((), (), (), ()), ()),
        ((A + B,), (A2 + B,), ((), (), ("a",), ("b",)), ((), (), (), ()), ()),
        ((A,), (A + C,), (("c",), (), (), ("a",)), ((), (), (), ()), ()),  # disabled checks are part of the config
        ((A, "{}", N1), (A, "{}", N2), ((), (), (), ("a",)), (("page",), (), ("ops",), ()), ()),
        (
            (A, "{log_level: info}"),
            (A, "{log_level: debug, listen: '127.0.0.1:1'}"),
            ((), (), (), ("a",)),
            ((), (), (), ()),
            ("listen", "log_level"),
        ),
    ],
)
def test_diff(old, new, checks, notifiers, settings):
    d = diff(spec(*old), spec(*new))
    assert (d.checks.added, d.checks.removed, d.checks.changed, d.checks.unchanged) == checks
    assert (d.notifiers.added, d.notifiers.removed, d.notifiers.changed, d.notifiers.unchanged) == notifiers
    assert d.settings == settings
    assert d.empty is (not any(checks[:3]) and not any(notifiers[:3]) and not settings)


@pytest.fixture
def target(httpserver):
    return Target(httpserver)


async def test_a_reload_keeps_open_incidents_counters_and_phase_of_what_it_does_not_remove(target, tmp_path):
    receiver = Receiver().start()
    try:
        cfg = tmp_path / "pulse.yaml"
        text = config(target, receiver.url)
        cfg.write_text(text)
        async with running(text, tmp_path / "p.duckdb", config_path=cfg) as run:
            target.status = 500
            await run.tick(2)
            assert run.metric("pulse_incidents_open") == 1
            before = {c.name: c for c in run.agent.executor.scheduler.checks}
            failures = run.metric("pulse_check_runs_total", check="api", result="failure")
            cfg.write_text(text.replace("success_threshold: 2", "success_threshold: 1") + "  - {name: other, url: 'http://127.0.0.1:1/'}\n")
            outcome = await run.agent.reload("test")
            assert outcome.ok and outcome.diff.checks.changed == ("api",) and outcome.diff.checks.added == ("other",)
            assert run.metric("pulse_incidents_open") == 1  # the changed check keeps its incident
            assert run.metric("pulse_check_runs_total", check="api", result="failure") == failures  # and its counters
            assert before["api"].alert.success_threshold == 2
            target.status = 200
            await run.tick(1)  # the new threshold applies: one success resolves
            assert run.metric("pulse_incidents_open") == 0

            cfg.unlink()
            refused = await run.agent.reload("test")
            assert not refused.ok and refused.errors == (f"config file '{cfg}' not found; pass -c FILE",)
            assert await run.agent.reloader.reload_if_changed() is None  # reported once, not at every look
            assert sorted(c.name for c in run.agent.executor.scheduler.checks) == ["api", "other"]
            await run.tick(1)
            await asyncio.sleep(0)
    finally:
        receiver.stop()


async def test_incidents_of_checks_no_longer_run_close_at_reload_and_at_start(target, tmp_path):
    import duckdb

    receiver = Receiver().start()
    try:
        cfg, db = tmp_path / "pulse.yaml", tmp_path / "p.duckdb"
        text = config(target, receiver.url)
        cfg.write_text(text)
        target.status = 500
        async with running(text, db, config_path=cfg) as run:
            await run.tick(2)
            assert run.metric("pulse_incidents_open") == 1
            cfg.write_text(text.replace("    url:", "    enabled: false\n    url:", 1))  # the check is switched off
            assert (await run.agent.reload("test")).diff.checks.changed == ("api",)
            assert run.metric("pulse_incidents_open") == 0
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM incidents WHERE resolved_at IS NULL").fetchall() == [(0,)]
        assert [p["title"] for p in receiver.posts] == ["[pulse] api is down (status)"]  # closing it sends nothing

        async with running(text, db, now=NOW + 3600, config_path=cfg) as run:  # on again, failing again: a new incident
            await run.tick(2)
            assert run.metric("pulse_incidents_open") == 1
        other = "version: 1\nchecks:\n  - {name: other, url: 'http://127.0.0.1:1/', schedule: '@yearly'}\n"
        async with running(other, db, now=NOW + 7200) as run:  # started without it: closed at start
            assert run.metric("pulse_incidents_open") == 0
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute("SELECT count(*), count(resolved_at) FROM incidents").fetchall() == [(2, 2)]
    finally:
        receiver.stop()
