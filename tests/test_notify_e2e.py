"""Notifications through real processes and servers: `pulse-agent notify` against a local HTTP
receiver and a local SMTP server (aiosmtpd), and an agent killed with SIGKILL mid-incident."""

from __future__ import annotations

import email
import email.policy
import logging
import signal
import textwrap
import time

import duckdb
import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.agent_process import AgentProcess
from tests.conftest import free_port, run_cli


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # the name aiosmtpd calls
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield mailbox, controller.port
    controller.stop()


def mail_url(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=pulse@example.com&to=oncall@example.com&mode=insecure"


def test_notify_reports_each_url_and_delivers_to_http_and_smtp(tmp_path, httpserver, smtp):
    mailbox, port = smtp
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        version: 1
        notifiers:
          ops:
            urls: ['json://127.0.0.1:{httpserver.port}/hook', '{mail_url(port)}']
            title: '[{{event}}] {{summary}}'
        """)
    )
    proc = run_cli("notify", "ops", "-c", str(cfg), "--message", "hello from CI")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"ok      json://127.0.0.1:{httpserver.port}/hook"
    assert lines[1].startswith(f"ok      mailto://127.0.0.1:{port}/")
    assert lines[2] == "ops: 2 of 2 URLs delivered"
    [(request, _)] = httpserver.log
    assert request.get_json()["title"] == "[test] test notification to ops: hello from CI"
    [mail] = mailbox.messages
    assert mail["Subject"] == "[test] test notification to ops: hello from CI"
    assert mail["To"] == "oncall@example.com"


def test_notify_fails_per_url_and_names_unknown_notifiers(tmp_path, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    dead = free_port()
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nnotifiers:\n  ops: {{urls: ['json://127.0.0.1:{httpserver.port}/hook', 'json://127.0.0.1:{dead}/x']}}\n")
    proc = run_cli("notify", "ops", "-c", str(cfg))
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[1].startswith(f"FAILED  json://127.0.0.1:{dead}/x: ")
    assert proc.stdout.splitlines()[2] == "ops: 1 of 2 URLs delivered"
    missing = run_cli("notify", "pager", "-c", str(cfg))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"{cfg}: no notifier named 'pager' (notifiers: ops)"


def wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_sigkill_mid_incident_then_restart_sends_no_duplicate_failure_and_one_resolved(tmp_path, httpserver, smtp):
    mailbox, smtp_port = smtp
    state = {"status": 500}
    httpserver.expect_request("/health").respond_with_handler(lambda _: Response("x", status=state["status"]))
    receiver = HTTPServer(host="127.0.0.1", port=free_port())
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    receiver.start()
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        version: 1
        notifiers:
          hook: {{urls: ['json://127.0.0.1:{receiver.port}/hook', '{mail_url(smtp_port)}']}}
        checks:
          - name: api
            url: {httpserver.url_for("/health")}
            schedule: every 1s
            alert: {{notify: [hook], failure_threshold: 2, success_threshold: 2}}
        """)
    )
    db = tmp_path / "p.duckdb"
    args = ("-c", str(cfg), "--db", str(db), "--listen", "127.0.0.1:0")
    try:
        first = AgentProcess(*args)
        for scheme in ("json:", "mailto:"):  # both recorded as delivered: a kill now interrupts no send
            first.wait_for(lambda r, s=scheme: r.get("msg") == "notification delivered" and r.get("url", "").startswith(s))
        first.wait_for(lambda r: r.get("msg") == "result" and not r.get("ok"))  # one more failure after the alert
        first.stop(signal.SIGKILL)
        second = AgentProcess(*args)
        second.wait_for(lambda r: r.get("msg") == "alert state restored" and r.get("open_incidents") == 1)
        for _ in range(2):
            second.wait_for(lambda r: r.get("msg") == "result" and not r.get("ok"))
        state["status"] = 200
        second.wait_for(lambda r: r.get("msg") == "alert resolved")
        wait(lambda: len(receiver.log) >= 2 and len(mailbox.messages) >= 2)
        assert second.stop(signal.SIGTERM) == 0
    finally:
        receiver.stop()
    titles = [req.get_json()["title"] for req, _ in receiver.log]
    assert titles[0] == "[pulse] api is down (status)"
    assert titles[1].startswith("[pulse] api is up again after ")
    assert len(titles) == 2
    assert [m["Subject"] for m in mailbox.messages] == titles
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(resolved_at), max(notifications_sent) FROM incidents").fetchall() == [(1, 1, 4)]
        assert con.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL").fetchall() == [(0,)]


async def test_apprise_warnings_are_folded_into_our_lines_with_the_notifier_named(httpserver, caplog):
    from pulse_agent.alerts.notify import deliver
    from pulse_agent.alerts.sender import DELIVERY

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    DELIVERY.set({"notifier": "ops", "check": "api", "event": "failure"})
    with caplog.at_level("INFO"):
        assert await deliver(f"json://127.0.0.1:{httpserver.port}/hook?format=bogus", "t", "b", "failure", 5) is None
        error = await deliver(f"json://127.0.0.1:{free_port()}/hook", "t", "b", "failure", 5)
    assert len(httpserver.log) == 1 and error  # delivered once; the closed port's reason is returned
    assert logging.getLogger("apprise").propagate is False  # nothing unattributed reaches our handlers
    (warned,) = [r for r in caplog.records if getattr(r, "warnings", None)]
    assert warned.notifier == "ops" and warned.check == "api" and any("bogus" in w for w in warned.warnings)
