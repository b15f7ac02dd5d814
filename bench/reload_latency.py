"""Reload latency with many checks: time from an atomic rename of the config to the first run of
a check the edit added, through the real agent (subprocess, local nginx target, results stored).

Also reports what the agent logs for the reload (load, diff and apply times) and the scheduler
lag of the other checks around it. Not a test: figures go to docs/performance.md.

    python bench/reload_latency.py [--checks 10000] [--repeat 3] [--layout file|dir]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from target import free_port, nginx_target


def check_line(url: str, name: str, schedule: str) -> str:
    return f"  - {{name: {name}, url: '{url}/{name}', schedule: '{schedule}', timeout: 5s}}"


def write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def layout(root: Path, url: str, n: int, kind: str, extra: list[str]) -> Path:
    """The config: one file, or a directory of 100 files of n/100 checks (the edit adds a file)."""
    head = "version: 1\nagent: {max_concurrency: 4096, log_level: info}\n"
    lines = [check_line(url, f"c{i}", "60s") for i in range(n)]
    if kind == "file":
        cfg = root / "pulse.yaml"
        write(cfg, head + "checks:\n" + "\n".join(lines + extra) + "\n")
        return cfg
    cfg = root / "conf.d"
    cfg.mkdir(exist_ok=True)
    per = max(1, n // 100)
    for k in range(0, n, per):
        write(cfg / f"part{k // per:03}.yaml", "version: 1\nchecks:\n" + "\n".join(lines[k : k + per]) + "\n")
    write(cfg / "agent.yaml", head)
    if extra:
        write(cfg / "zz-new.yaml", "version: 1\nchecks:\n" + "\n".join(extra) + "\n")
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layout", choices=["file", "dir"], default="file")
    args = parser.parse_args()
    runs = []
    with nginx_target() as url, tempfile.TemporaryDirectory() as d:
        root = Path(d)
        cfg = layout(root, url, args.checks, args.layout, [])
        port = free_port()
        agent = subprocess.Popen(
            [sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg), "--db", str(root / "b.duckdb"), "--listen", f"127.0.0.1:{port}"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: queue.Queue[dict] = queue.Queue()

        def read() -> None:
            assert agent.stderr is not None
            for line in agent.stderr:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("msg") != "result":
                    lines.put(record)

        threading.Thread(target=read, daemon=True).start()
        started = time.monotonic()
        while (r := lines.get(timeout=120)).get("msg") != "agent started":
            pass
        startup_s = time.monotonic() - started
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            for k in range(args.repeat):
                name = f"new{k}"
                extra = [check_line(url, f"new{j}", "every 1s") for j in range(k + 1)]
                edited = time.monotonic()
                layout(root, url, args.checks, args.layout, extra)
                while True:
                    answer = api.get(f"/api/v1/checks/{name}")
                    if answer.status_code == 200 and answer.json()["last_result"] is not None:
                        break
                    time.sleep(0.005)
                latency = time.monotonic() - edited
                while (r := lines.get(timeout=60)).get("msg") != "config reloaded":
                    pass
                runs.append({"latency_s": round(latency, 3), "load_ms": r["load_ms"], "diff_ms": r["diff_ms"], "apply_ms": r["apply_ms"]})
                print(json.dumps(runs[-1]), flush=True)
                time.sleep(1.5)
        agent.terminate()
        agent.wait(60)
    summary = {
        "checks": args.checks,
        "layout": args.layout,
        "startup_s": round(startup_s, 2),
        "latency_s_median": statistics.median(r["latency_s"] for r in runs),
        "load_ms_median": statistics.median(r["load_ms"] for r in runs),
        "diff_ms_median": statistics.median(r["diff_ms"] for r in runs),
        "apply_ms_median": statistics.median(r["apply_ms"] for r in runs),
        "runs": runs,
    }
    print(json.dumps(summary))
    out = Path(__file__).resolve().parent / "results" / f"reload_latency_{args.layout}.json"
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(), **summary}, indent=2))


if __name__ == "__main__":
    main()
