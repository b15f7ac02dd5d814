"""Measured error of the latency sketch (store/sketch.py) against exact percentiles: for several
latency shapes, the relative error of p50/p95/p99 read from the sketch against the exact value of
the same rank (what the sketch promises: at most 1 %), and against DuckDB's interpolating
quantile_cont (what reports over raw rows give). Not a test: figures go to docs/performance.md.

    python bench/sketch_error.py [--n 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pulse_agent.store import sketch


def shapes(rng: random.Random, n: int) -> dict[str, list[float]]:
    return {
        "lognormal(3.5, 1)": [rng.lognormvariate(3.5, 1.0) for _ in range(n)],
        "uniform 20-100 ms, 2% tail to 500": [rng.uniform(20, 100) + (rng.uniform(0, 400) if rng.random() < 0.02 else 0) for _ in range(n)],
        "bimodal 15 ms / 900 ms": [abs(rng.gauss(15, 2)) if rng.random() < 0.9 else rng.gauss(900, 50) for _ in range(n)],
        "exponential, mean 50 ms": [rng.expovariate(1 / 50) for _ in range(n)],
        "pareto (heavy tail)": [10 * rng.paretovariate(1.5) for _ in range(n)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    out: dict[str, object] = {"alpha": sketch.ALPHA, "n": args.n}
    worst_rank = worst_cont = 0.0
    for name, values in shapes(random.Random(11), args.n).items():
        exact = sorted(values)
        s = sketch.sketch_of(values)
        cont = statistics.quantiles(values, n=100, method="inclusive")
        row = {"buckets": len(s)}
        for q in (50, 95, 99):
            est = sketch.quantile(s, q / 100)
            rank_err = abs(est - exact[sketch.rank(q / 100, len(exact))]) / exact[sketch.rank(q / 100, len(exact))]
            cont_err = abs(est - cont[q - 1]) / cont[q - 1]
            row[f"p{q}"] = {"rank_rel_err_pct": round(100 * rank_err, 3), "vs_quantile_cont_rel_err_pct": round(100 * cont_err, 3)}
            worst_rank, worst_cont = max(worst_rank, rank_err), max(worst_cont, cont_err)
        out[name] = row
    out["worst_rank_rel_err_pct"] = round(100 * worst_rank, 3)
    out["worst_vs_quantile_cont_rel_err_pct"] = round(100 * worst_cont, 3)
    print(json.dumps(out, indent=1))
    (Path(__file__).resolve().parent / "results" / "sketch_error.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
