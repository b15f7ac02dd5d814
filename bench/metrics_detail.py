"""What agent.metrics_detail saves: the /metrics exposition of N checks (each with one finished
https run: every phase, a certificate, a protocol) rendered with full and with compact detail:
bytes, series, the median render time (wall and CPU) and the CPU time of the longest piece of work
between two pauses (what a scrape keeps the event loop from due runs at most). Not a test: figures go to docs/performance.md.

    python bench/metrics_detail.py [--checks 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pulse_agent.result import Result
from pulse_agent.web.metrics import Metrics


def measure(checks: int, detail: str, repeat: int) -> dict[str, float]:
    """Bytes, per-check series and median render seconds of one exposition of checks checks."""
    metrics = Metrics(detail=detail)  # type: ignore[arg-type]
    names = [f"customer-{i:06d}" for i in range(checks)]
    metrics.set_checks(names, {n: (("team", "t" + n[-1]),) for n in names})
    for n in names:
        metrics.observe(Result(n, 1.8e9, True, status_code=200, response_time_ms=41.5, dns_ms=1.2, connect_ms=3.4, tls_ms=9.8,
                               first_byte_ms=30.1, cert_expires=1.9e9, http_version="1.1", tls_version="1.3"))  # fmt: skip
        metrics.next_run(n, 1.8e9 + 60)
    times, cpu, longest, text = [], [], 0.0, b""
    for _ in range(repeat):
        pieces, start, start_cpu = [], time.perf_counter(), time.thread_time()
        t = start_cpu
        for piece in metrics.exposition():  # as /metrics serves it, pausing between pieces
            pieces.append(piece)
            now = time.thread_time()  # CPU: on a loaded machine wall time also counts other processes' turns
            longest, t = max(longest, now - t), now
        times.append(time.perf_counter() - start)
        cpu.append(t - start_cpu)
        text = b"".join(pieces)
    per_check = sum(1 for line in text.splitlines() if b'check="customer-000000"' in line)
    return {"bytes": len(text), "series_per_check": per_check, "render_s": round(statistics.median(times), 3),
            "render_cpu_s": round(statistics.median(cpu), 3), "longest_piece_cpu_ms": round(longest * 1000, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    out: dict[str, object] = {"checks": args.checks, "load_before": os.getloadavg()}
    for detail in ("full", "compact"):
        out[detail] = measure(args.checks, detail, args.repeat)
    full, compact = out["full"], out["compact"]
    out["compact_over_full_bytes"] = round(compact["bytes"] / full["bytes"], 3)  # type: ignore[index]
    out["load_after"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
