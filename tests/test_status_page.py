"""The status page, its data and badges through the real agent (manual clock), a real DuckDB file
and real local targets: what is public, where, under which names; figures from rollups past raw
retention equal the report's; nothing secret in any answer."""

from __future__ import annotations

import asyncio
import json

import duckdb
import httpx
import pytest

from pulse_agent.config import parse_config
from pulse_agent.config.model import StatusPageSpec
from pulse_agent.report import ReportRequest, build_report
from pulse_agent.result import Result
from pulse_agent.status import page as status_page
from pulse_agent.status import sql
from pulse_agent.status.badge import badge
from pulse_agent.status.html import bar_class
from pulse_agent.store import ResultStore, retention
from tests.test_alerting import Target
from tests.test_api import TOKEN, agent_at, tick, validate

SECRETS = ("hunter2", "query-secret", "very-secret-header", "bearer-secret-x", "pw-in-error", "key-in-error")


def page_config(target: Target, page: str) -> str:
    secret_url = target.url.replace("http://", "http://probe:hunter2@") + "?token=query-secret"
    return f"""\
version: 1
agent: {{listen: '127.0.0.1:0', api_token: '{TOKEN}'}}
{page}
checks:
  - name: api
    url: {secret_url}
    schedule: every 10s
    headers: {{X-Api-Key: very-secret-header}}
    labels: {{public: "true", team: core}}
    alert: {{failure_threshold: 1, success_threshold: 1}}
  - name: down-one
    url: http://127.0.0.1:1/x?key=key-in-error
    headers: {{Cookie: session=pw-in-error}}
    schedule: every 10s
    bearer_token: bearer-secret-x
    labels: {{public: "true"}}
    alert: {{failure_threshold: 1}}
  - {{name: internal, url: '{target.url}', schedule: every 10s, labels: {{team: core}}}}
"""


PAGE = """\
status_page:
  title: Acme status
  description: Our public services
  checks: {labels: {public: "true"}}
  group_by: team
  listen: 127.0.0.1:0
  names: {api: Public API}
"""


@pytest.fixture
def target(httpserver):
    return Target(httpserver)


async def test_page_data_and_badges_show_shown_checks_by_public_name_and_nothing_secret(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(page_config(target, PAGE))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, clock, client):
        await tick(agent, clock, 3)
        await agent.store.call(lambda con: None)  # every result submitted so far is written
        public = httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.status_port}", timeout=10)
        async with public:
            data = (await public.get("/api/v1/status")).json()
            validate(data, "/api/v1/status")
            assert (await client.get("/api/v1/status")).json() == {**data, "generated_at": data["generated_at"]}
            assert (await client.get("/api/v1/status", headers={"Authorization": ""})).status_code == 401  # main address: the token
            assert [g["name"] for g in data["groups"]] == ["core", "Other"]
            [api], [down] = (g["checks"] for g in data["groups"])
            assert (api["id"], api["name"], api["state"], api["uptime_pct"]["24h"], api["runs"]["24h"]) == (
                "api",
                "Public API",
                "up",
                100.0,
                3,
            )
            assert (down["name"], down["state"], down["uptime_pct"]["24h"]) == ("down-one", "down", 0.0)
            assert data["state"] == "down" and data["title"] == "Acme status"
            assert [(i["check"], i["open"], i["error_kind"]) for i in data["incidents"]] == [("down-one", True, "connect")]
            assert api["daily"]["from"] == "2026-08-25" and len(api["daily"]["runs"]) == 90
            assert (api["daily"]["runs"][-1], api["daily"]["uptime_pct"][-1], api["daily"]["uptime_pct"][0]) == (3, 100.0, None)

            html = (await public.get("/status")).text
            assert "Public API" in (await public.get("/")).text
            assert "Public API" in html and "Acme status" in html and ">Down<" in html and ">Up<" in html
            assert "internal" not in html and "internal" not in json.dumps(data)

            answers = [html, json.dumps(data)]
            for check in ("api", "down-one"):
                for path in (
                    "status.svg",
                    "status.json",
                    "uptime/24h.svg",
                    "uptime/90d.json",
                    "response-time/7d.svg",
                    "response-time/24h.json",
                ):
                    answer = await public.get(f"/badge/{check}/{path}")
                    assert answer.status_code == 200, (check, path, answer.text)
                    answers.append(answer.text)
            events = asyncio.create_task(_events(public, 2))
            await asyncio.sleep(0.2)
            await tick(agent, clock, 1)
            answers += await asyncio.wait_for(events, 10)
            for text in answers:
                for secret in SECRETS:
                    assert secret not in text
                assert "127.0.0.1:1" not in text and target.url.split("//")[1] not in text  # no URL, no host

            # Only the page's checks have badges, and only the page lives on the public address.
            assert (await public.get("/badge/internal/status.svg")).status_code == 404
            assert (await public.get("/badge/api/uptime/1y.svg")).status_code == 404
            assert (await public.get("/badge/api/status.png")).status_code == 404
            for path in ("/api/v1/checks", "/metrics", "/api/v1/events"):
                assert (await public.get(path)).status_code == 404, path
            assert (await public.post("/-/reload")).status_code == 404


