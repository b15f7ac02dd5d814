"""tcp:// and tls:// checks through the whole agent: validate (placed errors), `check NAME`, and a real
`pulse-agent run` with probe workers storing results in DuckDB and exporting them on /metrics and the API."""

from __future__ import annotations

import asyncio
import json
import ssl
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
import trustme

from tests.agent_process import AgentProcess
from tests.conftest import free_port, run_cli


class ThreadServers:
    """Asyncio servers on 127.0.0.1 in a thread of their own (the agent under test is another process)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: list[asyncio.base_events.Server] = []

    def serve(self, handle, context: ssl.SSLContext | None = None) -> int:  # handle(reader, writer)
        async def start() -> int:
            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
            self._servers.append(server)
            return server.sockets[0].getsockname()[1]

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)

    def close(self) -> None:
        for server in self._servers:
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


async def redis_like(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(b"+PONG\r\n" if line.strip() == b"PING" else b"-ERR unknown command\r\n")
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


@pytest.fixture
def servers() -> Iterator[ThreadServers]:
    s = ThreadServers()
    yield s
    s.close()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pulse.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_validate_places_every_tcp_and_tls_mistake(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        """\
        version: 1
        modules:
          banner: {send: "PING", allowed_targets: [10.0.0.0/8]}
        checks:
          - {name: no-port, url: "tcp://db.internal"}
          - {name: with-path, url: "tls://u:secret@db.internal:5432/x"}
          - name: http-keys
            url: tcp://db.internal:6379
            method: POST
            starttls: smtp
            expect: {status: 200, receive: "/(unclosed/"}
          - name: tls-keys
            url: tls://mail.internal:587
            starttls: pop3
            follow_redirects: false
            expect: {body_contains: ok}
          - {name: send-on-http, url: "https://x.internal/", send: "PING"}
        """,
    )
    out = run_cli("validate", "-c", str(cfg))
    assert out.returncode == 1
    lines = [line.split(": ", 1)[1] for line in out.stderr.splitlines()[:-1]]
    assert lines == [
        "modules.banner.send: 'send' does not apply to a http check; it is a setting of tcp and tls checks",
        "checks[0].url: 'tcp://db.internal' needs a port: tcp://db.internal:PORT (there is no default port)",
        "checks[1].url: 'tls://***@db.internal:5432/x': a tls:// URL is tls://host:port only (no user, path or query)",
        "checks[2].method: 'method' does not apply to a tcp check; it is a setting of http checks",
        "checks[2].starttls: 'starttls' does not apply to a tcp check; it is a setting of tls checks",
        "checks[2].expect.status: a tcp check cannot evaluate 'status'; it is an expectation of http checks",
        'checks[2].expect.receive: invalid regular expression: missing ): (unclosed in "/(unclosed/"',
        'checks[3].starttls: "pop3" is not one of: "smtp", "imap", "ftp"',
        "checks[3].follow_redirects: 'follow_redirects' does not apply to a tls check; it is a setting of http checks",
        "checks[3].expect.body_contains: a tls check cannot evaluate 'body_contains'; it is an expectation of http checks",
        "checks[4].send: 'send' does not apply to a http check; it is a setting of tcp and tls checks",
    ], out.stderr
    assert "secret" not in out.stdout + out.stderr


def test_check_shows_the_details_of_a_tcp_check_in_json_and_text(tmp_path: Path, servers: ThreadServers) -> None:
    port = servers.serve(redis_like)
    cfg = write(
        tmp_path,
        f"""\
        version: 1
        checks:
          - {{name: redis, url: "tcp://127.0.0.1:{port}", send: "PING\\r\\n", expect: {{receive: "+PONG"}}}}
          - {{name: wrong, url: "tcp://127.0.0.1:{port}", send: "PNG\\r\\n", expect: {{receive: "+PONG"}}, timeout: 300ms}}
          - {{name: closed, url: "tcp://127.0.0.1:{free_port()}"}}
        """,
    )
    ok = run_cli("check", "redis", "-c", str(cfg), "--format", "json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    result = json.loads(ok.stdout)
    assert result["details"] == {"address": "127.0.0.1", "received": "+PONG\\r\\n", "received_bytes": 7}
    assert result["connect_ms"] is not None and "transport" not in result
    wrong = run_cli("check", "wrong", "-c", str(cfg))
    assert wrong.returncode == 1
    assert 'receive: expected "+PONG" within 300ms, got "-ERR unknown command\\r\\n"' in wrong.stdout
    closed = run_cli("check", "closed", "-c", str(cfg))
    assert closed.returncode == 1 and "connect: cannot connect to 127.0.0.1:" in closed.stdout


def test_an_agent_with_workers_runs_tcp_and_tls_checks_stores_and_exports_them(
    tmp_path: Path, servers: ThreadServers, ca: trustme.CA
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    plain, secure = servers.serve(redis_like), servers.serve(redis_like, context)
    cfg = write(
        tmp_path,
        f"""\
        version: 1
        agent: {{workers: 2}}
        defaults: {{schedule: every 1s, timeout: 2s, headers: {{X-Only: http}}, expect: {{status: 200}}}}
        checks:
          - {{name: redis, url: "tcp://127.0.0.1:{plain}", send: "PING\\r\\n", expect: {{receive: "+PONG"}}}}
          - name: redis-tls
            url: tls://localhost:{secure}
            ca_file: {ca_file}
            send: "PING\\r\\n"
            expect: {{receive: "+PONG", certificate_valid_for: 1d}}
          - {{name: gone, url: "tcp://127.0.0.1:{free_port()}", alert: {{failure_threshold: 2}}}}
        """,
    )
    db = tmp_path / "p.duckdb"
    agent = AgentProcess("-c", str(cfg), "--db", str(db), "--listen", "127.0.0.1:0")
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        assert started["workers"] == 2
        for name, ok in (("redis", True), ("redis-tls", True), ("gone", False)):
            agent.wait_for(lambda r, n=name, ok=ok: r.get("msg") == "result" and r.get("check") == n and r.get("ok") == ok)
        agent.wait_for(lambda r: r.get("msg") == "alert failure" and r.get("check") == "gone")  # an incident opens as for HTTP
        with httpx.Client(base_url=f"http://{started['listen']}", timeout=5) as web:
            metrics = web.get("/metrics").text
            results = web.get("/api/v1/checks/redis-tls/results").json()["results"]
            incidents = web.get("/api/v1/incidents").json()["incidents"]
        assert [i["check_name"] for i in incidents] == ["gone"]
        assert 'pulse_check_up{check="redis"} 1.0' in metrics and 'pulse_check_up{check="redis-tls"} 1.0' in metrics
        assert 'pulse_check_up{check="gone"} 0.0' in metrics
        assert 'pulse_check_failures_total{check="gone",error_kind="connect"}' in metrics
        assert 'pulse_check_certificate_expiry_timestamp_seconds{check="redis-tls"}' in metrics
        assert 'pulse_check_phase_duration_seconds{check="redis-tls",phase="tls"}' in metrics
        assert results and results[0]["details"]["received"] == "+PONG\\r\\n" and results[0]["tls_version"] == "1.3"
    finally:
        assert agent.stop() == 0
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT check_name, bool_and(ok), max(tls_version), max(cert_expires) IS NOT NULL, max(details->>'$.address'), max(error_kind)"
            " FROM results GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert rows == [
        ("gone", False, None, False, None, "connect"),
        ("redis", True, None, False, "127.0.0.1", None),
        ("redis-tls", True, "1.3", True, "127.0.0.1", None),
    ]
    report = run_cli("report", "--db", str(db), "--since", "1h", "--format", "json")
    summary = {row["check_name"]: row for row in json.loads(report.stdout)["rows"]}
    assert summary["gone"]["failures_by_kind"] == {"connect": summary["gone"]["runs"]}
    assert summary["redis"]["uptime_pct"] == summary["redis-tls"]["uptime_pct"] == 100.0
