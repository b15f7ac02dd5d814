"""SLO burn-rate alerts end to end: a synthetic history in a real DuckDB file, the real agent on a
manual clock evaluating it, Apprise delivering to real local receivers (one for pages, one for
tickets), and a restart in the middle."""

from __future__ import annotations

import asyncio
import re

import duckdb
import pytest

from pulse_agent.alerts.watch import slo_counts
from pulse_agent.store import retention
from pulse_agent.store.migrations import migrate
from tests.test_alerting import NOW, Receiver, query, running, until

DAY = 86400


@pytest.fixture
def pager():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def tickets():
    r = Receiver().start()
    yield r
    r.stop()


def history(db, check: str, *, failing: float, since: float, share: float, until_: float = NOW, every: int = 60) -> None:
    """Four days of ok runs every `every` s up to until_; from `since` seconds before it, a `share`
    of them failed (evenly spread)."""
    with duckdb.connect(str(db)) as con:
        migrate(con)
        stride = round(1 / share) if share else 0
        con.execute(
            """INSERT INTO results (ts, check_name, ok, degraded, attempts, maintenance)
               SELECT to_timestamp(t), $check, NOT ($stride > 0 AND t > $until - $since AND (t // $every) % $stride = 0), false, 1, false
               FROM range($start, $until + 1, $every) r(t)""",
            {"check": check, "stride": stride, "until": int(until_), "since": failing, "every": every, "start": int(NOW - 4 * DAY)},
        )


def config(pager: Receiver, tickets: Receiver, target: str) -> str:
    checks = "".join(
        f"  - {{name: {name}, url: '{target}', schedule: every 1h,"
        " slo: {objective: 99.9, burn_rate_alerts: {page: [pager], ticket: [tickets]}}}\n"
        for name in ("svc-outage", "svc-slow-burn", "svc-fine")
    )
    return f"""\
version: 1
notifiers:
  pager: {{urls: ['{pager.url}']}}
  tickets: {{urls: ['{tickets.url}']}}
checks:
{checks}"""


def write_histories(db) -> None:
    history(db, "svc-outage", failing=600, since=600, share=1.0)  # a total outage for the last 10 minutes
    history(db, "svc-slow-burn", failing=DAY, since=DAY, share=0.005)  # 0.5 % of runs for a day: 5x the budget
    history(db, "svc-fine", failing=3 * DAY, since=3 * DAY, share=0.0005)  # 0.05 %: half the budget's pace


def test_one_query_counts_every_window_of_every_check(tmp_path):
    db = tmp_path / "p.duckdb"
    write_histories(db)
    with duckdb.connect(str(db)) as con:
        counts = slo_counts(con, ["svc-outage", "svc-fine", "nobody"], [300.0, 3600.0, 30 * DAY], NOW)
    assert counts["svc-outage"][300.0].failures == 5 and counts["svc-outage"][300.0].runs == 5
    assert counts["svc-outage"][3600.0].failures == 10 and counts["svc-outage"][3600.0].runs == 60
    assert counts["svc-outage"][30 * DAY].runs == 4 * 1440 + 1  # the four days written
    assert counts["svc-fine"][3600.0].failures == 0 and counts["nobody"][3600.0].runs == 0


@pytest.mark.parametrize("at", [NOW + 1234, NOW, NOW - 5 * 3600 + 17])  # on and off hour boundaries, before the last rollup
def test_rolled_up_hours_count_the_same_as_their_raw_runs(tmp_path, at):
    db = tmp_path / "p.duckdb"
    write_histories(db)
    lengths = [300.0, 1800.0, 3600.0, 7200.0, 6 * 3600.0, DAY, 3 * DAY, 30 * DAY]
    names = ["svc-outage", "svc-slow-burn", "svc-fine"]
    with duckdb.connect(str(db)) as con:
        raw = slo_counts(con, names, lengths, at)
        retention.roll_up(con, NOW - 2 * 3600)  # every hour up to two hours ago
        assert con.execute("SELECT count(*) FROM results_hourly").fetchall()[0][0] > 0
        mixed = slo_counts(con, names, lengths, at)
    assert mixed == raw and raw["svc-outage"][30 * DAY].runs > 1000


async def test_a_fast_burn_pages_a_slow_one_only_tickets_a_slow_enough_one_is_quiet_and_recovery_is_said(
    httpserver, pager, tickets, tmp_path
):
    db = tmp_path / "p.duckdb"
    httpserver.expect_request("/").respond_with_data("ok")
    write_histories(db)
    text = config(pager, tickets, httpserver.url_for("/"))
    async with running(text, db) as run:  # the first evaluation is at start
        await until(lambda: len(pager.posts) == 1 and len(tickets.posts) == 2)
        await asyncio.sleep(0.3)
        assert len(pager.posts) == 1 and len(tickets.posts) == 2  # and nothing else
    [page] = pager.posts
    assert page["title"] == "[pulse] svc-outage is burning its error budget (page)" and page["type"] == "failure"
    assert "SLO 99.9% over 30d:" in page["message"] and "of the error budget left" in page["message"]
    assert "burn rate 166.7x over 1h and 1000.0x over 5m (fires at 14.4x)" in page["message"]
    assert sorted(t["title"] for t in tickets.posts) == [
        "[pulse] svc-outage is burning its error budget (ticket)",
        "[pulse] svc-slow-burn is burning its error budget (ticket)",
    ]
    slow = next(t for t in tickets.posts if "svc-slow-burn" in t["title"])
    assert re.search(r"burn rate 4\.\dx over 1d and \d+\.\dx over 2h \(fires at 3x\)", slow["message"])  # 0.5 %: about 5x
    assert "fires at 14.4x" not in slow["message"] and "fires at 6x" not in slow["message"]
    # A restart neither repeats nor loses them; the short windows empty and the page stops.
    async with running(text, db, now=NOW + 60) as run:
        await asyncio.sleep(0.3)
        assert len(pager.posts) == 1 and len(tickets.posts) == 2
        for _ in range(40):  # an evaluation a minute; after 30 minutes the 6h/30m pair's short window is clean
            await run.clock.advance(60)
        await until(lambda: len(pager.posts) == 2)
        assert len(tickets.posts) == 2  # 1d/2h still burns for the outage and the slow burn
    recovered = pager.posts[1]
    assert recovered["title"] == "[pulse] svc-outage stopped burning its error budget (page)" and recovered["type"] == "success"
    # the first evaluation with a clean 30 minutes (the clock may run ahead of evaluations: at most 41m)
    assert re.search(r"^was firing (3\d|4[01])m, from 2026-11-22T12:00:00.000Z", recovered["message"])
    assert "now: SLO 99.9% over 30d:" in recovered["message"]
    rows = query(db, "SELECT check_name, source, resolved_at IS NULL, notifications_sent FROM incidents WHERE source IS NOT NULL ORDER BY ALL")
    assert rows == [
        ("svc-outage", "slo:page", False, 2),
        ("svc-outage", "slo:ticket", True, 1),
        ("svc-slow-burn", "slo:ticket", True, 1),
    ]
    assert query(db, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL") == [(0,)]
