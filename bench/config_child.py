"""Loading a config as the running agent does (with a memo, under cmd_run's GC pause and trim), its YAML
parsed in this process or in a child (config/child.py): seconds to load, RSS after, and Python's
allocator after (free blocks in its pools: what the node tree left pinned). Each load in a fresh process.

    python bench/config_child.py [--checks 3000,20000,100000] [--repeat 2]

Prints one JSON line per (checks, mode, repeat); compare the modes as ratios in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scale import write  # noqa: E402


def one(cfg: str, mode: str) -> dict[str, object]:
    """In this (fresh) process: load cfg as cmd_run does, the YAML parsed per mode ("process" or "child")."""
    from memory_breakdown import pymalloc
    from scheduler_lag import rss_mb

    from pulse_agent.config import Memo, child, load_config
    from pulse_agent.gc_policy import GcPolicy

    child.CHILD_MIN_CHARS = 0 if mode == "child" else 1 << 40
    before = rss_mb(os.getpid(), children=False)
    started = time.perf_counter()
    with GcPolicy().paused():
        spec = load_config(cfg, memo=Memo())
    seconds = time.perf_counter() - started
    after = rss_mb(os.getpid(), children=False)
    pools = pymalloc()
    return {
        "checks": len(spec.checks), "mode": mode, "load_s": round(seconds, 3), "rss_mb": round(after, 1),
        "rss_growth_mb": round(after - before, 1), "free_blocks_mb": pools["free_blocks_mb"], "load_avg": os.getloadavg()[0],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", default="3000,20000,100000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--one", nargs=2, metavar=("CFG", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    with tempfile.TemporaryDirectory() as d:
        for n in (int(x) for x in args.checks.split(",")):
            cfg = Path(d) / f"c{n}.yaml"
            write(cfg, "http://127.0.0.1:1", n)
            for r in range(args.repeat):
                for mode in ("process", "child") if r % 2 == 0 else ("child", "process"):
                    out = subprocess.run([sys.executable, __file__, "--one", str(cfg), mode], capture_output=True, text=True, check=True)
                    row = json.loads(out.stdout)
                    print(json.dumps({"chars": cfg.stat().st_size, "repeat": r, **row}), flush=True)


if __name__ == "__main__":
    main()
