"""Scheduler accuracy: N interval checks every 1 s against local nginx, through the real agent.

Reports, per N, the scheduler lag (due time -> run start, from the stored results), runs/s
achieved vs. scheduled, and the agent's CPU use. Not a test: figures go to docs/performance.md.

    python bench/scheduler_lag.py [--n 100 1000 5000] [--seconds 12]
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
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from target import free_port, nginx_target

WARMUP = 4.0  # start-up, probe workers included, is over before the window opens
TICKS = os.sysconf("SC_CLK_TCK")


def write_config(path: Path, url: str, n: int, reuse: bool = False, workers: int | str = 0) -> None:
    lines = [
        "version: 1",
        f"agent: {{max_concurrency: 4096, log_level: warning, workers: {workers}}}",
        f"defaults: {{reuse_connections: {str(reuse).lower()}}}",
        "checks:",
    ]
    lines += [f"  - {{name: c{i}, url: '{url}/c{i}', schedule: 1s, timeout: 5s}}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def family(pid: int) -> list[int]:
    """pid and its child processes (an agent's probe workers)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [pid, *children]


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by pid and its children."""
    total = 0.0
    for p in family(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def rss_mb(pid: int, children: bool = True) -> float:
    """Resident memory of pid and (unless children is False) its children."""
    total = 0.0
    for p in family(pid) if children else [pid]:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def measure(url: str, n: int, seconds: float, reuse: bool = False, shards: int = 1, workers: int | str = 0) -> dict[str, float]:
    """Run the agent with n checks of 1 s for seconds (after a warm-up) and measure it; with shards > 1,
    that many agents on the one config, each running its shard (agent.shard K/N) into its own file;
    with workers, one agent with that many probe processes."""
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "pulse.yaml"
        write_config(cfg, url, n, reuse, workers)
        dbs = [Path(d) / f"bench{k}.duckdb" for k in range(1, shards + 1)]
        agents = [
            subprocess.Popen(
                [sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg), "--db", str(db), "--listen", f"127.0.0.1:{free_port()}",
                 "--shard", f"{k}/{shards}"],
                stderr=subprocess.DEVNULL,
            )
            for k, db in enumerate(dbs, start=1)
        ]  # fmt: skip
        start = time.time()
        time.sleep(WARMUP)
        cpu0, t0 = sum(cpu_seconds(a.pid) for a in agents), time.time()
        time.sleep(seconds)
        cpu1, t1 = sum(cpu_seconds(a.pid) for a in agents), time.time()
        rss = sum(rss_mb(a.pid) for a in agents)
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
        for agent in agents:
            agent.wait(60)
        rows = []
        for db in dbs:
            with duckdb.connect(str(db), read_only=True) as con:
                rows += con.execute(
                    "SELECT epoch(ts) - epoch(scheduled_ts), ok FROM results WHERE epoch(scheduled_ts) BETWEEN ? AND ?",
                    [t0, t1 - 1],
                ).fetchall()
    window = (t1 - 1) - t0
    lags = sorted(max(0.0, r[0]) for r in rows)
    q = statistics.quantiles(lags, n=100) if len(lags) > 1 else [0.0] * 99
    return {
        "checks": n,
        "scheduled_per_s": n,
        "achieved_per_s": round(len(rows) / window, 1),
        "achieved_ratio": round(len(rows) / (n * window), 4),
        "ok_ratio": round(sum(r[1] for r in rows) / max(1, len(rows)), 4),
        "lag_p50_ms": round(q[49] * 1000, 2),
        "lag_p99_ms": round(q[98] * 1000, 2),
        "lag_max_ms": round(lags[-1] * 1000, 2) if lags else 0.0,
        "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "rss_mb": round(rss, 1),
        "startup_to_window_s": round(t0 - start, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    results = []
    with nginx_target() as url:
        for n in args.n:
            r = measure(url, n, args.seconds)
            results.append(r)
            print(json.dumps(r), flush=True)
    header = "| checks (1 s each) | achieved/s | achieved | lag p50 | lag p99 | lag max | agent CPU | RSS |"
    print("\n" + header + "\n|" + "---|" * 8)
    for r in results:
        print(
            f"| {r['checks']:,} | {r['achieved_per_s']:,} | {r['achieved_ratio']:.1%} | {r['lag_p50_ms']} ms | "
            f"{r['lag_p99_ms']} ms | {r['lag_max_ms']} ms | {r['cpu_percent']}% | {r['rss_mb']} MB |"
        )
    out = Path(__file__).resolve().parent / "results" / "scheduler_lag.json"
    out.write_text(
        json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(), "runs": results}, indent=2)
    )


if __name__ == "__main__":
    main()
