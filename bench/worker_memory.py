"""A probe worker's RSS with no checks and with N checks (bench/scale.py's, 60 s, pointing at a closed
port): what a worker costs per check and what its imports cost.

    python bench/worker_memory.py [--checks 0,10000,50000] [--seconds 5]
    python bench/worker_memory.py --checks 50000 --as-agent [--seconds 30]

The checks are sent in one "checks" frame and RSS is read after --seconds; with --as-agent, they are sent
as the agent sends them at start (frames of CHECKS_PER_FRAME, max_concurrency 4096 as bench/scale.py's
config) and probe a local nginx, RSS is read at 3, 10, 20 s and --seconds, and the worker's CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scale import write  # noqa: E402
from scheduler_lag import rss_mb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", default="0,10000,50000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--as-agent", action="store_true", help="frames as the agent sends them, checks against local nginx")
    args = parser.parse_args()
    if args.as_agent:
        from target import nginx_target

        with nginx_target() as url:
            as_agent([int(x) for x in args.checks.split(",")], url, args.seconds)
        return
    from pulse_agent.config import load_config
    from pulse_agent.config.child import boot
    from pulse_agent.workers import WorkerSettings, pack

    counts = [int(x) for x in args.checks.split(",")]
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "pulse.yaml"
        write(cfg, "http://127.0.0.1:1", max(counts) or 1)
        checks = list(load_config(cfg).checks)
    for n in counts:
        command = [sys.executable, "-c", boot("import runpy; runpy.run_module('pulse_agent.workers', run_name='__main__', alter_sys=True)")]
        worker = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # as Worker.start starts it
        assert worker.stdin is not None and worker.stdout is not None
        threading.Thread(target=worker.stdout.read, daemon=True).start()  # its results: read, dropped
        worker.stdin.write(pack(("settings", WorkerSettings(256, "json", "warning"))))
        worker.stdin.write(pack(("checks", checks[:n], [], False)))
        worker.stdin.flush()
        time.sleep(args.seconds)
        rss = rss_mb(worker.pid, children=False)
        worker.stdin.write(pack(("stop", 1.0)))
        worker.stdin.close()
        worker.wait(30)
        print(json.dumps({"checks": n, "rss_mb": round(rss, 1), "load_avg": os.getloadavg()[0]}), flush=True)


def as_agent(counts: list[int], url: str, seconds: float) -> None:
    """Each count of checks handed to a fresh worker as the agent does at start, probing url."""
    from pulse_agent.config import load_config
    from pulse_agent.config.child import boot
    from pulse_agent.workers import CHECKS_PER_FRAME, WorkerSettings, pack

    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "pulse.yaml"
        write(cfg, url, max(counts) or 1)
        checks = list(load_config(cfg).checks)
    for n in counts:
        command = [sys.executable, "-c", boot("import runpy; runpy.run_module('pulse_agent.workers', run_name='__main__', alter_sys=True)")]
        worker = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert worker.stdin is not None and worker.stdout is not None
        threading.Thread(target=worker.stdout.read, daemon=True).start()
        worker.stdin.write(pack(("settings", WorkerSettings(4096, "json", "warning"))))
        for start in range(0, n, CHECKS_PER_FRAME):
            worker.stdin.write(pack(("checks", checks[start : start + CHECKS_PER_FRAME], [], False)))
        worker.stdin.flush()
        began, rss = time.monotonic(), {}
        for at in sorted({3.0, 10.0, 20.0, seconds}):
            time.sleep(max(0.0, began + at - time.monotonic()))
            rss[f"{at:g}s"] = round(rss_mb(worker.pid, children=False), 1)
        stat = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        worker.stdin.write(pack(("stop", 1.0)))
        worker.stdin.close()
        worker.wait(30)
        print(json.dumps({"checks": n, "rss_mb": rss, "cpu_s": cpu, "load_avg": round(os.getloadavg()[0], 1)}), flush=True)


if __name__ == "__main__":
    main()
