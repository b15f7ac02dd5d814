"""Report speed over a big history: generates N checks x M runs (default 1,000 x 10,000 = 10 M
results, one a minute per check) into a fresh DuckDB file, then times the report views, the way
`pulse-agent report` runs them (read-only file). Not a test: figures go to docs/performance.md.

    python bench/report_speed.py [--checks 1000] [--runs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pulse_agent.report import ReportRequest, build_report
from pulse_agent.store.db import migrate, open_database
from pulse_agent.store.sandbox import DEFAULT_TIMEOUT, lock_down, read_only

START = 1_790_000_000.0


def generate(path: Path, checks: int, runs: int) -> float:
    """Fill path with checks x runs results and a few incidents; seconds it took."""
    t = time.perf_counter()
    con = open_database(path)
    migrate(con)
    con.execute("SELECT setseed(0.42)")
    con.execute(
        f"""
        INSERT INTO results
            (ts, check_name, ok, degraded, status_code, response_time_ms, error_kind, error, attempts, scheduled_ts, maintenance)
        SELECT to_timestamp({START} + (i // {checks}) * 60 + (i % {checks}) * 0.05) AS ts, 'check-' || (i % {checks}),
               NOT failed, NOT failed AND ms > 250, CASE WHEN failed THEN 503 ELSE 200 END, ms,
               CASE WHEN failed THEN (['status', 'timeout', 'connect'])[1 + (i % 3)] END,
               CASE WHEN failed THEN 'generated failure' END, 1, to_timestamp({START} + (i // {checks}) * 60), false
        FROM (SELECT i, random() < 0.01 AS failed, 20 + 80 * random() + CASE WHEN random() < 0.02 THEN 400 * random() ELSE 0 END AS ms
              FROM range({checks * runs}) t(i))
        """
    )
    con.execute(
        f"""INSERT INTO incidents (id, check_name, opened_at, resolved_at, first_error_kind, first_error, last_notified_at, notifications_sent)
        SELECT 'check-' || c || '@' || k, 'check-' || c, to_timestamp({START} + k * 86400), to_timestamp({START} + k * 86400 + 600),
               'status', 'generated', to_timestamp({START} + k * 86400), 1
        FROM range({checks}) a(c), range(3) b(k)"""
    )
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    end = START + args.runs * 60
    views = {
        "summary": ReportRequest(START, end),
        "summary, one check": ReportRequest(START, end, checks=("check-7",)),
        "by day": ReportRequest(START, end, by="day"),
        "incidents": ReportRequest(START, end, incidents=True),
        "sql count by kind": ReportRequest(START, end, sql="SELECT error_kind, count(*) FROM results GROUP BY 1"),
        "sql 100,000 rows": ReportRequest(START, end, sql="SELECT * FROM results LIMIT 100000"),
    }
    out: dict[str, object] = {"checks": args.checks, "runs": args.runs, "results": args.checks * args.runs, "nproc": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "big.duckdb"
        out["generate_s"] = round(generate(db, args.checks, args.runs), 1)
        out["file_mb"] = round(db.stat().st_size / 1e6, 1)
        con = open_database(db, read_only=True)
        timings = {}
        for name, request in views.items():
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                rows = build_report(con, request).rows
                times.append(time.perf_counter() - t)
            timings[name] = {"median_s": round(statistics.median(times), 3), "rows": len(rows)}
            print(json.dumps({name: timings[name]}), flush=True)
        # The agent's path: the engine locked down (memory_limit 1 GiB), each report on its own
        # connection in a READ ONLY transaction with the timeout armed, as POST /api/v1/report runs it.
        lock_down(con)
        for name, request in views.items():
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                with read_only(con, DEFAULT_TIMEOUT) as cur:
                    rows = build_report(cur, request).rows
                times.append(time.perf_counter() - t)
            timings[f"{name}, sandboxed"] = {"median_s": round(statistics.median(times), 3), "rows": len(rows)}
            print(json.dumps({f"{name}, sandboxed": timings[f"{name}, sandboxed"]}), flush=True)
        con.close()
        cli = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pulse_agent", "report", "--db", str(db), "--from", "2026-09-01T00:00:00Z",
                            "--to", "2027-01-01T00:00:00Z", "--format", "csv"], check=True, capture_output=True)  # fmt: skip
            cli.append(time.perf_counter() - t)
        out["cli_summary_s"] = round(statistics.median(cli), 3)
        out["views"] = timings
    print(json.dumps(out))
    (Path(__file__).resolve().parent / "results" / "report_speed.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
