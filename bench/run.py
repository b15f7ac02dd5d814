"""One reproducible benchmark run: the machine's ceiling, the peer (blackbox_exporter), pulse-agent's
sustained checks/s, the ratios between them, and the agent at scale. Sets up what it needs
(Debian's nginx, wrk, prometheus-blackbox-exporter), sends traffic only to 127.0.0.1, bounds every
loop, prints a table and writes bench/results/latest.json.

    python bench/run.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
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
sys.path.insert(0, str(HERE.parent))
from scheduler_lag import measure, rss_mb  # noqa: E402 (found through sys.path above)
from target import blackbox_exporter, ensure_debian_package, free_port, nginx_target  # noqa: E402


def wrk(url: str, seconds: float, connections: int, fresh: bool = False) -> float:
    """Requests/s wrk reaches against url; fresh: a new connection per request (`Connection: close`)."""
    binary = ensure_debian_package("wrk", "wrk")
    close = ["-H", "Connection: close"] if fresh else []
    command = [binary, "-t2", f"-c{connections}", f"-d{int(seconds)}s", *close, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if m is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(m.group(1))


def blackbox(target: str, seconds: float) -> float:
    """blackbox_exporter's probes/s on target (fresh connection per probe), driven by wrk on /probe."""
    with blackbox_exporter() as (_, port):
        probe = f"http://127.0.0.1:{port}/probe?module=http_2xx&target={target}/"
        assert "probe_success 1" in httpx.get(probe, timeout=10).text
        return wrk(probe, seconds, 32)


Steps = list[dict[str, float]]


def ramp(url: str, seconds: float, steps: list[int], reuse: bool, workers: int | str = 0) -> tuple[dict[str, float], Steps]:
    """Raise the check count until the agent falls behind (< 99% of scheduled runs, or p99 lag > 50 ms);
    the last sustained step, and every step measured."""
    best: dict[str, float] = {}
    seen = []
    for n in steps:
        r = measure(url, n, seconds, reuse, workers=workers)
        seen.append({"reuse_connections": reuse, "workers": workers, **r})
        print(json.dumps(seen[-1]), flush=True)
        if r["achieved_ratio"] < 0.99 or r["lag_p99_ms"] > 50:
            break
        best = r
    return best, seen


def at_scale(url: str, n: int) -> dict[str, float]:
    """n checks of 60 s: start-up to first result, RSS, /metrics render time and lag meanwhile."""
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        cfg, db = Path(d) / "pulse.yaml", Path(d) / "b.duckdb"
        lines = ["version: 1", "agent: {max_concurrency: 4096, log_level: info}", "checks:"]
        lines += [f"  - {{name: c{i}, url: '{url}/c{i}', schedule: 60s, timeout: 5s}}" for i in range(n)]
        cfg.write_text("\n".join(lines) + "\n")
        started = time.monotonic()
        agent = subprocess.Popen(
            [sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg), "--db", str(db), "--listen", f"127.0.0.1:{port}"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert agent.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        # Keep reading: an agent whose stderr pipe fills up blocks on its next log line.
        threading.Thread(target=lambda: [lines.put(line) for line in agent.stderr], daemon=True).start()  # type: ignore[union-attr]
        first_result = ready = None
        while (first_result is None or ready is None) and time.monotonic() - started < 120:  # either may come first
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("msg") == "agent started":
                ready = time.monotonic() - started
            if record.get("msg") == "result":
                first_result = time.monotonic() - started
        time.sleep(10)
        rss = rss_mb(agent.pid)
        renders, windows = [], []
        with httpx.Client(timeout=30) as client:
            for _ in range(5):
                t, wall = time.monotonic(), time.time()
                body = client.get(f"http://127.0.0.1:{port}/metrics").text
                renders.append(time.monotonic() - t)
                windows.append((wall, time.time()))
                time.sleep(0.5)
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)
        lags, others = run_lags(db, windows)
    return {
        "checks": n,
        "startup_to_ready_s": round(ready or -1, 2),
        "startup_to_first_result_s": round(first_result or -1, 2),
        "rss_mb_after_10s": round(rss, 1),
        "metrics_render_ms_median": round(statistics.median(renders) * 1000, 1),
        "metrics_bytes": len(body),
        "runs_during_metrics": len(lags),
        "lag_max_during_metrics_ms": round(max(lags, default=0.0) * 1000, 1),
        "lag_p99_other_runs_ms": round(statistics.quantiles(others, n=100)[98] * 1000, 1) if len(others) > 1 else 0.0,
        "lag_max_other_runs_ms": round(max(others, default=0.0) * 1000, 1),
    }


