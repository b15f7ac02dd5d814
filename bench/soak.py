"""Soak: the agent at N checks/s for M minutes with a third of the checks failing and recovering
(alerts flowing to a local receiver), the API and /metrics polled every second and an SSE client
attached. Reports RSS, open file descriptors and threads over time (after a warm-up), scheduler
lag per minute, and stored vs. scheduled runs. Traffic only to 127.0.0.1; bounded by --minutes.

    python bench/soak.py [--minutes 30] [--rate 1000] [--workers auto|N] [--query-memory-limit 1GiB] [--trace FILE]

--trace FILE loads bench/trace/sitecustomize.py into the agent (garbage collections, writer batches and calls,
maintenance rounds, late wake-ups of the event loop, as JSON lines in FILE) and reports them per minute beside
that minute's p99 lag, and the worst 10-second windows with what happened in them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scheduler_lag import family, rss_mb  # noqa: E402
from sidecar import duckdb_memory  # noqa: E402
from target import free_port, nginx_target, wait_for_port  # noqa: E402

WARMUP = 60.0  # start-up, first incidents and caches settle before growth is measured


class Receiver(BaseHTTPRequestHandler):
    count = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.count += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def open_fds(pid: int) -> int:
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in family(pid))


def threads(pid: int) -> int:
    total = 0
    for p in family(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                total += int(line.split()[1])
    return total


def rss_floor(warm: list[dict[str, object]]) -> dict[str, object]:
    """The lowest RSS of each minute after the warm-up, and its growth from the first whole minute to the
    last: single samples swing by tens of MB with the connections and renders in flight at that instant."""
    floors: dict[int, float] = {}
    for s in warm:
        minute = int((float(s["t"]) - WARMUP) // 60)  # type: ignore[arg-type]
        floors[minute] = min(floors.get(minute, float("inf")), float(s["rss_mb"]))  # type: ignore[arg-type]
    whole = [floors[m] for m in sorted(floors)][: max(1, len(floors) - 1)]  # the last minute may be a few samples
    return {"rss_mb_floor_per_minute": whole, "rss_floor_growth_mb": round(whole[-1] - whole[0], 1) if whole else None}


def by_kind(events: list[dict[str, object]]) -> dict[str, list[float]]:
    """Traced events by kind (a writer call by its function): [count, longest ms, total ms]."""
    kinds: dict[str, list[float]] = {}
    for e in events:
        if e["k"] == "heap":
            continue
        kind = str(e["k"]) + (f":{str(e['fn']).split('.<locals>')[0]}" if e["k"] == "call" else "")
        n, longest, total = kinds.get(kind, [0, 0.0, 0.0])
        ms = float(e["ms"])  # type: ignore[arg-type]
        kinds[kind] = [n + 1, round(max(longest, ms), 1), round(total + ms, 1)]
    return dict(sorted(kinds.items()))


def traced(trace: Path, t0: float, per_minute: list[float], per_10s: list[tuple[float, float, float]]) -> dict[str, object]:
    """The trace beside the lag: each minute's p99 and events, and the 8 worst 10-second windows (p99, max) with theirs."""
    events = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]

    def within(lo: float, hi: float) -> list[dict[str, object]]:
        return [e for e in events if lo <= float(e["t"]) < hi]

    minutes = [
        {"minute": m, "lag_p99_ms": round(p, 1), **by_kind(within(t0 + 60 * m, t0 + 60 * (m + 1)))} for m, p in enumerate(per_minute)
    ]
    worst = sorted(per_10s, key=lambda w: -w[1])[:8]
    windows = [
        {"at_s": round(s - t0), "lag_p99_ms": round(p, 1), "lag_max_ms": round(x, 1), **by_kind(within(s - 1, s + 11))} for s, p, x in worst
    ]
    rounds = [[round(float(e["t"]) - t0), e["ms"]] for e in events if e["k"] == "maintenance"]
    quiet = ("k", "t", "ms", "thread")
    heap = [{"at_s": round(float(e["t"]) - t0), **{k: v for k, v in e.items() if k not in quiet}} for e in events if e["k"] == "heap"]
    return {"trace_heap": heap, "trace_per_minute": minutes, "trace_worst_10s": windows, "maintenance_rounds_at_s_ms": rounds}


