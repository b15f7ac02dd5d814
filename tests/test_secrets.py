"""Secrets stay where they belong: one sweep plants a distinct secret in every place a config can
hold one and searches everything the agent and the CLI put out for any of them.

Places: a check URL's user, password and query value; a header from ${VAR}; basic_auth;
bearer_token; notifier URLs (a working one and a dead one); the API token; and, in a broken
config, a numeric bearer_token, a numeric header from ${VAR} and a host-less URL's password.
Outputs: logs at debug, every DuckDB table, a Parquet export, /metrics, every API answer
(errors and the SSE stream included), `check --format json`, `validate`, the refused reload
(log and `POST /-/reload`), `report` in every format, and the bodies a real receiver got.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import signal
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import pytest
from pytest_httpserver import HTTPServer

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.config import load_config
from pulse_agent.probe.connect import target_of
from pulse_agent.probe.target import Target
from tests.agent_process import AgentProcess
from tests.conftest import free_port, run_cli

S = {  # every planted secret, each distinct and unlikely anywhere else
    "url_user": "urluser-5a1c9",
    "url_pass": "urlpass-83be2",
    "url_query": "urlquery-0c77f",
    "header": "hdrsecret-4411d",
    "basic_pass": "basicpass-9e02a",
    "bearer": "bearer-6d3f1",
    "notify_pass": "notifypass-1b8e4",
    "dead_pass": "deadpass-ffa01",
    "api_token": "apitoken-27c5b-0d9e1f",
    "bad_bearer": "987654321012",
    "bad_header": "55501234987",
    "bad_url_pass": "badurlpass-7cc30",
    "push_token": "pushtoken-3f9a1c7e2b",
}
NEEDLES = [*S.values(), base64.b64encode(f"basicuser:{S['basic_pass']}".encode()).decode()]
CHECKS = ("userinfo", "header", "basic", "bearer")


def hits(text: str) -> list[str]:
    """The planted secrets found in text."""
    return [n for n in NEEDLES if n in text]


def good_config(port: int, db: Path) -> str:
    target = f"http://127.0.0.1:{port}/fail"
    return textwrap.dedent(f"""\
        version: 1
        agent: {{listen: "127.0.0.1:0", database: "{db}", log_level: debug, api_token: "${{PULSE_API_TOKEN}}"}}
        notifiers:
          ops:
            urls: ["json://nuser:{S["notify_pass"]}@127.0.0.1:{port}/hook", "json://duser:{S["dead_pass"]}@127.0.0.1:{free_port()}/x"]
            backoff: 1s
        defaults: {{schedule: 1s, timeout: 2s, alert: {{notify: [ops], failure_threshold: 1}}}}
        checks:
          - name: userinfo
            url: "http://{S["url_user"]}:{S["url_pass"]}@127.0.0.1:{port}/fail?api_key={S["url_query"]}&page=2"
          - name: header
            url: {target}
            headers: {{X-Api-Key: "${{HDR_SECRET}}"}}
          - name: basic
            url: {target}
            basic_auth: {{username: basicuser, password: "{S["basic_pass"]}"}}
          - name: bearer
            url: {target}
            bearer_token: "{S["bearer"]}"
          - name: pushed
            push: {{grace: 1s, token: "{S["push_token"]}"}}
        """)


def broken_config(port: int, db: Path) -> str:
    return textwrap.dedent(f"""\
        version: 1
        agent: {{listen: "127.0.0.1:0", database: "{db}", api_token: "${{PULSE_API_TOKEN}}"}}
        checks:
          - name: bearer
            url: http://127.0.0.1:{port}/fail
            bearer_token: {S["bad_bearer"]}
          - name: header
            url: http://127.0.0.1:{port}/fail
            headers:
              X-Api-Key: ${{BAD_HEADER}}
          - name: nohost
            url: "http://someone:{S["bad_url_pass"]}@"
        """)


def sse_reader(url: str, headers: dict[str, str], into: list[str], stop: threading.Event) -> None:
    with httpx.stream("GET", url, headers=headers, timeout=10) as response:
        for line in response.iter_lines():
            into.append(line)
            if stop.is_set() and len(into) > 3:
                return


def hook_bodies(server: HTTPServer) -> list[str]:
    return [r.get_data(as_text=True) for r, _ in server.log if r.path == "/hook"]


@pytest.mark.timeout(240)  # many CLI subprocesses: minutes on a loaded 2-core machine
def test_no_planted_secret_reaches_any_output(tmp_path, httpserver: HTTPServer):
    httpserver.expect_request("/fail").respond_with_data("down", status=503)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    db, cfg = tmp_path / "pulse.duckdb", tmp_path / "pulse.yaml"
    env = {"PULSE_API_TOKEN": S["api_token"], "HDR_SECRET": S["header"], "BAD_HEADER": S["bad_header"]}
    good = good_config(httpserver.port, db)
    cfg.write_text(good)
    outputs: dict[str, str] = {}

    agent = AgentProcess("-c", str(cfg), env=env)
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        base = f"http://{started['listen']}"
        auth = {"Authorization": f"Bearer {S['api_token']}"}
        deadline = time.monotonic() + 20  # every check fails and its notification reaches the receiver
        while len(hook_bodies(httpserver)) < len(CHECKS) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(hook_bodies(httpserver)) >= len(CHECKS), "not every check alerted"
        agent.wait_for(lambda r: r.get("msg") == "notification failed, will retry")  # the dead notifier's error is out

        events: list[str] = []
        stop_sse = threading.Event()
        sse = threading.Thread(target=sse_reader, args=(f"{base}/api/v1/events", auth, events, stop_sse), daemon=True)
        sse.start()
        with httpx.Client(base_url=base, headers=auth, timeout=10) as api:
            answers = [
                api.get("/metrics"),
                api.get("/api/v1/checks"),
                *(api.get(f"/api/v1/checks/{n}") for n in CHECKS),
                *(api.get(f"/api/v1/checks/{n}/results") for n in CHECKS),
                *(api.post(f"/api/v1/checks/{n}/run") for n in CHECKS),
                api.get("/api/v1/incidents"),
                api.post("/api/v1/report", json={"since": 3600}),
                api.post("/api/v1/report", json={"sql": "SELECT * FROM outbox"}),
                api.get("/api/v1/checks/nope"),
                api.get("/api/v1/checks/userinfo/results", params={"limit": "x"}),
                api.get("/api/v1/checks/pushed"),
                api.post("/api/v1/checks/pushed/run"),
                httpx.get(f"{base}/api/v1/checks", headers={"Authorization": "Bearer wrong"}, timeout=10),
            ]
            assert answers[1].status_code == 200 and answers[-1].status_code == 401
            outputs["api"] = "\n".join(f"{a.request.url} {a.status_code} {a.headers} {a.text}" for a in answers)
            pings = [  # a push check's pings: their answers (the request URLs carry the token: they are ours)
                httpx.get(f"{base}/push/pushed?token={S['push_token']}", timeout=10),
                httpx.post(f"{base}/push/pushed/fail", headers={"Authorization": f"Bearer {S['push_token']}"}, timeout=10),
                httpx.get(f"{base}/push/pushed/start?token={S['push_token']}x", timeout=10),
            ]
            assert [p.status_code for p in pings] == [200, 200, 404]
            outputs["push"] = "\n".join(f"{p.status_code} {p.headers} {p.text}" for p in pings)
            stop_sse.set()
            api.post("/api/v1/checks/userinfo/run")  # one more event, so the reader notices
            sse.join(10)
            outputs["sse"] = "\n".join(events)
            assert any(e.startswith("event: result") for e in events)

            cfg.write_text(broken_config(httpserver.port, db))  # refused: by the watcher, then by the API
            refused = agent.wait_for(lambda r: r.get("msg", "").startswith("config reload refused"))
            answer = api.post("/-/reload")
            assert answer.status_code == 400
            outputs["reload"] = answer.text + json.dumps(refused)
            assert "bearer_token" in answer.text and "has no host" in answer.text  # the errors are there, named
        cfg.write_text(good)  # the running config again: nothing to reload
        assert agent.stop(signal.SIGTERM) == 0
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
    agent.wait_for(lambda r: r.get("msg") == "agent stopped")
    while not agent.lines.empty():
        agent.seen.append(agent.lines.get())
    outputs["logs"] = "\n".join(json.dumps(r) for r in agent.seen)

    with duckdb.connect(str(db), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        assert {"results", "incidents", "outbox", "config_versions"} <= set(tables)
        outputs["db"] = "\n".join(f"{t}: {con.execute(f'SELECT * FROM {t}').fetchall()}" for t in tables)
        assert con.execute("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL").fetchone()[0] > 0

    broken = tmp_path / "broken.yaml"
    broken.write_text(broken_config(httpserver.port, db))
    out = tmp_path / "export"
    commands = [
        ("validate", "-c", str(broken)),
        ("validate", "--show-schedule", "-c", str(cfg)),
        *(("check", name, "-c", str(cfg), "--format", "json") for name in CHECKS),
        *(("report", "--db", str(db), "-c", str(cfg), "--format", fmt) for fmt in ("table", "json", "csv", "markdown")),
        ("report", "--db", str(db), "-c", str(cfg), "--format", "json", "--incidents"),
        ("notify", "ops", "-c", str(cfg)),
        ("check", "pushed", "-c", str(cfg), "--format", "json"),
    ]
    with ThreadPoolExecutor(2) as pool:  # each is a process (mostly imports); the database is only read
        cli = list(pool.map(lambda args: run_cli(*args, env=env), commands))
    cli.append(run_cli("export", "--db", str(db), "-c", str(cfg), "--out", str(out), env=env))
    assert cli[0].returncode == 1 and "bearer_token: expected string, got integer" in cli[0].stdout + cli[0].stderr
    assert cli[2].returncode == 1 and json.loads(cli[2].stdout)["error_kind"] == "status"
    outputs["cli"] = "\n".join(f"{p.args} {p.returncode}\n{p.stdout}\n{p.stderr}" for p in cli)
    assert sorted(out.rglob("*.parquet")), cli[-1].stderr
    with duckdb.connect() as con:
        # one file per table, agent and day: each read on its own (their columns differ)
        outputs["parquet"] = str([con.execute(f"SELECT * FROM read_parquet('{f}')").fetchall() for f in sorted(out.rglob("*.parquet"))])

    bodies = hook_bodies(httpserver)
    assert any("check: userinfo (http://***@127.0.0.1:" in b and "api_key=***" in b for b in bodies)  # {url}, redacted
    outputs["notifications"] = "\n".join(bodies)

    found = {where: hits(text) for where, text in outputs.items() if hits(text)}
    assert not found, found


async def test_removed_checks_credentials_leave_the_url_cache(tmp_path):
    """After a reload drops a check, no parsed URL in memory holds its password or query value."""
    secret_url = f"http://u:{S['url_pass']}@127.0.0.1:{free_port()}/x?key={S['url_query']}"
    cfg = tmp_path / "pulse.yaml"
    head = f'version: 1\nagent: {{database: "{tmp_path / "p.duckdb"}"}}\nchecks:\n  - {{name: kept, url: "http://127.0.0.1:1/"}}\n'
    cfg.write_text(head + f'  - {{name: gone, url: "{secret_url}"}}\n')
    agent = Agent(load_config(str(cfg)), RunOptions(config=str(cfg), listen="127.0.0.1:0", watch=False))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await agent.started.wait()
    target_of(secret_url)  # as a run of it does: its origin (with the credentials) is cached, its query never
    assert held(S["url_pass"]) and not held(S["url_query"])
    cfg.write_text(head)
    assert (await agent.reload("test")).ok
    stop.set()
    assert await task == 0
    assert not held(S["url_pass"]) and not held(S["url_query"])


def held(secret: str) -> bool:
    """Whether a live parsed URL carries secret (in its Basic credentials or its request target)."""
    encoded = base64.b64encode(f"u:{secret}".encode()).decode()
    return any(isinstance(o, Target) and (encoded in (o.authorization or "") or secret in o.path) for o in gc.get_objects())
