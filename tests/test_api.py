"""The agent API against its OpenAPI document: the real agent in-process (manual clock), a real
target and DuckDB file, requests over real HTTP with httpx."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import httpx
import pytest
from jsonschema import Draft202012Validator

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.clock import ManualClock
from pulse_agent.config import load_config
from pulse_agent.web.api import openapi_text
from tests.scrape import sample
from tests.test_alerting import NOW, Target

TOKEN = "s3cret-token-0123456789"
DOC = json.loads(openapi_text())


def status_api_routes(agent: Agent) -> list:
    """The status page's routes under /api (the page and badges are not API)."""
    from pulse_agent.web.status import status_routes

    return [r for r in status_routes(agent) if r.path.startswith("/api/")]


def validate(body: object, path: str, method: str = "get", status: int = 200) -> None:
    """body matches the schema the OpenAPI document gives for this answer."""
    schema = DOC["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    errors = list(Draft202012Validator({**schema, "components": DOC["components"]}).iter_errors(body))
    assert not errors, [e.message for e in errors]


def config_text(target: Target, *, token: bool = True, extra: str = "") -> str:
    return f"""\
version: 1
agent: {{listen: '127.0.0.1:0'{f", api_token: '{TOKEN}'" if token else ""}}}
checks:
  - name: api
    url: {target.url.replace("http://", "http://probe:hunter2@")}
    schedule: every 10s
    headers: {{X-Api-Key: very-secret-header}}
    labels: {{team: core}}
    alert: {{failure_threshold: 2, success_threshold: 1}}
  - {{name: paused, url: 'http://127.0.0.1/', bearer_token: very-secret-bearer, enabled: false}}
{extra}"""


@pytest.fixture
def target(httpserver):
    return Target(httpserver)


@asynccontextmanager
async def agent_at(cfg, db, *, token: bool = True):
    clock = ManualClock(NOW)
    agent = Agent(load_config(cfg), RunOptions(database=str(db), listen="127.0.0.1:0", config=str(cfg), watch=False), clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.port}", headers=headers, timeout=10) as client:
        try:
            yield agent, clock, client
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 20) == 0


async def tick(agent: Agent, clock: ManualClock, runs: int = 1) -> None:
    for _ in range(runs):
        await clock.advance(10)
        await agent.executor.scheduler.drain(10)


async def test_with_a_token_the_api_needs_it_and_the_probes_do_not(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "p.duckdb", token=False) as (_, _, client):
        for path in ("/api/v1/checks", "/api/v1/openapi.json"):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 401, (path, headers)
                assert answer.headers["WWW-Authenticate"].startswith("Bearer")
                validate(answer.json(), "/api/v1/checks", status=401)
        assert (await client.post("/-/reload")).status_code == 401
        for path in ("/metrics", "/healthz", "/readyz"):
            assert (await client.get(path)).status_code == 200
        assert (await client.get("/api/v1/checks", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200


async def test_without_a_token_the_api_is_open(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target, token=False))
    async with agent_at(cfg, tmp_path / "p.duckdb", token=False) as (_, _, client):
        assert (await client.get("/api/v1/checks")).status_code == 200


async def test_checks_results_run_and_incidents_match_the_document_and_hide_secrets(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, clock, client):
        listing = (await client.get("/api/v1/checks")).json()
        validate(listing, "/api/v1/checks")
        check, paused = listing["checks"]
        assert paused["enabled"] is False and paused["next_due"] is None
        assert check["url"].startswith("http://***@localhost:") and check["last_result"] is None
        assert check["labels"] == {"team": "core"} and check["schedule"] == "every 10s"

        ran = await client.post("/api/v1/checks/api/run")
        assert ran.status_code == 200
        validate(ran.json(), "/api/v1/checks/{name}/run", "post")
        assert ran.json()["ok"] is True and ran.json()["status_code"] == 200

        target.status = 503
        await tick(agent, clock, 2)
        one = (await client.get("/api/v1/checks/api")).json()
        validate(one, "/api/v1/checks/{name}")
        assert one["state"]["incident"]["first_error_kind"] == "status"
        assert one["state"]["consecutive_failures"] == 2 and one["last_result"]["status_code"] == 503

        await asyncio.sleep(1.2)  # the store writes results at least once a second
        results = (await client.get("/api/v1/checks/api/results", params={"limit": 2})).json()
        validate(results, "/api/v1/checks/{name}/results")
        assert [r["status_code"] for r in results["results"]] == [503, 503]  # newest first
        assert len((await client.get("/api/v1/checks/api/results", params={"since": "2026-11-22T12:00:05Z"})).json()["results"]) == 2

        incidents = (await client.get("/api/v1/incidents", params={"open": "true"})).json()
        validate(incidents, "/api/v1/incidents")
        assert [i["check_name"] for i in incidents["incidents"]] == ["api"]

        everything = "".join([json.dumps(listing), json.dumps(one), json.dumps(results), json.dumps(incidents), ran.text])
        for secret in ("hunter2", "very-secret-header", "very-secret-bearer", "X-Api-Key"):
            assert secret not in everything


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("get", "/api/v1/checks/nope", 404, "no check named 'nope'"),
        ("post", "/api/v1/checks/nope/run", 404, "no check named 'nope'"),
        ("get", "/api/v1/checks/api/results?limit=0", 400, "limit='0': give a whole number from 1 to 10000"),
        ("get", "/api/v1/checks/api/results?since=yesterday", 400, "since='yesterday': give an ISO-8601 time"),
        ("get", "/api/v1/incidents?limit=x", 400, "limit='x'"),
    ],
)
async def test_bad_requests_say_what_to_do(target, tmp_path, method, path, status, message):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (_, _, client):
        answer = await client.request(method.upper(), path)
        assert answer.status_code == status
        assert answer.json()["error"].startswith(message)