def soak(
    url: str, rate: int, minutes: float, workers: str = "auto", query_memory_limit: str = "1GiB", trace: Path | None = None
) -> dict[str, object]:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = free_port()
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as d:
        cfg, db = Path(d) / "pulse.yaml", Path(d) / "soak.duckdb"
        lines = [
            "version: 1",
            f"agent: {{max_concurrency: 4096, log_level: warning, workers: {workers}, query_memory_limit: {query_memory_limit}}}",
            f"notifiers: {{hook: {{urls: ['json://127.0.0.1:{receiver.server_port}/hook']}}}}",
            "defaults: {alert: {notify: [hook], failure_threshold: 3, success_threshold: 2}}",
            "checks:",
        ]
        lines += [
            f"  - {{name: c{i}, url: '{url}/{'flaky/' if i % 3 == 0 else ''}c{i}', schedule: 1s, timeout: 5s}}" for i in range(rate)
        ]
        cfg.write_text("\n".join(lines) + "\n")
        path = os.pathsep.join(filter(None, [str(HERE / "trace"), os.environ.get("PYTHONPATH")]))
        tracing = {"PULSE_TRACE_OUT": str(trace), "PYTHONPATH": path}
        agent = subprocess.Popen(
            [sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg), "--db", str(db), "--listen", f"127.0.0.1:{port}"],
            stderr=subprocess.DEVNULL,
            env=os.environ | tracing if trace else None,
        )
        wait_for_port(port, "agent", 60)
        base = f"http://127.0.0.1:{port}"
        polls = {"api": 0, "metrics": 0, "sse_events": 0, "errors": 0}

        def poll() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.wait(1.0):
                    for path, key in (("/api/v1/checks", "api"), ("/metrics", "metrics")):
                        try:
                            client.get(base + path).raise_for_status()
                            polls[key] += 1
                        except httpx.HTTPError:
                            polls["errors"] += 1

        def sse() -> None:
            with httpx.Client(timeout=None) as client, client.stream("GET", base + "/api/v1/events") as events:
                for line in events.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("event:"):
                        polls["sse_events"] += 1

        for target in (poll, sse):
            threading.Thread(target=target, daemon=True).start()
        start = time.time()
        samples = []
        deadline = start + minutes * 60
        while time.time() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.time())))
            samples.append({"t": round(time.time() - start), "rss_mb": round(rss_mb(agent.pid), 1),
                            "fds": open_fds(agent.pid), "threads": threads(agent.pid),
                            "duckdb_kb": duckdb_memory(base)["by_tag_kb"]})  # fmt: skip
            print(json.dumps(samples[-1]), flush=True)
        end = time.time()
        metrics = httpx.get(base + "/metrics", timeout=30).text
        stop.set()
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
        receiver.shutdown()
        skipped = sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("pulse_check_skipped_runs_total{"))
        with duckdb.connect(str(db), read_only=True) as con:
            t0, t1 = start + WARMUP, end - 2  # runs due in the last seconds may still be in flight at SIGTERM
            stored = con.execute("SELECT count(*) FROM results WHERE epoch(scheduled_ts) BETWEEN ? AND ?", [t0, t1]).fetchone()[0]  # type: ignore[index]
            per_minute = con.execute(
                "SELECT floor((epoch(scheduled_ts) - ?) / 60) m, quantile_cont(epoch(ts) - epoch(scheduled_ts), 0.99) * 1000 "
                "FROM results WHERE epoch(scheduled_ts) BETWEEN ? AND ? GROUP BY 1 ORDER BY 1",
                [t0, t0, t1],
            ).fetchall()
            per_10s = con.execute(
                "SELECT floor(epoch(scheduled_ts) / 10) * 10, quantile_cont(epoch(ts) - epoch(scheduled_ts), 0.99) * 1000, "
                "max(epoch(ts) - epoch(scheduled_ts)) * 1000 FROM results WHERE epoch(scheduled_ts) BETWEEN ? AND ? GROUP BY 1 ORDER BY 1",
                [t0, t1],
            ).fetchall()
            incidents = con.execute("SELECT count(*) FROM incidents").fetchone()[0]  # type: ignore[index]
    warm = [s for s in samples if s["t"] >= WARMUP]
    return {
        "rate": rate,
        "minutes": minutes,
        "rss_mb_after_warmup": warm[0]["rss_mb"] if warm else None,
        "rss_mb_end": samples[-1]["rss_mb"],
        "rss_growth_mb": round(samples[-1]["rss_mb"] - warm[0]["rss_mb"], 1) if warm else None,
        "fds_after_warmup_max_min": [max(s["fds"] for s in warm), min(s["fds"] for s in warm)] if warm else None,
        "threads_after_warmup_max_min": [max(s["threads"] for s in warm), min(s["threads"] for s in warm)] if warm else None,
        "lag_p99_ms_per_minute": [round(p, 1) for _, p in per_minute],
        "lag_p99_ms_worst_minute": round(max((p for _, p in per_minute), default=0.0), 1),
        "scheduled_after_warmup": round(rate * (t1 - t0)),
        "stored_after_warmup": stored,
        "skipped_runs_total": skipped,
        "incidents": incidents,
        "notifications_received": Receiver.count,
        "polls": polls,
        "lag_p99_ms_median_minute": round(statistics.median([p for _, p in per_minute]), 1) if per_minute else None,
        **rss_floor(warm),
        **(traced(trace, t0, [p for _, p in per_minute], per_10s) if trace else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=1000, help="checks of 1 s (runs per second)")
    parser.add_argument("--workers", default="auto", help="agent.workers")
    parser.add_argument("--query-memory-limit", default="1GiB", help="agent.query_memory_limit (DuckDB's memory_limit)")
    parser.add_argument("--trace", type=Path, help="trace the agent's collections, writer and loop into this file (JSON lines)")
    args = parser.parse_args()
    with nginx_target() as url:
        out = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "nproc": os.cpu_count(),
            "query_memory_limit": args.query_memory_limit,
            **soak(url, args.rate, args.minutes, args.workers, args.query_memory_limit, args.trace and args.trace.absolute()),
        }
    print(json.dumps(out, indent=2))
    (HERE / "results" / "soak.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
