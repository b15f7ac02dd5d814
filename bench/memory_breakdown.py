"""Where the agent's memory goes at scale, per structure: N checks of 60 s (bench/scale.py's config) run
in this process as `pulse-agent run` runs them (workers: auto), then the deep size of each part of the
agent, the largest allocation sites (tracemalloc, with --trace) and the RSS of the agent and each worker.

A deep size counts each object once, in the first part that reaches it (in the order printed), so
the specs shared by the config, the scheduler and the workers' shares count under `spec`.

    python bench/memory_breakdown.py [--checks 100000] [--seconds 10] [--trace]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import sys
import tempfile
import tracemalloc
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scale import write  # noqa: E402
from scheduler_lag import rss_mb  # noqa: E402
from target import free_port, nginx_target  # noqa: E402

_OPAQUE = (type, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.CodeType,
           types.FrameType, asyncio.AbstractEventLoop)  # fmt: skip


def deep_size(root: object, seen: set[int]) -> tuple[int, int]:
    """Bytes and objects reachable from root not already in seen (functions, classes, modules and the loop excluded)."""
    size = count = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        count += 1
        stack.extend(gc.get_referents(obj))
    return size, count


def pymalloc() -> dict[str, float]:
    """Python's small-object allocator, MB: arenas held, bytes in live blocks, free blocks inside used pools
    (what freed objects leave behind while a neighbour lives: RSS the process keeps), and empty pools."""
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode()

    def get(key: str, unit: int = 1) -> float:
        match = re.search(re.escape(key) + r"\s*=\s*([\d,]+)", text)
        return round(int(match.group(1).replace(",", "")) * unit / 2**20, 1) if match else 0.0

    return {"arenas_mb": get("# arenas allocated current", 2**20), "live_blocks_mb": get("# bytes in allocated blocks"),
            "free_blocks_mb": get("# bytes in available blocks"), "empty_pools_mb": get("unused pools * 16384 bytes")}  # fmt: skip


def parts(agent: Any, memo: Any) -> dict[str, object]:
    """The agent's structures, in the order they are counted."""
    executor = agent.executor
    return {
        "spec (CheckSpecs and their sub-objects)": agent.spec,
        "memo (config load memo)": memo,
        "alerting (alert states)": agent.alerting,
        "store (writer queue)": agent.store,
        "metrics (per-check series)": agent.metrics,
        "pipeline (last results, checks by name)": agent.pipeline,
        "executor (local scheduler or workers' shares)": executor,
        "watch (SLO rules)": agent.watch,
        "pushes": agent.pushes,
        "reloader": agent.reloader,
        "events": agent.events,
    }


async def measure(cfg: Path, db: Path, seconds: float, memo: Any, spec: Any) -> dict[str, Any]:
    from pulse_agent.agent import Agent, RunOptions
    from pulse_agent.gc_policy import GcPolicy

    agent = Agent(spec, RunOptions(database=str(db), listen=f"127.0.0.1:{free_port()}", config=str(cfg)), memo=memo,
                  gc_policy=GcPolicy())  # fmt: skip
    del spec
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 600)
    await asyncio.sleep(seconds)
    out: dict[str, Any] = {"checks": len(agent.spec.checks), "workers": agent.workers}

    out["rss_mb_agent"] = round(rss_mb(os.getpid(), children=False), 1)
    pids = [w.pid for w in getattr(agent.executor, "workers", [])]
    out["rss_mb_workers"] = [round(rss_mb(p, children=False), 1) for p in pids if p is not None]
    out["pymalloc"] = pymalloc()
    out["gc_frozen_objects"] = gc.get_freeze_count()
    gc.unfreeze()
    out["gc_garbage_collected"] = gc.collect()  # what start-up left frozen that is garbage
    seen: set[int] = set()
    sizes = {}
    for name, part in parts(agent, memo).items():
        size, count = deep_size(part, seen)
        sizes[name] = {"mb": round(size / 2**20, 1), "objects": count, "bytes_per_check": round(size / max(1, out["checks"]))}
    out["parts"] = sizes
    if tracemalloc.is_tracing():
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        out["traced_mb"] = round(sum(s.size for s in snap.statistics("filename")) / 2**20, 1)
        out["by_file"] = [f"{s.size / 2**20:7.1f} MB {s.count:9d}  {s.traceback[0].filename}" for s in snap.statistics("filename")[:15]]
        out["by_line"] = [f"{s.size / 2**20:7.1f} MB {s.count:9d}  {s.traceback[0].filename}:{s.traceback[0].lineno}"
                          for s in snap.statistics("lineno")[:30]]  # fmt: skip
    stop.set()
    await running
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--trace", action="store_true", help="tracemalloc the agent (slower; RSS then includes its traces)")
    parser.add_argument("--metrics-detail", choices=["full", "compact"], default="compact")
    args = parser.parse_args()
    from pulse_agent.cli import _load
    from pulse_agent.config import Memo
    from pulse_agent.gc_policy import GcPolicy
    from pulse_agent.loop import event_loop_factory

    if args.trace:
        tracemalloc.start()
    with nginx_target() as url, tempfile.TemporaryDirectory() as d:
        cfg, db = Path(d) / "pulse.yaml", Path(d) / "scale.duckdb"
        write(cfg, url, args.checks, detail=args.metrics_detail)
        memo = Memo()
        with GcPolicy().paused():  # as cmd_run loads it
            spec = _load(str(cfg), memo)
        print(json.dumps({"after_load": {"rss_mb": round(rss_mb(os.getpid(), children=False), 1), **pymalloc()}}), flush=True)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            out = runner.run(measure(cfg, db, args.seconds, memo, spec))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
