"""The agent at scale: N checks of 60 s against local nginx, with the default settings (workers: auto).

Measures start-up to first result, RSS of the agent and its workers, /metrics render time and
size and the lag of runs due meanwhile, a reload that changes one check, and `report` over the
history written. Sends traffic only to 127.0.0.1; every loop is bounded. Figures go to
docs/performance.md.

    python bench/scale.py [--checks 100000] [--seconds 30] [--metrics-detail full|compact] [--keep-db PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import run_lags  # noqa: E402
from scheduler_lag import family, rss_mb  # noqa: E402
from target import free_port, nginx_target  # noqa: E402


def write(cfg: Path, url: str, n: int, timeout: str = "5s", detail: str = "full") -> None:
    """n checks of 60 s; check c0 gets `timeout` (a reload changes it)."""
    lines = ["version: 1", f"agent: {{max_concurrency: 4096, log_level: info, metrics_detail: {detail}}}", "checks:"]
    lines.append(f"  - {{name: c0, url: '{url}/c0', schedule: 60s, timeout: {timeout}}}")
    lines += [f"  - {{name: c{i}, url: '{url}/c{i}', schedule: 60s, timeout: 5s}}" for i in range(1, n)]
    tmp = cfg.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(cfg)  # atomic, as editors and ConfigMaps do


def scale(url: str, n: int, seconds: float, detail: str = "full", keep_db: Path | None = None) -> dict[str, object]:
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        cfg, db = Path(d) / "pulse.yaml", Path(d) / "scale.duckdb"
        write(cfg, url, n, detail=detail)
        started = time.monotonic()
        agent = subprocess.Popen(
            [sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg), "--db", str(db), "--listen", f"127.0.0.1:{port}"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        records: queue.Queue[dict] = queue.Queue()

        def read() -> None:
            for line in agent.stderr:  # type: ignore[union-attr]
                if line.startswith("{"):
                    record = json.loads(line)
                    if record.get("msg") != "result":
                        records.put(record)
                    elif not first.is_set():
                        first_seen.append(time.monotonic())  # read as it comes, before or after "agent started"
                        first.set()
                        records.put(record)

        first = threading.Event()
        first_seen: list[float] = []
        threading.Thread(target=read, daemon=True).start()

        def wait(msg: str, limit: float) -> tuple[float, dict]:
            end = time.monotonic() + limit
            while time.monotonic() < end:
                try:
                    record = records.get(timeout=1)
                except queue.Empty:
                    continue
                if record.get("msg") == msg:
                    return time.monotonic(), record
            raise RuntimeError(f"no {msg!r} within {limit} s")

        ready_at, start_record = wait("agent started", 300)
        first_at = wait("result", 120)[0] if not first.is_set() else first_seen[0]
        time.sleep(seconds)
        rss = {"agent": round(rss_mb(agent.pid, children=False), 1),
               "workers": [round(rss_mb(p, children=False), 1) for p in family(agent.pid)[1:]]}  # fmt: skip
        renders, windows, size = [], [], 0
        with httpx.Client(timeout=60) as client:
            for _ in range(5):
                t, wall = time.monotonic(), time.time()
                size = len(client.get(f"http://127.0.0.1:{port}/metrics").content)
                renders.append(time.monotonic() - t)
                windows.append((wall, time.time()))
                time.sleep(1)
        edited = time.monotonic()
        write(cfg, url, n, timeout="4s", detail=detail)
        reloaded_at, reload_record = wait("config reloaded", 120)
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
        if keep_db is not None:  # as the agent left it (a WAL too, if one is left), before anything else opens it
            for part in (db, db.with_name(db.name + ".wal")):
                if part.exists():
                    shutil.copyfile(part, keep_db.with_name(keep_db.name + part.name[len(db.name) :]))
        lags, others = run_lags(db, windows)
        t, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        report = subprocess.run([sys.executable, "-m", "pulse_agent", "report", "--db", str(db), "--format", "json"],
                                capture_output=True, text=True)  # fmt: skip
        report_s = time.monotonic() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            stored = con.execute("SELECT count(*) FROM results").fetchone()[0]  # type: ignore[index]
    return {
        "checks": n,
        "metrics_detail": detail,
        "workers": start_record.get("workers"),
        "workers_reason": start_record.get("workers_reason"),
        "startup_to_ready_s": round(ready_at - started, 2),
        "startup_to_first_result_s": round(first_at - started, 2),
        "rss_mb": round(rss["agent"] + sum(rss["workers"]), 1),  # agent + workers
        "rss_mb_agent": rss["agent"],
        "rss_mb_workers": rss["workers"],
        "metrics_render_s_median": round(statistics.median(renders), 3),
        "metrics_render_s_max": round(max(renders), 3),
        "metrics_bytes": size,
        "lag_max_during_metrics_ms": round(max(lags, default=0.0) * 1000, 1),
        "lag_p99_other_runs_ms": round(statistics.quantiles(others, n=100)[98] * 1000, 1) if len(others) > 1 else 0.0,
        "reload_one_check_s": round(reloaded_at - edited, 2),
        "reload_fields": {k: v for k, v in reload_record.items() if k in ("added", "removed", "changed", "load_ms", "apply_ms")},
        "results_stored": stored,
        "report_s": round(report_s, 2),
        "report_cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
        "report_ok": report.returncode == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to run before measuring RSS and /metrics")
    parser.add_argument("--metrics-detail", choices=["full", "compact"], default="full", help="agent.metrics_detail")
    parser.add_argument("--keep-db", type=Path, help="copy the database here when the agent has stopped (for report benchmarks)")
    args = parser.parse_args()
    with nginx_target() as url:
        out = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(), "load_before": os.getloadavg(),
               **scale(url, args.checks, args.seconds, args.metrics_detail, args.keep_db)}  # fmt: skip
    print(json.dumps(out, indent=2))
    (HERE / "results" / f"scale_{args.checks}_{args.metrics_detail}.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
