"""Start-up of `pulse-agent run` at N checks, to its first result: the narrow end of `bench/scale.py`.

Starts the agent on N checks of 60 s against local nginx (the config `bench/scale.py` writes) and stops it
at its first stored result; prints wall seconds from process start to the first result line and to
"agent started", and the CPU seconds of the agent and its workers at the first result. With several
--code directories (a `git archive` of another commit on PYTHONPATH) the runs alternate between them.

    python bench/first_result.py [--checks 100000] [--repeat 3] [--code DIR ...]
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scale import write  # noqa: E402
from scheduler_lag import family, rss_mb  # noqa: E402
from target import free_port, nginx_target  # noqa: E402


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_once(cfg: Path, code: str | None, limit: float = 300.0) -> dict[str, object]:
    """One start of the agent on cfg (code: a directory put first on PYTHONPATH), stopped at its first result."""
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        started = time.monotonic()
        agent = subprocess.Popen(
            [sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg), "--db", str(Path(d) / "a.duckdb"),
             "--listen", f"127.0.0.1:{free_port()}"],
            stderr=subprocess.PIPE, text=True, env=env, cwd=d,
        )  # fmt: skip
        first = ready = None
        out: dict[str, object] = {}
        try:
            end = started + limit
            for line in agent.stderr:  # type: ignore[union-attr]
                if not line.startswith("{"):
                    continue
                msg = json.loads(line).get("msg")
                if msg == "agent started" and ready is None:
                    ready = time.monotonic() - started
                elif msg == "result" and first is None:
                    first = time.monotonic() - started
                    pids = family(agent.pid)
                    out = {"cpu_agent_s": _cpu(pids[0]), "cpu_workers_s": [_cpu(p) for p in pids[1:]]}
                if (first is not None and ready is not None) or time.monotonic() > end:
                    break
            out["rss_mb"] = round(rss_mb(agent.pid), 1)
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(60)
            except subprocess.TimeoutExpired:
                agent.kill()
    return {"code": code or "here", "load_before": round(load, 2), "first_result_s": first and round(first, 2),
            "ready_s": ready and round(ready, 2), **out}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", action="append", help="a directory with pulse_agent/ to put on PYTHONPATH (default: this checkout)")
    args = parser.parse_args()
    codes = args.code or [None]
    runs = []
    with nginx_target() as url, tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "pulse.yaml"
        write(cfg, url, args.checks, detail="compact")
        for _ in range(args.repeat):
            for code in codes:
                run = start_once(cfg, code)
                print(json.dumps(run), flush=True)
                runs.append(run)
    for code in codes:
        mine = [r["first_result_s"] for r in runs if r["code"] == (code or "here") and r["first_result_s"] is not None]
        if mine:
            print(f"{code or 'here'}: first result median {statistics.median(mine):.2f} s of {mine}")


if __name__ == "__main__":
    main()
