"""Push checks end to end: a real agent process (with probe workers), a real cron-like client script
pinging it, a real alert receiver, a real DuckDB file, SIGTERM and restarts (issue 19)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import duckdb
import httpx
from pytest_httpserver import HTTPServer
from werkzeug import Response

from pulse_agent.result import from_iso, iso
from tests.agent_process import AgentProcess
from tests.conftest import free_port, run_cli

OK_TOKEN = "ok-token-1f2e3d4c5b6a7980"
NEVER_TOKEN = "never-token-0a1b2c3d4e5f6789"
JOB_TOKEN = "job-token-99aa88bb77cc66dd"
API_TOKEN = "api-token-0123456789abcdef"

# The "cron job": pings as a crontab line's curl would, from its own process. argv: base URL, check,
# token, then the signals to send in order ("" for success, start, fail, an exit code, "sleep:S").
CLIENT = textwrap.dedent("""\
    import sys, time, urllib.error, urllib.request
    base, check, token, *signals = sys.argv[1:]
    for signal in signals:
        if signal.startswith("sleep:"):
            time.sleep(float(signal[6:]))
            continue
        url = f"{base}/push/{check}" + (f"/{signal}" if signal else "") + f"?token={token}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5) as answer:
                print(answer.status, answer.read().decode().strip(), flush=True)
        except urllib.error.HTTPError as exc:
            print(exc.code, exc.read().decode().strip(), flush=True)
    """)


def client(tmp_path, base: str, check: str, token: str, *signals: str) -> subprocess.Popen[str]:
    script = tmp_path / "cron_job.py"
    if not script.exists():  # written once: a second client must not read it half-written
        script.write_text(CLIENT)
    return subprocess.Popen([sys.executable, str(script), base, check, token, *signals], stdout=subprocess.PIPE, text=True)


def is_result(check: str, **fields: object):
    return lambda r: r.get("msg") == "result" and r.get("check") == check and all(r.get(k) == v for k, v in fields.items())


def test_pings_on_time_late_never_failed_and_with_exit_codes_through_a_real_agent_with_workers(tmp_path):
    arrivals: list[tuple[float, dict]] = []

    def hook(request):
        arrivals.append((time.time(), request.get_json()))
        return Response("ok")

    receiver = HTTPServer(host="127.0.0.1", port=free_port())
    receiver.expect_request("/hook", method="POST").respond_with_handler(hook)
    receiver.start()
    port = free_port()
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        version: 1
        agent: {{workers: 2, api_token: '${{API}}'}}
        notifiers:
          ops: {{urls: ['json://127.0.0.1:{receiver.port}/hook']}}
        checks:
          - name: self
            url: http://127.0.0.1:{port}/healthz
            schedule: 1s
          - name: on-time
            schedule: 2s
            push: {{grace: 1s, token: '${{OK}}'}}
          - name: never
            schedule: 2s
            push: {{grace: 1s, token: '${{NEVER}}'}}
            alert: {{notify: [ops], failure_threshold: 1}}
          - name: job
            schedule: 1h
            push: {{grace: 1h, token: '${{JOB}}'}}
            expect: {{max_duration: 10s}}
        """)
    )
    db = tmp_path / "p.duckdb"
    env = {"OK": OK_TOKEN, "NEVER": NEVER_TOKEN, "JOB": JOB_TOKEN, "API": API_TOKEN}
    agent = AgentProcess("-c", str(cfg), "--db", str(db), "--listen", f"127.0.0.1:{port}", env=env)
    base = f"http://127.0.0.1:{port}"
    cron = job = None
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        assert started["workers"] == 2
        cron = client(tmp_path, base, "on-time", OK_TOKEN, *["", "sleep:0.8"] * 6)
        job = client(tmp_path, base, "job", JOB_TOKEN, "start", "sleep:0.3", "fail", "start", "3", "0")
        assert job.communicate(timeout=20)[0].splitlines() == [
            "200 OK: started", "200 OK: recorded as failed (signal)", "200 OK: started", "200 OK: recorded as failed (signal)", "200 OK",
        ]  # fmt: skip
        late = agent.wait_for(is_result("never", error_kind="late"))
        deadline = from_iso(late["scheduled_ts"]) + 1.0
        assert 0 <= from_iso(late["ts"]) - deadline < 0.5  # recorded at the deadline
        assert late["error"].startswith(f"no ping by {iso(deadline)}: due {late['scheduled_ts']} + grace 1s; never pinged")
        deadline_wait = time.monotonic() + 10
        while not any("never" in json.dumps(body) for _, body in arrivals):
            assert time.monotonic() < deadline_wait, "no alert reached the receiver"
            time.sleep(0.05)
        arrived = next(t for t, body in arrivals if "never" in json.dumps(body))
        assert arrived - deadline < 2.0  # the lateness alert arrives within 2 s of the deadline
        assert cron.communicate(timeout=20)[0].splitlines() == ["200 OK"] * 6
        agent.wait_for(is_result("self", ok=True))  # the HTTP check runs in a worker beside
        # refused: a wrong token, no token, another check's token, the API token, and a name that is no push check
        refused = {
            f"/push/on-time?token={NEVER_TOKEN}": 404,
            "/push/on-time?token=nonsense": 404,
            f"/push/nope?token={OK_TOKEN}": 404,
            f"/push/self?token={OK_TOKEN}": 404,
            "/push/on-time": 401,
            f"/push/on-time/256?token={OK_TOKEN}": 404,
        }
        answers = {path: httpx.post(base + path) for path in refused}
        assert {path: a.status_code for path, a in answers.items()} == refused
        assert len({a.text for path, a in answers.items() if a.status_code == 404 and "/256?" not in path}) == 1  # one answer for all
        assert httpx.get(f"{base}/push/on-time", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 404
        assert httpx.get(f"{base}/push/on-time", headers={"Authorization": f"Bearer {OK_TOKEN}"}).text == "OK\n"
        api = {"Authorization": f"Bearer {API_TOKEN}"}
        run_now = httpx.post(f"{base}/api/v1/checks/job/run", headers=api)
        assert run_now.status_code == 409 and "push check" in run_now.json()["error"]
        summary = httpx.get(f"{base}/api/v1/checks/never", headers=api).json()
        assert from_iso(summary["next_due"]) > from_iso(late["scheduled_ts"])
        metrics = httpx.get(f"{base}/metrics").text
        assert 'pulse_check_failures_total{check="never",error_kind="late"}' in metrics
        assert 'pulse_check_runs_total{check="job",result="failure"} 2.0' in metrics
    finally:
        for process in (cron, job):
            if process is not None and process.poll() is None:
                process.kill()
        code = agent.stop(signal.SIGTERM)
        receiver.stop()
    assert code == 0
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT check_name, ok, error_kind, error, response_time_ms, details, ts FROM results ORDER BY ts").fetchall()
        everything = json.dumps(
            [con.execute(f"SELECT * FROM {t}").fetchall() for t in ("results", "push_state", "outbox", "incidents", "config_versions")],
            default=str,
        )
    on_time = [r for r in rows if r[0] == "on-time"]
    assert len(on_time) == 7 and all(r[1] for r in on_time), on_time  # six from the cron job, one by hand: never late
    job_rows = [(ok, kind, error, json.loads(details)) for name, ok, kind, error, _, details, _ in rows if name == "job"]
    assert [(ok, kind) for ok, kind, _, _ in job_rows] == [(False, "signal"), (False, "signal"), (True, None)]
    assert job_rows[1][2] == "the job exited with code 3" and job_rows[1][3]["exit_code"] == 3
    assert next(r[4] for r in rows if r[0] == "job") >= 300  # start -> fail: the job's duration
    for secret in (OK_TOKEN, NEVER_TOKEN, JOB_TOKEN, API_TOKEN):
        assert secret not in everything
        assert secret not in metrics
        assert all(secret not in json.dumps(line) for line in agent.seen)


def test_a_ping_before_a_restart_counts_and_a_due_time_missed_while_down_is_reported_once(tmp_path):
    port = free_port()
    cfg = tmp_path / "pulse.yaml"
    db = tmp_path / "p.duckdb"
    cfg.write_text(
        textwrap.dedent(f"""\
        version: 1
        agent: {{database: '{db}', listen: '127.0.0.1:{port}'}}
        checks:
          - name: nightly
            schedule: 3s
            push: {{grace: 1s, token: '${{TOK}}'}}
        """)
    )
    args = ("-c", str(cfg))
    env = {"TOK": JOB_TOKEN}
    url = f"http://127.0.0.1:{port}/push/nightly?token={JOB_TOKEN}"
    first = AgentProcess(*args, env=env)
    first.wait_for(lambda r: r.get("msg") == "agent started")
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
    first.wait_for(is_result("nightly", ok=True))
    assert first.stop(signal.SIGTERM) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        [(pinged,)] = con.execute("SELECT epoch(ts) FROM results WHERE check_name = 'nightly' AND ok").fetchall()
    second = AgentProcess(*args, env=env)
    second.wait_for(lambda r: r.get("msg") == "agent started")
    late = second.wait_for(is_result("nightly", error_kind="late"))
    # the interval ran from the ping the first agent received, not from the restart
    assert late["details"]["last_ping"] == iso(pinged)
    assert abs(from_iso(late["scheduled_ts"]) - (pinged + 3)) < 0.01
    assert second.stop(signal.SIGTERM) == 0
    shown = run_cli("check", "nightly", "-c", str(cfg), env=env)  # probes nothing: what the database knows
    assert shown.returncode == 1, shown.stderr
    assert f"last ping {iso(pinged)}" in shown.stdout and "FAIL late" in shown.stdout
    # down across two more due times: the next agent records one late at once, for the latest
    stopped_at = time.time()
    time.sleep(max(0.0, from_iso(late["scheduled_ts"]) + 7.5 - stopped_at))
    third = AgentProcess(*args, env=env)
    third.wait_for(lambda r: r.get("msg") == "agent started")
    missed = third.wait_for(is_result("nightly", error_kind="late"))
    assert from_iso(missed["scheduled_ts"]) >= from_iso(late["scheduled_ts"]) + 6
    time.sleep(0.3)
    assert sum(1 for r in third.seen if r.get("msg") == "result") == 1
    asked = run_cli("check", "nightly", "-c", str(cfg), env=env)  # the agent holds the file: asked through its API
    assert f"last ping {iso(pinged)}" in asked.stdout and f"(from the agent at http://127.0.0.1:{port})" in asked.stdout, asked.stdout
    assert third.stop(signal.SIGTERM) == 0


def test_a_reload_keeps_the_last_ping_and_removing_the_check_stops_it(tmp_path):
    port = free_port()
    cfg = tmp_path / "pulse.yaml"
    db = tmp_path / "p.duckdb"
    body = "version: 1\nagent: {{database: '{db}'}}\nchecks:\n{checks}"
    push = "  - {{name: job, schedule: {schedule}, push: {{grace: {grace}, token: '${{TOK}}'}}}}\n"
    other = "  - {name: other, schedule: 1h, push: {grace: 1h, token: '${TOK}'}}\n"
    cfg.write_text(body.format(db=db, checks=push.format(schedule="1h", grace="1h") + other))
    agent = AgentProcess("-c", str(cfg), "--listen", f"127.0.0.1:{port}", env={"TOK": JOB_TOKEN})
    base = f"http://127.0.0.1:{port}"
    try:
        agent.wait_for(lambda r: r.get("msg") == "agent started")
        assert httpx.get(f"{base}/push/job?token={JOB_TOKEN}").status_code == 200
        agent.wait_for(is_result("job", ok=True))
        reloading = time.time()
        cfg.write_text(body.format(db=db, checks=push.format(schedule="4s", grace="1s") + other))
        agent.wait_for(lambda r: r.get("msg") == "config reloaded" and r.get("changed") == 1)
        late = agent.wait_for(is_result("job", error_kind="late"), timeout=10)
        # the new cadence counts from the ping before the reload: due 4 s after it, not after the reload
        last_ping = from_iso(late["details"]["last_ping"])
        assert last_ping < reloading and abs(from_iso(late["scheduled_ts"]) - last_ping - 4) < 0.002
        cfg.write_text(body.format(db=db, checks=other))
        agent.wait_for(lambda r: r.get("msg") == "config reloaded" and r.get("removed") == 1)
        assert httpx.get(f"{base}/push/job?token={JOB_TOKEN}").status_code == 404
        time.sleep(max(0.0, from_iso(late["scheduled_ts"]) + 5.3 - time.time()))  # past the next deadline it would have had
    finally:
        assert agent.stop(signal.SIGTERM) == 0
    assert sum(1 for r in agent.seen if r.get("msg") == "result" and r.get("check") == "job") == 2
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT check_name FROM push_state").fetchall() == [("other",)]