async def _events(client: httpx.AsyncClient, count: int) -> list[str]:
    out: list[str] = []
    async with client.stream("GET", "/status/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                out.append(line)
                if len(out) == count:
                    return out
    return out


async def test_badges_are_cacheable_and_speak_shields_json(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(page_config(target, "status_page: {names: {api: Public API}}"))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, clock, client):
        await tick(agent, clock, 2)
        await agent.store.call(lambda con: None)
        svg = await client.get("/badge/api/uptime/24h.svg")
        assert svg.headers["Content-Type"].startswith("image/svg+xml") and "max-age=60" in svg.headers["Cache-Control"]
        assert 'aria-label="uptime 24h: 100%"' in svg.text
        again = await client.get("/badge/api/uptime/24h.svg", headers={"If-None-Match": svg.headers["ETag"]})
        assert again.status_code == 304 and again.content == b""
        shield = (await client.get("/badge/api/status.json")).json()
        assert shield == {"schemaVersion": 1, "label": "Public API", "message": "up", "color": "brightgreen"}
        assert (await client.get("/badge/down-one/uptime/7d.json")).json()["message"] == "0%"
        assert (await client.get("/badge/internal/status.svg")).status_code == 200  # checks: all (the default)


@pytest.mark.parametrize("page", ["", "status_page: {enabled: false}"])
async def test_without_an_enabled_page_nothing_is_served(target, tmp_path, page):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(page_config(target, page))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, _, client):
        for path in ("/", "/status", "/status/events", "/api/v1/status", "/badge/api/status.svg"):
            answer = await client.get(path)
            assert answer.status_code == 404 and "status_page" in answer.text, path
        assert agent.status_port is None


NOW = 1_800_000_000.0 - 1_800_000_000.0 % 3600 + 3600 * 5 + 1234.5  # not on an hour
DAY = 86400.0