async def test_events_stream_results_and_incidents(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, clock, client):
        events: list[tuple[str, dict]] = []

        async def listen() -> None:
            async with client.stream("GET", "/api/v1/events") as stream:
                kind = None
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        events.append((kind, json.loads(line[6:])))

        listener = asyncio.create_task(listen())
        for _ in range(100):  # until the stream has subscribed (0.2 s was not enough on a loaded machine)
            if agent.events.active:
                break
            await asyncio.sleep(0.05)
        assert agent.events.active
        target.status = 500
        await tick(agent, clock, 2)
        for _ in range(100):
            if len(events) >= 3:
                break
            await asyncio.sleep(0.02)
    await asyncio.wait_for(listener, 5)  # the stream ends when the agent stops
    kinds = [k for k, _ in events]
    assert kinds == ["result", "result", "incident"]
    result_schema = {"$ref": "#/components/schemas/Result", "components": DOC["components"]}
    incident_schema = {"$ref": "#/components/schemas/IncidentEvent", "components": DOC["components"]}
    Draft202012Validator(result_schema).validate(events[0][1])
    Draft202012Validator(incident_schema).validate(events[2][1])
    assert events[2][1]["event"] == "failure" and events[2][1]["check"] == "api"


async def test_reload_endpoint_refuses_a_broken_config_and_applies_a_fixed_one(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, _, client):
        cfg.write_text(config_text(target, extra="  - {name: web, url: 'http://127.0.0.1/', timeout: 0s}\n"))
        refused = await client.post("/-/reload")
        assert refused.status_code == 400
        validate(refused.json(), "/-/reload", "post", 400)
        assert refused.json()["errors"] == [f"{cfg}:11:52: checks[2].timeout: must be more than 0"]
        assert sample(agent.metrics, "pulse_config_last_reload_successful") == 0
        assert [c.name for c in agent.executor.scheduler.checks] == ["api"]  # paused is disabled

        cfg.write_text(config_text(target, extra="  - {name: web, url: 'http://127.0.0.1/', timeout: 1s}\n"))
        applied = await client.post("/-/reload")
        assert applied.status_code == 200
        validate(applied.json(), "/-/reload", "post")
        assert applied.json()["checks"] == {"added": 1, "removed": 0, "changed": 0, "unchanged": 2}
        assert sample(agent.metrics, "pulse_config_last_reload_successful") == 1
        assert sample(agent.metrics, "pulse_config_reloads_total", {"result": "failure"}) == 1
        assert sample(agent.metrics, "pulse_config_reloads_total", {"result": "success"}) == 1
        assert sorted(c.name for c in agent.executor.scheduler.checks) == ["api", "web"]
        versions = await agent.store.read(
            lambda con: con.execute("SELECT reason, added, unchanged FROM config_versions ORDER BY applied_at").fetchall()
        )
        assert versions == [("start", ["api", "paused"], 0), ("api", ["web"], 2)]


async def test_every_route_is_documented_and_every_documented_path_is_served(target, tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config_text(target))
    async with agent_at(cfg, tmp_path / "p.duckdb") as (agent, _, client):
        served = (await client.get("/api/v1/openapi.json")).json()
        assert served == DOC
        Draft202012Validator.check_schema({"components": DOC["components"]})
        from pulse_agent.web.api import api_routes

        routes = {(r.method.lower(), r.path) for r in api_routes(agent)}
        routes |= {(r.method.lower(), r.path) for r in status_api_routes(agent)}
        from pulse_agent.web.push import push_routes

        routes |= {(r.method.lower(), r.path) for r in push_routes(agent)}
        documented = {(m, p) for p, ops in DOC["paths"].items() for m in ops}
        assert routes == documented
