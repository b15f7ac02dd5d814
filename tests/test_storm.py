"""A storm: 300 checks of three teams fail at once against a real local target; a notifier with
group_by [team] must reach a real local receiver (Apprise json://) as three messages, across a
SIGKILL while the groups wait, and resolve the same way. Real agent processes, real DuckDB."""

from __future__ import annotations

import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import httpx
import pytest

from tests.agent_process import AgentProcess
from tests.conftest import free_port
from tests.test_alerting import Receiver

CHECKS, TEAMS = 300, ("a", "b", "c")


class Target(ThreadingHTTPServer):
    """Every path answers with the status the test sets."""

    daemon_threads = True
    request_queue_size = 1024  # 300 checks connect in bursts; the default backlog of 5 refuses them

    def __init__(self) -> None:
        self.status = 200
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                self.send_response(target.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.handle_error = lambda *_: None  # probes that time out and hang up are expected
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def target():
    t = Target()
    yield t
    t.shutdown()


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def open_incidents(port: int) -> int:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/incidents?open=true&limit=1000", timeout=5)
    except httpx.HTTPError:
        return -1
    return len(answer.json()["incidents"])


@pytest.mark.timeout(150)
def test_a_storm_of_300_failures_reaches_the_receiver_as_one_message_per_team_across_a_sigkill(target, tmp_path):
    receiver = Receiver().start()
    port = free_port()
    checks = "\n".join(
        f"  - {{name: svc-{i:03d}, url: 'http://127.0.0.1:{target.server_address[1]}/svc/{i}', labels: {{team: {TEAMS[i % 3]}}}}}"
        for i in range(CHECKS)
    )
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        f"version: 1\nagent: {{listen: '127.0.0.1:{port}', workers: 0}}\n"
        f"notifiers:\n  team: {{urls: ['{receiver.url}'], group_by: [team], group_wait: 10s, group_interval: 5s}}\n"
        "defaults: {schedule: every 2s, timeout: 5s, alert: {notify: [team], failure_threshold: 2, success_threshold: 2}}\n"
        f"checks:\n{checks}\n"
    )
    args = ("-c", str(cfg), "--db", str(tmp_path / "p.duckdb"))
    agent = AgentProcess(*args)
    try:
        agent.wait_for(lambda r: r.get("msg") == "agent started")
        time.sleep(2.5)  # every check has run ok
        target.status = 500
        down = time.monotonic()
        seen: list[int] = []
        wait(lambda: seen.append(open_incidents(port)) or seen[-1] == CHECKS, 9.5, "300 incidents open within group_wait")
        assert receiver.posts == []  # the groups are still waiting
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(10)
        killed = time.monotonic() - down
        agent = AgentProcess(*args)
        agent.wait_for(lambda r: r.get("msg") == "agent started")
        wait(lambda: len(receiver.posts) >= 3, 30, "three grouped failure messages")
        failures_delivered = time.monotonic() - down
        target.status = 200
        up = time.monotonic()
        wait(lambda: len(receiver.posts) >= 6, 40, "three grouped resolved messages")
        resolved_delivered = time.monotonic() - up
        time.sleep(5)  # nothing more comes (a straggler would within group_interval)
        assert agent.stop(signal.SIGTERM) == 0
    except AssertionError:
        print("open incidents seen:", seen[-5:], agent.seen[-5:])
        raise
    finally:
        if agent.proc.poll() is None:
            agent.stop(signal.SIGKILL)
        receiver.stop()
    posts = receiver.posts
    assert len(posts) == 6, [p["title"] for p in posts]
    assert sorted(p["title"] for p in posts[:3]) == [f"[pulse] team={t}: 100 down" for t in TEAMS]
    assert sorted(p["title"] for p in posts[3:]) == [f"[pulse] team={t}: 100 up again" for t in TEAMS]
    for post in posts:
        lines = post["message"].splitlines()[1:]
        assert len(lines) == 100 and len(set(lines)) == 100  # every check of the team once
    lines = [line for p in posts[:3] for line in p["message"].splitlines()[1:]]
    assert all(re.fullmatch(r"- svc-\d{3} is down: .+", line) for line in lines)  # each check with its error
    assert sum("status 500 not in [2xx]" in line for line in lines) >= 250  # a loaded machine may time out a few
    with duckdb.connect(str(tmp_path / "p.duckdb"), read_only=True) as con:
        [(members, grouped, delivered, groups)] = con.execute(
            "SELECT count(*) FILTER (event <> 'group'), count(grouped_into), count(delivered_at) FILTER (event <> 'group'),"
            " count(*) FILTER (event = 'group') FROM outbox"
        ).fetchall()
    assert (members, grouped, delivered, groups) == (600, 600, 600, 6)
    print(f"\nstorm: {CHECKS} checks failing -> {len(posts[:3])} messages, last delivered {failures_delivered:.1f}s after the flip "
          f"(group_wait 10s; SIGKILL at {killed:.1f}s); {CHECKS} resolved -> {len(posts[3:])} messages, last {resolved_delivered:.1f}s after")  # fmt: skip
