"""What SQL alert rules and SLO burn-rate evaluations cost over a big history: generates 10 M
results (bench/report_speed.py's generator: 1,000 checks x 10,000 runs a minute apart, 1 %
failures, a 2 % latency tail, hourly rollups), then times each evaluation the way the agent runs
it: a rule through the `report --sql` path (sandbox, read-only, windowed), the SLO counts as the
one query alerts/watch.py sends for every SLO check and window. Not a test: figures go to
docs/performance.md (say how loaded the machine was).

    python bench/rule_cost.py [--results 10000000] [--checks 1000] [--db FILE] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.report_speed import END, generate
from pulse_agent.alerts.condition import rule_actives
from pulse_agent.alerts.watch import slo_counts
from pulse_agent.config.slo_rules import default_pairs
from pulse_agent.report import ReportRequest, answer
from pulse_agent.report_source import open_read_only

P95 = "SELECT check_name, quantile_cont(response_time_ms, 0.95) AS value FROM results GROUP BY ALL HAVING value > 80"
TIMEOUTS = "SELECT check_name, avg(CASE WHEN error_kind = 'timeout' THEN 1 ELSE 0 END) AS value FROM results GROUP BY ALL"
RULES = {  # name -> (window seconds, SQL), as a config's rules: would write them
    "p95 over 15 min above 80 ms": (900, P95),
    "timeout share over 1 h above 0.3 %": (3600, TIMEOUTS + " HAVING value > 0.003"),
    "p95 over 1 d above 80 ms": (86400, P95),
    "certificate expiring within 10 d (last 1 h)": (
        3600,
        "SELECT check_name, min(cert_expires) AS summary FROM results WHERE cert_expires < ts + INTERVAL 10 DAY GROUP BY ALL",
    ),
    "failure share per hour, all 7 d (hourly rollups)": (
        7 * 86400,
        "SELECT check_name, 1 - sum(ok_runs) / sum(runs) AS value FROM results_hourly GROUP BY ALL HAVING value > 0.02",
    ),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=10_000_000)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--db", help="keep the generated file here (reused when it exists)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = args.results // args.checks
    out: dict[str, object] = {"checks": args.checks, "results": args.checks * runs, "nproc": os.cpu_count(), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as d:
        db = Path(args.db) if args.db else Path(d) / "big.duckdb"
        if not db.exists():
            out["generate_s"] = {k: round(v, 1) for k, v in generate(db, args.checks, runs, args.interval).items()}
        con = open_read_only(str(db))
        assert con is not None
        timings: dict[str, object] = {}
        for name, (window, sql) in RULES.items():
            times, firing = [], 0
            for _ in range(args.repeat):
                t = time.perf_counter()
                report = answer(con, ReportRequest(END - window, END + 1, sql=sql))
                firing = len(rule_actives("r", report.columns, report.rows))
                times.append(time.perf_counter() - t)
            med, top = round(statistics.median(times) * 1000, 1), round(max(times) * 1000, 1)
            timings[name] = {"median_ms": med, "max_ms": top, "firing": firing}
            print(json.dumps({name: timings[name]}), flush=True)
        checks = [f"check-{i}" for i in range(args.checks)]
        lengths = sorted({w for p in default_pairs(30 * 86400) for w in (p.long, p.short)} | {30 * 86400})
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            slo_counts(con, checks, lengths, END)
            times.append(time.perf_counter() - t)
        name = f"SLO counts: {args.checks} checks x {len(lengths)} windows (5m .. 30d), one query"
        timings[name] = {"median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1)}
        print(json.dumps({name: timings[name]}), flush=True)
        con.close()
        out["evaluations"] = timings
        out["load_after"] = os.getloadavg()
    print(json.dumps(out))
    (Path(__file__).resolve().parent / "results" / "rule_cost.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
