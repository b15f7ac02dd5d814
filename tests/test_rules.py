"""SQL alert rules end to end: the real agent on a manual clock, rows in its real DuckDB file, the
rule's query through the sandbox, Apprise to a real local receiver; validate and `rules test`."""

from __future__ import annotations

import asyncio
import time

import duckdb
import pytest

from pulse_agent.store.migrations import migrate
from pulse_agent.validators import rule_sql
from tests.conftest import run_cli
from tests.test_alerting import NOW, Receiver, query, running, until

RULE = "SELECT check_name, max(response_time_ms) AS value, 'max ' || max(response_time_ms) || ' ms' AS summary FROM results GROUP BY ALL HAVING value > 800"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def config(hook: str, target: str, sql: str = RULE) -> str:
    return f"""\
version: 1
notifiers:
  hook: {{urls: ['{hook}']}}
checks:
  - {{name: svc, url: '{target}', schedule: every 1h}}
rules:
  - name: slow
    sql: "{sql}"
    window: 90s
    every: 1m
    for: 2m
    notify: [hook]
    description: slowest run over 90 s above 800 ms
"""


def slow_rows(con: duckdb.DuckDBPyConnection, check: str, start: float, end: float, ms: float = 900) -> None:
    con.execute(
        "INSERT INTO results (ts, check_name, ok, degraded, attempts, response_time_ms, maintenance)"
        " SELECT to_timestamp(t), ?, true, false, 1, ?, false FROM range(?, ?, 10) r(t)",
        [check, ms, int(start), int(end) + 1],
    )


async def evaluations(run, n: int) -> None:
    """Advance a minute at a time, each evaluation finished before the next minute."""
    for _ in range(n):
        done = run.agent.watch.evaluations
        await run.clock.advance(60)
        await until(lambda done=done: run.agent.watch.evaluations > done)


async def test_a_rule_fires_after_holding_for_resolves_when_its_row_goes_and_a_blip_never_fires(httpserver, receiver, tmp_path):
    db = tmp_path / "p.duckdb"
    httpserver.expect_request("/").respond_with_data("ok")
    with duckdb.connect(str(db)) as con:
        migrate(con)
        slow_rows(con, "svc", NOW - 60, NOW + 300)  # slow from a minute ago for five more minutes
        slow_rows(con, "blip", NOW - 10, NOW - 10, ms=950)  # one slow run: returned by two evaluations only
    async with running(config(receiver.url, httpserver.url_for("/")), db) as run:
        await until(lambda: run.agent.watch.evaluations >= 1)  # at start: both rows, both pending
        await evaluations(run, 1)  # +60 s: still pending (for: 2m)
        await asyncio.sleep(0.2)
        assert receiver.posts == []
        await evaluations(run, 1)  # +120 s: svc has held 2 minutes; blip's row is gone: it never fires
        await until(lambda: len(receiver.posts) == 1)
        [firing] = receiver.posts
        assert firing["title"] == "[pulse] rule slow firing: check_name=svc" and firing["type"] == "failure"
        assert firing["message"].startswith("slowest run over 90 s above 800 ms\nvalue 900; max 900.0 ms\nsince 2026-11-22T12:00:00")
        await evaluations(run, 4)  # +360 s: rows up to +300 s are still inside the 90 s window
        assert len(receiver.posts) == 1
        await evaluations(run, 1)  # +420 s: the row is gone
        await until(lambda: len(receiver.posts) == 2)
    resolved = receiver.posts[1]
    assert resolved["title"] == "[pulse] rule slow resolved: check_name=svc" and resolved["type"] == "success"
    assert "was firing 7m, from 2026-11-22T12:00:00.000Z to 2026-11-22T12:07:00.000Z" in resolved["message"]
    rows = query(db, "SELECT check_name, source, instance, resolved_at IS NOT NULL FROM incidents WHERE source IS NOT NULL")
    assert rows == [("slow", "rule", '{"check_name":"svc"}', True)]


