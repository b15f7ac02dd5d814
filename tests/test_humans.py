"""People in the loop: silences, acknowledgements, pause/resume and depends_on. The real agent on
a manual clock, real targets, Apprise to a real local receiver, the real DuckDB file across
restarts, the API over real HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
from contextlib import asynccontextmanager

import httpx
import pytest
from werkzeug import Response

from pulse_agent.alerts.silence import Matcher, Silence, new_silence, silencing
from pulse_agent.config.depends import dependency_problems
from tests.agent_process import AgentProcess
from tests.conftest import free_port, run_cli
from tests.test_alerting import NOW, Receiver, query, running, until

TOKEN = "humans-token-0123456789"


class Path:
    """A target at its own path whose status the test sets."""

    def __init__(self, server, path: str) -> None:
        self.status = 200
        self.url = server.url_for(path)
        server.expect_request(path).respond_with_handler(lambda _: Response("x", status=self.status))


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def config(hook: str, checks: str) -> str:
    return f"""\
version: 1
agent: {{api_token: '{TOKEN}'}}
notifiers:
  hook: {{urls: ['{hook}'], backoff: 5s}}
defaults:
  schedule: every 10s
  alert: {{notify: [hook], failure_threshold: 2, success_threshold: 2}}
checks:
{checks}"""


@asynccontextmanager
async def api(text: str, db, now: float = NOW):
    async with running(text, db, now) as run:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{run.agent.port}", headers=headers, timeout=10) as client:
            yield run, client


async def test_a_silence_made_through_the_api_survives_a_restart_holds_the_failure_and_expires_on_time(httpserver, receiver, tmp_path):
    db, target = tmp_path / "p.duckdb", Path(httpserver, "/api")
    text = config(receiver.url, f"  - {{name: api, url: '{target.url}', labels: {{team: payments}}}}\n")
    async with api(text, db) as (run, client):
        bare = await client.post("/api/v1/silences", json={}, headers={"Authorization": ""})
        assert bare.status_code == 401  # token-guarded like the rest of /api
        bad = await client.post("/api/v1/silences", json={"matchers": ["team=~("], "reason": "x", "author": "y", "duration": "1m"})
        assert bad.status_code == 400 and "regular expression" in bad.json()["error"]
        made = await client.post(
            "/api/v1/silences",
            json={"matchers": ["team=payments", "check=~a.*"], "duration": "2m", "reason": "db migration", "author": "ana"},
        )
        assert made.status_code == 201 and made.json()["state"] == "active"
        silence_id = made.json()["id"]
    async with api(text, db, now=NOW + 1) as (run, client):
        [listed] = (await client.get("/api/v1/silences")).json()["silences"]
        assert listed["id"] == silence_id and listed["state"] == "active" and listed["author"] == "ana"
        target.status = 500
        await run.tick(3)  # the incident opens while silenced
        await asyncio.sleep(0.2)
        assert receiver.posts == []
        [(suppressed, delivered)] = await run.query("SELECT suppressed, delivered_at FROM outbox")
        assert suppressed.startswith(f"silence {silence_id} by ana") and delivered is None
        check = (await client.get("/api/v1/checks/api")).json()
        assert check["state"]["incident"]["held"].startswith("silence")
        while run.clock.time() < NOW + 120:  # still silenced up to its end
            await run.tick(1)
        await until(lambda: len(receiver.posts) == 1)  # said at the silence's end, not at the next run
        assert run.clock.time() - (NOW + 120) <= 10
        assert await run.query("SELECT epoch(created_at) FROM outbox WHERE suppressed IS NULL") == [(NOW + 120,)]
        assert "sent late: it was held back while silence" in receiver.posts[0]["message"]
        target.status = 200
        await run.tick(2)
        await until(lambda: len(receiver.posts) == 2)
        assert [(await client.get("/api/v1/silences")).json()["silences"][0]["state"]] == ["expired"]
    down, up = receiver.titles()
    assert down == "[pulse] api is down (status)" and up.startswith("[pulse] api is up again after 2m")


async def test_an_expired_silence_sends_again_and_an_unknown_one_is_404(httpserver, receiver, tmp_path):
    db, target = tmp_path / "p.duckdb", Path(httpserver, "/api")
    async with api(config(receiver.url, f"  - {{name: api, url: '{target.url}'}}\n"), db) as (run, client):
        made = (
            await client.post("/api/v1/silences", json={"matchers": ["check=api"], "duration": "1h", "reason": "r", "author": "a"})
        ).json()
        assert (await client.delete("/api/v1/silences/nope")).status_code == 404
        ended = await client.delete(f"/api/v1/silences/{made['id']}")
        assert ended.status_code == 200 and ended.json()["state"] == "expired"
        target.status = 500
        await run.tick(2)
        await until(lambda: len(receiver.posts) == 1)
    assert query(db, "SELECT count(*) FROM outbox WHERE suppressed IS NOT NULL") == [(0,)]


async def test_an_ack_stops_reminders_until_resolved_even_across_a_restart(httpserver, receiver, tmp_path):
    db, target = tmp_path / "p.duckdb", Path(httpserver, "/api")
    text = config(receiver.url, f"  - {{name: api, url: '{target.url}', alert: {{remind_every: 30s}}}}\n")
    target.status = 500
    async with api(text, db) as (run, client):
        await run.tick(5)  # failure, then a reminder 30 s later
        await until(lambda: len(receiver.posts) == 2)
        incident = (await client.get("/api/v1/checks/api")).json()["state"]["incident"]["id"]
        assert (await client.post("/api/v1/incidents/nope/ack")).status_code == 404
        acked = await client.post(f"/api/v1/incidents/{incident}/ack", json={"author": "ana"})
        assert acked.status_code == 200 and acked.json()["acked_by"] == "ana"
        await run.tick(7)
        await asyncio.sleep(0.2)
        assert len(receiver.posts) == 2
    async with api(text, db, now=NOW + 200) as (run, client):
        await run.tick(7)
        await asyncio.sleep(0.2)
        assert len(receiver.posts) == 2  # the ack was kept
        target.status = 200
        await run.tick(2)
        await until(lambda: len(receiver.posts) == 3)
    assert [p["type"] for p in receiver.posts] == ["failure", "failure", "success"]
    assert query(db, "SELECT acked_by FROM incidents") == [("ana",)]


async def test_a_paused_check_stops_running_across_a_restart_and_resume_runs_it(httpserver, receiver, tmp_path):
    db, target = tmp_path / "p.duckdb", Path(httpserver, "/api")
    text = config(receiver.url, f"  - {{name: api, url: '{target.url}'}}\n")
    async with api(text, db) as (run, client):
        await run.tick(2)
        assert (await client.post("/api/v1/checks/nope/pause")).status_code == 404
        paused = await client.post("/api/v1/checks/api/pause", json={"author": "ana", "reason": "vendor outage"})
        assert paused.status_code == 200 and paused.json()["paused"]["reason"] == "vendor outage"
        await run.tick(3)
        assert (await client.get("/api/v1/checks/api")).json()["next_due"] is None
    async with api(text, db, now=NOW + 100) as (run, client):
        await run.tick(3)
        assert (await client.get("/api/v1/checks/api")).json()["paused"]["author"] == "ana"
        assert (await client.post("/api/v1/checks/api/resume")).status_code == 200
        assert (await client.post("/api/v1/checks/api/resume")).status_code == 409
        await run.tick(2)
    [(before, after)] = query(
        db, f"SELECT count(*) FILTER (ts < to_timestamp({NOW + 60})), count(*) FILTER (ts >= to_timestamp({NOW + 60})) FROM results"
    )
    assert before == 2 and after >= 2  # nothing ran while paused


async def test_depends_on_holds_back_the_dependents_messages_and_the_dependencys_resolution_names_them(httpserver, receiver, tmp_path):
    db = tmp_path / "p.duckdb"
    database, app = Path(httpserver, "/db"), Path(httpserver, "/app")
    checks = f"  - {{name: db, url: '{database.url}'}}\n  - {{name: app, url: '{app.url}', depends_on: [db]}}\n"
    async with running(config(receiver.url, checks), db) as run:
        database.status = app.status = 500
        await run.tick(3)
        await until(lambda: len(receiver.posts) == 1)
        assert run.metric("pulse_incidents_open") == 2  # both recorded
        app.status = 200
        await run.tick(3)  # app recovers while db is still down: nothing to say about app
        assert run.metric("pulse_incidents_open") == 1
        database.status = 200
        await run.tick(3)
        await until(lambda: len(receiver.posts) == 2)
    assert receiver.titles() == ["[pulse] db is down (status)", "[pulse] db is up again after 1m"]
    assert "alerts of checks that depend on db were held back meanwhile: app" in receiver.posts[1]["message"]
    rows = query(db, "SELECT check_name, event, suppressed FROM outbox ORDER BY id")
    assert [r for r in rows if r[0] == "app"] == [
        ("app", "failure", "db (depends_on) is down"),
        ("app", "resolved", "db (depends_on) is down"),
    ]


async def test_a_dependents_failure_still_open_when_its_dependency_recovers_is_sent_then(httpserver, receiver, tmp_path):
    db = tmp_path / "p.duckdb"
    database, app = Path(httpserver, "/db"), Path(httpserver, "/app")
    checks = f"  - {{name: db, url: '{database.url}'}}\n  - {{name: app, url: '{app.url}', depends_on: [db]}}\n"
    async with running(config(receiver.url, checks), db) as run:
        database.status = app.status = 500
        await run.tick(3)
        database.status = 200
        await run.tick(4)
        await until(lambda: len(receiver.posts) == 3)
        app.status = 200
        await run.tick(2)
        await until(lambda: len(receiver.posts) == 4)
    assert receiver.titles()[:2] == ["[pulse] db is down (status)", "[pulse] db is up again after 30s"]
    assert receiver.titles()[2:] == ["[pulse] app is down (status)", "[pulse] app is up again after 1m 10s"]
    assert "sent late: it was held back while db (depends_on) is down" in receiver.posts[2]["message"]
    assert "its failure was not sent" not in receiver.posts[3]["message"]  # it was, late


@pytest.mark.parametrize(
    ("matchers", "check", "labels", "silenced"),
    [
        (["check=api"], "api", {}, True),
        (["check=api"], "web", {}, False),
        (["team=payments"], "api", {"team": "payments"}, True),
        (["team!=payments"], "api", {"team": "payments"}, False),
        (["team!=payments"], "api", {}, True),  # a missing label is ""
        (["team=~pay.*", "check!~web.*"], "api", {"team": "payments"}, True),
        (["team=~pay"], "api", {"team": "payments"}, False),  # a regex matches the whole value
        (["check=api", "tier=1"], "api", {"tier": "2"}, False),  # every matcher must hold
        (['tier=~"1|2"'], "api", {"tier": "2"}, True),
    ],
)
def test_silence_matching(matchers, check, labels, silenced):
    silence = new_silence({"matchers": matchers, "duration": "1h", "reason": "r", "author": "a"}, "s1", NOW)
    assert (silencing([silence], check, labels, NOW + 10) is not None) is silenced
    assert silencing([silence], check, labels, NOW + 3600) is None  # ended


def test_the_active_silence_ending_last_is_the_one_named():
    short = Silence("a", (Matcher("check", "=", "api"),), NOW, NOW + 60, "r", "x", NOW)
    long = Silence("b", (Matcher("check", "=~", ".*"),), NOW, NOW + 600, "r", "x", NOW)
    later = Silence("c", (Matcher("check", "=", "api"),), NOW + 100, NOW + 900, "r", "x", NOW)
    assert silencing([short, long, later], "api", {}, NOW + 10).id == "b"
    assert silencing([short, later], "api", {}, NOW + 200).id == "c"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"matchers": [], "duration": "1h", "reason": "r", "author": "a"}, "matchers"),
        ({"matchers": ["check"], "duration": "1h", "reason": "r", "author": "a"}, "matcher 'check'"),
        ({"matchers": ["check=a"], "duration": "1h", "author": "a"}, "reason"),
        ({"matchers": ["check=a"], "duration": "1h", "reason": "r"}, "author"),
        ({"matchers": ["check=a"], "reason": "r", "author": "a"}, "ends_at"),
        ({"matchers": ["check=a"], "duration": "soon", "reason": "r", "author": "a"}, "duration"),
        ({"matchers": ["check=a"], "ends_at": "2020-01-01T00:00:00Z", "reason": "r", "author": "a"}, "in the past"),
        ({"matchers": ["check=a"], "duration": "400d", "reason": "r", "author": "a"}, "366d"),
        ({"matchers": ["check=a"], "starts_at": "9999-12-31T23:30:00Z", "duration": "1h", "reason": "r", "author": "a"}, "starts_at"),
        ({"matchers": ["check=~(?<=x)y"], "duration": "1h", "reason": "r", "author": "a"}, "lookaround"),  # RE2, as every user regex
        ([], "JSON object"),
    ],
)
def test_a_wrong_silence_is_refused_with_the_field_named(body, problem):
    with pytest.raises(ValueError, match=problem):
        new_silence(body, "s", NOW)


def test_dependency_problems_name_unknown_checks_self_references_and_each_cycle_once():
    deps = {"a": ["b", "nope"], "b": ["c"], "c": ["a", "c"], "d": ["a"]}
    assert dependency_problems(deps) == [
        ("a", 1, "unknown check 'nope'"),
        ("c", 1, "a check cannot depend on itself"),
        ("c", 0, "depends_on cycle: a -> b -> c -> a"),
    ]
    assert dependency_problems({"a": [], "b": ["a"], "c": ["a", "b"]}) == []


def test_the_cli_silences_pauses_and_acks_through_the_running_agent(tmp_path):
    port = free_port()
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        f"version: 1\nagent: {{listen: '127.0.0.1:{port}', api_token: '{TOKEN}'}}\n"
        f"checks:\n  - {{name: api, url: 'http://127.0.0.1:{port}/healthz', schedule: every 1h, labels: {{team: core}}}}\n"
    )
    env = {"PULSE_API_TOKEN": TOKEN}
    agent = AgentProcess("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"), env=env)
    try:
        agent.wait_for(lambda r: r.get("msg") == "agent started")
        added = run_cli("silence", "add", "-c", str(cfg), "-m", "team=core", "-m", "check=~a.*", "--duration", "2h", "--reason", "deploy",
                        "--author", "ana", env=env)  # fmt: skip
        assert added.returncode == 0, added.stderr
        silence_id = added.stdout.split()[1]
        listed = run_cli("silence", "list", "-c", str(cfg), "--format", "json", env=env)
        [silence] = json.loads(listed.stdout)
        assert silence["id"] == silence_id and silence["matchers"] == ["team=core", "check=~a.*"] and silence["state"] == "active"
        wrong = run_cli("silence", "add", "-c", str(cfg), "-m", "team", "--duration", "2h", "--reason", "x", env=env)
        assert wrong.returncode == 1 and "matcher 'team'" in wrong.stderr and "Traceback" not in wrong.stderr
        assert run_cli("silence", "expire", silence_id, "-c", str(cfg), env=env).returncode == 0
        assert "expired" in run_cli("silence", "list", "-c", str(cfg), env=env).stdout
        assert run_cli("pause", "api", "-c", str(cfg), "--reason", "vendor", env=env).stdout.strip() == "check api paused"
        assert run_cli("resume", "api", "-c", str(cfg), env=env).stdout.strip() == "check api resumed"
        missing = run_cli("ack", "api@1", "-c", str(cfg), env=env)
        assert missing.returncode == 1 and "no open incident" in missing.stderr
        no_token = run_cli("silence", "list", "-c", str(cfg))
        assert no_token.returncode == 1 and "PULSE_API_TOKEN" in no_token.stderr
    finally:
        assert agent.stop(signal.SIGTERM) == 0
