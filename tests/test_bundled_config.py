"""The bundled pulse.yaml and the example configs give the verdicts they promise (issue 14)."""

from __future__ import annotations

import http.server
import json
import signal
import ssl
import threading
import time
from pathlib import Path

import duckdb
import pytest
import trustme
import yaml

from pulse_agent.cli import main
from tests.agent_process import AgentProcess
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "pulse.yaml"
RUN_FOR_S = 30.0


def _bundled_check_names() -> set[str]:
    return {c["name"] for c in yaml.safe_load(BUNDLED.read_text())["checks"]}


def test_bundled_config_runs_30s_with_every_check_ok_on_any_address(tmp_path):
    """`pulse-agent run` on the bundled pulse.yaml: every run of every bundled check is ok, whether the
    address comes from PULSE_LISTEN or from --listen (the self-checks follow it; they used to probe 9108)."""
    by_env = tmp_path / "env.duckdb"
    by_flag = tmp_path / "flag.duckdb"
    agents = [
        AgentProcess("-c", str(BUNDLED), "--db", str(by_env), env={"PULSE_LISTEN": f"127.0.0.1:{free_port()}"}),
        AgentProcess("-c", str(BUNDLED), "--db", str(by_flag), "--listen", f"127.0.0.1:{free_port()}", env={"PULSE_LISTEN": ""}),
    ]
    try:
        for agent in agents:
            agent.wait_for(lambda r: r.get("msg") == "agent started")
        time.sleep(RUN_FOR_S)
    finally:
        codes = [agent.stop(signal.SIGTERM) for agent in agents]
    assert codes == [0, 0]
    for db in (by_env, by_flag):
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.execute("SELECT check_name, ok, error_kind, error FROM results").fetchall()
        assert {name for name, *_ in rows} == _bundled_check_names(), (db.name, rows)
        assert [r for r in rows if not r[1]] == [], db.name
        assert len(rows) >= 6  # self-health every 5s, self-metrics every 15s, over 30s


# ---- pulse-agent check on each example config: the verdict its comments promise -----------------

HEALTH = b'{"status":"UP","db":{"ok":true},"queue":{"depth":3},"version":"1.2"}'
ROUTES = {  # (method, path) -> (status, headers, body, required Authorization)
    ("GET", "/health"): (200, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "max-age=60"}, HEALTH, None),
    ("POST", "/search"): (200, {"Content-Type": "application/json"}, b'{"hits": [1]}', "Bearer dev-token"),
    ("POST", "/run"): (200, {}, b"started", "Basic cmVwb3J0ZXI6ZGV2"),  # reporter:dev
    ("GET", "/admin"): (401, {}, b"login first", None),
    ("GET", "/"): (200, {"Content-Type": "text/html"}, b"<h1>Welcome to nginx!</h1>", None),
    ("GET", "/nope"): (404, {}, b"not found", None),
    ("GET", "/healthz"): (200, {}, b"ok", None),
    ("GET", "/ready"): (200, {}, b"ready", None),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    broken = False  # every answer a 503: each example's checks must then fail

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, headers, body, auth = ROUTES.get((self.command, self.path), (404, {}, b"", None))
        if auth is not None and self.headers.get("Authorization") != auth:
            status, headers, body = 403, {}, b"bad credentials"
        if _Handler.broken:
            status, headers, body = 503, {}, b"maintenance"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def example_servers(tmp_path_factory):
    """A plain and an https server on 127.0.0.1 (certificate for localhost from a test CA), and the CA file."""
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    secure = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    for server in (plain, secure):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield plain.server_address[1], secure.server_address[1], str(ca_file)
    for server in (plain, secure):
        server.shutdown()


def _examples(tmp_path: Path, plain: int, secure: int) -> dict[str, Path]:
    """Each example config with its hosts pointed at the local servers, nothing else changed."""
    full = (ROOT / "examples" / "full.yaml").read_text()
    full = full.replace("https://api.example.com", f"https://localhost:{secure}").replace(
        "https://reports.example.com", f"https://localhost:{secure}"
    )
    full = full.replace("http://intranet.example.com", f"http://127.0.0.1:{plain}")
    full = full.replace("tcp://intranet.example.com:80", f"tcp://127.0.0.1:{plain}").replace("tls://api.example.com:443", f"tls://localhost:{secure}")
    minimal = (ROOT / "examples" / "minimal.yaml").read_text().replace("https://example.com/", f"https://localhost:{secure}/")
    compose = (ROOT / "examples" / "compose" / "pulse.yaml").read_text().replace("http://app:80", f"http://127.0.0.1:{plain}")
    sidecar = tmp_path / "conf.d"
    sidecar.mkdir()
    config_map = next(
        d for d in yaml.safe_load_all((ROOT / "examples" / "kubernetes" / "pulse-sidecar.yaml").read_text()) if d["kind"] == "ConfigMap"
    )
    for name, text in config_map["data"].items():
        (sidecar / name).write_text(text.replace("127.0.0.1:8080", f"127.0.0.1:{plain}"))
    paths = {"full": tmp_path / "full.yaml", "minimal": tmp_path / "minimal.yaml", "compose": tmp_path / "compose.yaml", "sidecar": sidecar}
    for key, text in (("full", full), ("minimal", minimal), ("compose", compose)):
        paths[key].write_text(text)
    return paths


# (example, check): what its comments promise it checks. legacy-admin accepts 401 ("200-299", 401).
EXAMPLE_CHECKS = [
    ("full", "api-health"), ("full", "search-post"), ("full", "nightly-report"), ("full", "legacy-admin"),
    ("full", "intranet-port"), ("full", "api-certificate"),
    ("minimal", "homepage"), ("compose", "app-home"), ("compose", "app-missing-page"), ("sidecar", "app-health"), ("sidecar", "app-ready"),
]  # fmt: skip


# what a 503 does to the checks that send no HTTP request of their own (a certificate watch does not see it)
BROKEN = {("full", "intranet-port"): (1, False, "receive"), ("full", "api-certificate"): (0, True, None)}


def test_every_example_check_gives_the_verdict_its_comments_promise(tmp_path, example_servers, monkeypatch, capsys):
    """Against a target that behaves as each example describes every check passes (api-health evaluates
    all eight of its expectations: its body regex used to be overwritten by a header glob); against a
    target answering 503 every check that sends a request fails (BROKEN)."""
    plain, secure, ca_file = example_servers
    paths = _examples(tmp_path, plain, secure)
    for key, value in {"SSL_CERT_FILE": ca_file, "PULSE_API_TOKEN": "t" * 24, "SLACK_URL": "json://127.0.0.1:1/x"}.items():
        monkeypatch.setenv(key, value)  # the test CA is trusted as a system CA would be
    monkeypatch.setenv("BACKUP_PUSH_TOKEN", "b" * 24)  # the push check of full.yaml
    verdicts = {}
    for broken in (False, True):
        _Handler.broken = broken
        for example, name in EXAMPLE_CHECKS:
            code = main(["check", name, "-c", str(paths[example]), "--format", "json"])
            out = capsys.readouterr().out
            result = json.loads(out) if out else {}
            verdicts[(broken, example, name)] = (code, result.get("ok"), result.get("error_kind"), result.get("error"))
    _Handler.broken = False
    assert {k[1:]: v for k, v in verdicts.items() if not k[0]} == {c: (0, True, None, None) for c in EXAMPLE_CHECKS}
    broken = {k[1:]: v[:3] for k, v in verdicts.items() if k[0]}
    assert broken == {c: BROKEN.get(c, (1, False, "status")) for c in EXAMPLE_CHECKS}