@pytest.mark.parametrize(
    "sql, says",
    [
        ("DELETE FROM results", "DELETE statements are refused"),
        ("UPDATE results SET ok = true", "UPDATE statements are refused"),
        ("WITH d AS (DELETE FROM main.results RETURNING *) SELECT * FROM d", "read-only mode"),
        ("SELECT 1; DROP TABLE results", "give exactly one statement, not 2"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT nope FROM results", 'Referenced column "nope" not found'),
        ("SELEC 1", 'syntax error at or near "SELEC"'),
    ],
)
def test_a_rule_that_writes_or_cannot_run_is_refused_by_the_engine_at_validate(sql, says):
    problem = rule_sql(sql)
    assert problem is not None and says in problem


def test_validate_places_the_refusal_and_rules_test_prints_what_would_fire(tmp_path):
    hook, target = "json://127.0.0.1:9/hook", "http://127.0.0.1:9/"
    bad = tmp_path / "bad.yaml"
    bad.write_text(config(hook, target, "DELETE FROM results"))
    out = run_cli("validate", "-c", str(bad))
    assert out.returncode == 1 and "rules[0].sql: DELETE statements are refused" in out.stdout + out.stderr
    db, good = tmp_path / "p.duckdb", tmp_path / "good.yaml"
    with duckdb.connect(str(db)) as con:
        migrate(con)
        slow_rows(con, "svc", time.time() - 60, time.time() - 1)
    good.write_text(config(hook, target))
    shown = run_cli("rules", "test", "-c", str(good), "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "slow: 1 firing (after 120s, to hook)\n  check_name=svc: value 900; max 900.0 ms\n"
    failing = tmp_path / "failing.yaml"
    failing.write_text(config(hook, target, "SELECT check_name, error('no budget table') AS value FROM results"))
    shown = run_cli("rules", "test", "-c", str(failing), "--db", str(db))
    assert shown.returncode == 1 and shown.stdout == "slow: FAILED: query refused: Invalid Input Error: no budget table\n"


BASE = "version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\n"


@pytest.mark.parametrize(
    "text, says",
    [
        (BASE + "checks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99.9, burn_rate_alerts: {page: [pager]}}}]\n",
         "checks[0].slo.burn_rate_alerts.page[0]: unknown notifier 'pager' (notifiers: ops)"),
        (BASE + "checks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99.9, burn_rate_alerts: {}}}]\n",
         "checks[0].slo.burn_rate_alerts: names no notifier: give page, ticket or both"),
        (BASE + "checks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99.9, burn_rate_alerts: {page: [ops],"
         " windows: [{long: 5m, short: 1h, burn_rate: 2, severity: page}]}}}]\n",
         "checks[0].slo.burn_rate_alerts.windows[0].short: must be shorter than long (5m) and more than 0"),
        (BASE + "checks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99.9, window: 7d, burn_rate_alerts: {page: [ops],"
         " windows: [{long: 8d, short: 1h, burn_rate: 2, severity: page}]}}}]\n",
         "checks[0].slo.burn_rate_alerts.windows[0].long: is longer than the SLO window (8d > slo.window)"),
        (BASE + "rules: [{name: r, sql: 'SELECT 1', notify: [ops]}, {name: r, sql: 'SELECT 2', notify: [ops]}]\n",
         "rules[1].name: duplicate rule name 'r'"),
        (BASE + "rules: [{name: r, sql: 'SELECT 1', notify: [pager]}]\n", "rules[0].notify[0]: unknown notifier 'pager' (notifiers: ops)"),
        (BASE + "rules: [{name: r, sql: 'SELECT 1', notify: [ops], every: 0s}]\n", "rules[0].every: must be at least 1s"),
    ],
)  # fmt: skip
def test_slo_alert_and_rule_mistakes_are_placed(text, says):
    from pulse_agent.config import ConfigInvalid, parse_config

    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, "p.yaml", {})
    assert [says in str(e) for e in info.value.errors] == [True], [str(e) for e in info.value.errors]


async def test_a_rule_removed_by_a_reload_closes_its_open_alert_without_a_message(httpserver, receiver, tmp_path):
    db, path = tmp_path / "p.duckdb", tmp_path / "pulse.yaml"
    httpserver.expect_request("/").respond_with_data("ok")
    with duckdb.connect(str(db)) as con:
        migrate(con)
        slow_rows(con, "svc", NOW - 300, NOW + 600)
    text = config(receiver.url, httpserver.url_for("/")).replace("for: 2m", "for: 0s")
    path.write_text(text)
    async with running(text, db, config_path=path) as run:
        await until(lambda: len(receiver.posts) == 1)  # fires at the first evaluation
        path.write_text(text.split("rules:")[0])
        outcome = await run.agent.reload("test")
        assert outcome.ok, outcome.to_json()
        rows = await run.query("SELECT resolved_at IS NOT NULL FROM incidents WHERE source = 'rule'")
        assert rows == [(True,)]
        for _ in range(3):
            await run.clock.advance(60)
        await asyncio.sleep(0.2)
        assert len(receiver.posts) == 1  # closed without a message, and never evaluated again
