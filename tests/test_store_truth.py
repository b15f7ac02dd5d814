"""The store tells the truth: when the file refuses result writes (for real: RLIMIT_FSIZE makes the
kernel refuse to grow DuckDB's write-ahead log, as a full disk would), /readyz says not ready, a
metric counts the failed writes, and SIGTERM exits cleanly with the number of results lost."""

from __future__ import annotations

import resource
import signal
import time

import httpx
from pytest_httpserver import HTTPServer

from pulse_agent.store.db import ResultStore
from tests.agent_process import AgentProcess

WAL_LIMIT = 8 * 1024  # bytes a file of the agent may grow to: the WAL fills within the first writes


def refuse_big_files() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (WAL_LIMIT, WAL_LIMIT))  # Python ignores SIGXFSZ: writes fail with EFBIG


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))


def test_failing_writes_make_the_agent_unready_counted_and_reported_at_exit(tmp_path, httpserver: HTTPServer):
    httpserver.expect_request("/").respond_with_data("ok")
    db = tmp_path / "pulse.duckdb"
    ResultStore(db).close()  # created and migrated while files may grow; the agent then only appends
    cfg = tmp_path / "pulse.yaml"
    checks = "".join(f"  - {{name: c{i}, url: 'http://127.0.0.1:{httpserver.port}/'}}\n" for i in range(20))
    cfg.write_text(f"version: 1\nagent: {{listen: '127.0.0.1:0', database: '{db}'}}\ndefaults: {{schedule: 1s}}\nchecks:\n{checks}")
    agent = AgentProcess("-c", str(cfg), preexec_fn=refuse_big_files)
    try:
        base = f"http://{agent.wait_for(lambda r: r.get('msg') == 'agent started')['listen']}"
        deadline = time.monotonic() + 20
        while (ready := httpx.get(f"{base}/readyz")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.status_code == 503 and "writing results fails" in ready.text, ready.text
        assert httpx.get(f"{base}/healthz").status_code == 200  # alive: a restart would not help the disk
        metrics = httpx.get(f"{base}/metrics").text
        assert metric(metrics, "pulse_results_write_failures_total") >= 1
        assert metric(metrics, "pulse_results_unwritten") >= 1
        code = agent.stop(signal.SIGTERM)
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
    last = agent.wait_for(lambda r: r.get("msg") == "agent stopped")
    while not agent.lines.empty():
        agent.seen.append(agent.lines.get())
    assert code == 1  # a clean exit that says results were lost
    assert last["level"] == "error" and last["results_not_written"] > 0 and "File too large" in last["database_error"]
    runs = sum(1 for r in agent.seen if r.get("msg") == "result")
    assert last["results_written"] + last["results_not_written"] == runs  # every result written or counted
    assert not [r for r in agent.seen if "exc" in r or r.get("msg") == "non-json"]  # no traceback anywhere


async def test_failing_is_cleared_by_the_next_write_that_lands(tmp_path):
    """Readiness follows the file: failing while appends fail, clear again once one succeeds."""
    from pulse_agent.result import Result

    failed: list[int] = []
    store = ResultStore(tmp_path / "p.duckdb", flush_interval=0.02, on_write_failed=lambda: failed.append(1))
    await store.call(lambda con: con.execute("ALTER TABLE results RENAME TO away"))  # appends now fail for real
    store.submit(Result("a", 1.8e9, True))
    deadline = time.monotonic() + 10
    while store.failing is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.failing is not None and "results" in store.failing and failed and store.pending == 1
    await store.call(lambda con: con.execute("ALTER TABLE away RENAME TO results"))
    while store.failing is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.failing is None and store.written == 1 and store.pending == 0
    store.close()
    assert store.dropped == 0
