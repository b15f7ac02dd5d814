"""DuckDB's block cache under the store's writer: M minutes of results at R checks/s (a third failing,
random latencies) submitted to a ResultStore as fast as it writes them, a CHECKPOINT every N rows;
`BASE_TABLE` of duckdb_memory() and RSS (after malloc_trim) every 5 minutes' rows, the writer's stalls
while it replaces its instance, and at the end a summary report over the whole history, through the
query pool at the default memory limit. Runs the ResultStore on PYTHONPATH (old or new code).

    python bench/block_cache.py [--minutes 30] [--rate 1000] [--checkpoint-every 60000]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import inspect
import random
import resource
import tempfile
import time
from pathlib import Path

from pulse_agent.report import ReportRequest, answer
from pulse_agent.result import Result
from pulse_agent.store.db import ResultStore

T0 = 1_800_000_000.0
libc = ctypes.CDLL("libc.so.6")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def cached_mb(con) -> float:
    [(n,)] = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'").fetchall()
    return n / 2**20


def timed_stalls(store: ResultStore) -> list[float]:
    """Milliseconds the writer spent in each look at the cache that replaced the instance (new code only)."""
    stalls: list[float] = []
    if hasattr(store, "_bound_cache"):
        bound = store._bound_cache

        def timed() -> None:
            before, start = store.instances, time.perf_counter()
            bound()
            if store.instances != before:
                stalls.append((time.perf_counter() - start) * 1000)

        store._bound_cache = timed  # type: ignore[method-assign]
    return stalls


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--checkpoint-every", type=int, default=60_000)
    args = ap.parse_args()
    bounded = "cache_limit" in inspect.signature(ResultStore).parameters
    # the writer looks at every turn here (every 500 results), not every 30 s: the run is faster than real time
    kwargs = {"cache_check_every": 0.0} if bounded else {}
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        store = ResultStore(Path(d) / "p.duckdb", **kwargs)
        stalls = timed_stalls(store)
        rng, n, cpu0 = random.Random(1), 0, time.process_time()
        for minute in range(args.minutes):
            for sec in range(60):
                t = T0 + minute * 60 + sec
                for i in range(args.rate):
                    failed = i % 3 == 0
                    store.submit(Result(f"c{i}", t + i / args.rate, not failed, status_code=503 if failed else 200,
                                        response_time_ms=rng.uniform(1, 900), error_kind="status" if failed else None,
                                        scheduled_ts=t))  # fmt: skip
                n += args.rate
                if n % args.checkpoint_every == 0:
                    await store.checkpoint()
                    await store.call(lambda con: None)
            if (minute + 1) % 5 == 0:
                await store.call(lambda con: None)
                libc.malloc_trim(0)
                print(f"{minute + 1:3d} min of rows: BASE_TABLE {await store.read(cached_mb):5.1f} MB  RSS {rss_mb():6.1f} MB"
                      f"  instances {getattr(store, 'instances', 1)}", flush=True)  # fmt: skip
        start = time.perf_counter()
        report = await store.query(lambda con: answer(con, ReportRequest(T0, T0 + n + 1), store.limits))
        took = (time.perf_counter() - start) * 1000
        print(f"summary over {n:,} rows: {len(report.rows)} checks in {took:.0f} ms; BASE_TABLE after {await store.read(cached_mb):.1f} MB")
        cpu = time.process_time() - cpu0
        store.close()
    if stalls:
        s = sorted(stalls)
        print(f"replacements {len(s)}: writer stall median {s[len(s) // 2]:.0f} ms, max {s[-1]:.0f} ms")
    print(f"CPU {cpu:.1f} s; max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