async def test_figures_past_raw_retention_come_from_rollups_and_equal_the_report(tmp_path):
    """100 days of two checks every 20 minutes, rolled up, raw rows older than 20 days deleted:
    the page's 7/30/90-day uptime and daily bars equal the report's over the same hours."""
    db = tmp_path / "p.duckdb"
    store = ResultStore(db)
    for i in range(int(100 * DAY / 1200)):
        ts = NOW - 100 * DAY + 1200 * i
        store.submit(Result("api", ts, i % 7 != 0, response_time_ms=10.0 + i % 50))
        store.submit(Result("web", ts + 60, i % 50 != 0, response_time_ms=5.0))
    await store.call(lambda con: retention.roll_up(con, NOW))
    while await store.call(lambda con: retention.delete_raw_batch(con, NOW - 20 * DAY)):
        pass
    store.close()
    con = duckdb.connect(str(db), read_only=True)
    [(oldest,)] = con.execute("SELECT epoch(min(ts)) FROM results").fetchall()
    assert oldest > NOW - 21 * DAY  # raw history is gone past retention
    got = sql.figures(con, ["api", "web"], NOW)
    for key in ("7d", "30d", "90d"):
        start = NOW - sql.WINDOWS[key]
        hour_start = start - start % 3600  # the page counts whole rolled-up hours
        rows = {r["check_name"]: r for r in build_report(con, ReportRequest(hour_start, NOW)).rows}
        for check in ("api", "web"):
            runs, ok, _ = got.windows[check][key]
            assert (runs, ok) == (rows[check]["runs"], rows[check]["ok_runs"]), (check, key)
    by_day = build_report(con, ReportRequest(NOW - NOW % DAY - 89 * DAY, NOW, by="day")).rows  # the 90 bars
    assert len(by_day) == 2 * 90
    for row in by_day:
        day = int(json_ts(row["bucket"]) // DAY)
        runs, ok = got.days[row["check_name"]][day]
        assert runs == row["runs"] and runs - ok == row["failures"]
    points = got.series["api"]
    assert len(points) >= 24 and points == sorted(points) and points[0][0] > NOW - 25 * 3600 and points[-1][0] > NOW - 3600
    assert got.incidents == []


def json_ts(text: str) -> float:
    from pulse_agent.result import from_iso

    return from_iso(text)


def test_states_groups_and_maintenance_are_what_a_reader_expects():
    assert status_page.state_of(status_page.Live(None)) == "not_run"
    assert status_page.state_of(status_page.Live(1.0, ok=False, in_maintenance=True)) == "maintenance"
    assert status_page.state_of(status_page.Live(1.0, ok=True, degraded=True)) == "degraded"
    assert status_page.overall(["up", "maintenance", "degraded"]) == "degraded" and status_page.overall([]) == "not_run"
    assert [bar_class(p) for p in (100.0, 99.5, 96.0, 10.0, None)] == ["ok", "minor", "major", "bad", "none"]
    spec = parse_config(
        """
version: 1
maintenance: [{schedule: "at 2026-11-23T02:00:00Z", duration: 2h}]
status_page: {group_by: team}
checks:
  - {name: a, url: "http://x/", labels: {team: b}, maintenance: [{schedule: "0 11 * * *", duration: 2h}]}
  - {name: b, url: "http://x/", labels: {team: a}}
  - {name: c, url: "http://x/"}
  - {name: d, url: "http://x/", enabled: false}
""",
        "t.yaml",
    )
    page: StatusPageSpec = spec.status_page
    now = 1795348800.0  # 2026-11-22T12:00:00Z: a's daily window (11:00-13:00) is open
    shown = status_page.visible(page, spec.checks)
    assert [c.name for c in shown] == ["a", "b", "c"]
    windows = status_page.maintenance(page, shown, now)
    assert [(w["starts_at"], w["ongoing"], w["checks"]) for w in windows] == [
        ("2026-11-22T11:00:00.000Z", True, ["a"]),
        ("2026-11-23T02:00:00.000Z", False, ["a", "b", "c"]),
    ]
    entries = [{"state": s, "group": g} for s, g in (("up", "b"), ("down", "a"), ("up", None))]
    assert [(g["name"], g["state"]) for g in status_page.groups(page, entries)] == [("a", "down"), ("b", "up"), ("Other", "up")]
    entry = {"name": "A", "state": "down", "uptime_pct": {"7d": 99.2}, "response_time_ms": {"24h": None}}
    assert badge(entry, "status", None).color == "red" and badge(entry, "uptime", "7d").message == "99.2%"
    assert badge(entry, "response-time", "24h").color == "lightgrey"