def run_lags(db: Path, windows: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Scheduler lag (s) of the runs that fell due inside the given wall-clock windows, and of the
    runs due between the first and last window that did not."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT epoch(scheduled_ts), epoch(ts) - epoch(scheduled_ts) FROM results").fetchall()
    inside, outside = [], []
    for due, lag in rows:
        if windows[0][0] <= due <= windows[-1][1]:
            (inside if any(a <= due <= b for a, b in windows) else outside).append(max(0.0, lag))
    return inside, outside


def ingest(rows: int) -> float:
    """Results/s through the real store path (queue, writer thread, DuckDB appender)."""
    from pulse_agent.result import Result
    from pulse_agent.store import ResultStore

    batch = [Result(f"c{i % 1000}", 1.8e9 + i, i % 50 != 0, status_code=200, response_time_ms=12.5, scheduled_ts=1.8e9 + i)
             for i in range(rows)]  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        store = ResultStore(Path(d) / "i.duckdb")
        t = time.perf_counter()
        for r in batch:
            store.submit(r)
        store.close()
        elapsed = time.perf_counter() - t
        assert store.written == rows
    return rows / elapsed


def report_10m(quick: bool) -> dict[str, object]:
    """The report benchmark (smaller when quick)."""
    args = ["--checks", "1000", "--runs", "1000" if quick else "10000", "--repeat", "1" if quick else "3"]
    out = subprocess.run([sys.executable, str(HERE / "report_speed.py"), *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def worker_steps_of(quick: bool) -> list[int]:
    """Check counts for the ramp of one agent with a probe worker per core."""
    # The ramp stops at the first step not sustained, so quick runs climb as high as full ones (a
    # sustained top step would only say "at least"); quick skips the first step.
    top = [4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000, 13000, 14000, 16000]
    return top if quick else [3000, *top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows and fewer steps (a few minutes)")
    args = parser.parse_args()
    seconds = 5.0 if args.quick else 10.0
    steps = [1000, 2000, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 7000, 8000]
    steps = steps if args.quick else [1000, 2000, 2500, *steps[2:]]
    out: dict[str, object] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(), "quick": args.quick}
    with nginx_target() as url:
        out["nginx_ceiling_rps"] = round(wrk(url + "/", seconds, 64))
        # The honest ceiling for a fresh connection per check: a C client doing the same.
        out["limit_fresh_rps"] = round(wrk(url + "/", seconds, 64, fresh=True))
        out["blackbox_probes_per_s"] = round(blackbox(url, seconds))
        print(json.dumps({k: out[k] for k in ("nginx_ceiling_rps", "limit_fresh_rps", "blackbox_probes_per_s")}), flush=True)
        fresh, fresh_steps = ramp(url, seconds, steps, reuse=False)
        reuse, reuse_steps = ramp(url, seconds, steps, reuse=True)
        # The default (agent.workers: auto): a probe worker per core once the checks ask for more than one serves.
        cores = os.cpu_count() or 1
        workers, worker_steps = ramp(url, seconds, worker_steps_of(args.quick), reuse=False, workers="auto")
        out["pulse_fresh"], out["pulse_reuse"], out["pulse_workers"] = fresh, reuse, workers
        out["ramp"] = fresh_steps + reuse_steps + worker_steps
        out["pulse_at_1000"] = next((r for r in fresh_steps if r["checks"] == 1000), {})
        out["scale"] = at_scale(url, 2000 if args.quick else 10_000)
        print(json.dumps(out["scale"]), flush=True)
    out["store_results_per_s"] = round(ingest(50_000 if args.quick else 200_000))
    out["report"] = report_10m(args.quick)
    bb = out["blackbox_probes_per_s"] or 1
    sustained = fresh.get("achieved_per_s", 0.0)
    out["ratio_pulse_vs_blackbox"] = round(sustained / bb, 2)
    out["ratio_pulse_workers_vs_blackbox"] = round(workers.get("achieved_per_s", 0.0) / bb, 2)
    out["ratio_pulse_vs_nginx"] = round(max(sustained, workers.get("achieved_per_s", 0.0)) / out["nginx_ceiling_rps"], 3)
    limit = out["limit_fresh_rps"] or 1
    out["ratio_default_vs_limit"] = round(workers.get("achieved_per_s", 0.0) / limit, 3)
    out["ratio_one_process_vs_limit"] = round(sustained / limit, 3)
    (HERE / "results" / "latest.json").write_text(json.dumps(out, indent=2))
    at_1000 = out["pulse_at_1000"]
    table = [
        ("nginx ceiling (wrk, keep-alive)", f"{out['nginx_ceiling_rps']:,} req/s"),
        ("the limit: wrk, fresh connection per request", f"{out['limit_fresh_rps']:,} req/s"),
        ("blackbox_exporter (fresh connections)", f"{out['blackbox_probes_per_s']:,} probes/s"),
        ("pulse-agent, fresh connections",
         f"{sustained:,.0f} checks/s sustained, p50 {fresh.get('lag_p50_ms')} ms / p99 {fresh.get('lag_p99_ms')} ms lag, "
         f"{fresh.get('cpu_percent')}% CPU, {fresh.get('rss_mb')} MB"),
        ("pulse-agent, reuse_connections",
         f"{reuse.get('achieved_per_s', 0):,.0f} checks/s sustained, p99 {reuse.get('lag_p99_ms')} ms lag"),
        (f"pulse-agent default (workers: auto, {cores} cores; fresh connections)",
         f"{workers.get('achieved_per_s', 0):,.0f} checks/s sustained, p50 {workers.get('lag_p50_ms')} ms / "
         f"p99 {workers.get('lag_p99_ms')} ms lag, {workers.get('cpu_percent')}% CPU, {workers.get('rss_mb')} MB"),
        ("pulse-agent / blackbox_exporter (one process; default)",
         f"{out['ratio_pulse_vs_blackbox']}x; {out['ratio_pulse_workers_vs_blackbox']}x"),
        ("pulse-agent / the limit (one process; default)",
         f"{out['ratio_one_process_vs_limit']}; {out['ratio_default_vs_limit']}"),
        ("pulse-agent at 1,000 checks/s", f"p99 lag {at_1000.get('lag_p99_ms')} ms, {at_1000.get('cpu_percent')}% CPU"),
        ("pulse-agent / nginx ceiling", f"{out['ratio_pulse_vs_nginx']}"),
        (f"{out['scale']['checks']:,} checks of 60 s",
         f"ready {out['scale']['startup_to_ready_s']} s, first result {out['scale']['startup_to_first_result_s']} s, "
         f"RSS {out['scale']['rss_mb_after_10s']} MB, /metrics {out['scale']['metrics_render_ms_median']} ms "
         f"(lag of runs due meanwhile: max {out['scale']['lag_max_during_metrics_ms']} ms)"),
        ("store path (ResultStore)", f"{out['store_results_per_s']:,} results/s"),
        (f"report over {out['report']['results']:,} results", f"summary 30 d {out['report']['views']['summary 30 d']['median_s']} s"),
    ]  # fmt: skip
    print("\n| measure | result |\n|---|---|")
    for name, value in table:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
