"""CPU per check of the two transports on the same local nginx, in the same minute: our HTTP/1.1 client
(the fast path) against httpx (the path of HTTP/2 and proxy checks), fresh connection per run in both.
Rounds alternate between the transports so that the machine's load falls on both alike. Traffic only
to 127.0.0.1; bounded runs. Prints CPU ms per check of this process and the ratio.

    python bench/transport_cost.py [--runs 3000] [--rounds 3] [--concurrency 16]

Run it from another checkout (PYTHONPATH=that checkout) to compare the fast path of two versions:
a checkout without transports measures the fast path only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from target import nginx_target  # noqa: E402 (found through sys.path above)

from pulse_agent.config.model import CheckSpec  # noqa: E402
from pulse_agent.probe.http import Prober  # noqa: E402

HAS_TRANSPORTS = "transport" in {f.name for f in dataclasses.fields(CheckSpec)}


async def cpu_ms_per_check(spec: CheckSpec, runs: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms per check of this process, checks/s) for `runs` runs, `concurrency` at a time."""
    prober = Prober()
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def one() -> None:
        nonlocal failures
        async with gate:
            result = await prober.run(spec)
            failures += not result.ok

    try:
        await asyncio.gather(*(one() for _ in range(50)))  # warm-up: imports, contexts, clients
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(runs)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await prober.close()
    if failures:
        raise RuntimeError(f"{failures} runs failed")
    return cpu / runs * 1000, runs / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    transports = ("fast", "httpx") if HAS_TRANSPORTS else ("fast",)
    samples: dict[str, list[tuple[float, float]]] = {t: [] for t in transports}
    with nginx_target() as base:
        for _ in range(args.rounds):
            for transport in transports:
                extra = {"transport": transport} if HAS_TRANSPORTS else {}
                spec = CheckSpec(name="bench", url=f"{base}/", timeout=5, **extra)  # type: ignore[arg-type]
                samples[transport].append(asyncio.run(cpu_ms_per_check(spec, args.runs, args.concurrency)))
    out = {
        t: {
            "cpu_ms_per_check": round(statistics.median(s[0] for s in runs), 4),
            "checks_per_s": round(statistics.median(s[1] for s in runs)),
            "rounds": [round(s[0], 4) for s in runs],
        }
        for t, runs in samples.items()
    }
    if HAS_TRANSPORTS:
        out["httpx_over_fast"] = round(out["httpx"]["cpu_ms_per_check"] / out["fast"]["cpu_ms_per_check"], 2)  # type: ignore[index]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
