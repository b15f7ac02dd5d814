"""Report speed over a big history: generates N results of C checks (default 1,000 checks x 10,000
runs = 10 M) into a DuckDB file with DuckDB's own range() (INSERT ... SELECT, seconds per 10 M),
rolls the hours up with the agent's own roll_up (rollups + latency sketches, as a running agent
keeps them), then times the standard report views the way `pulse-agent report` runs them
(read-only file). Also measures bytes on disk per result, and what other column choices would
store. Not a test: figures go to docs/performance.md.

    python bench/report_speed.py [--results 100000000] [--checks 1000] [--interval 30] [--db FILE] [--repeat 3]

--db keeps the generated file (reused when it exists, so a second run only times the reports).
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
from pulse_agent.store import retention
from pulse_agent.store.connect import open_database
from pulse_agent.store.migrations import migrate

END = 1_800_000_000.0  # the newest run; every window ends here
DAY = 86400.0


def generate(path: Path, checks: int, runs: int, interval: float) -> dict[str, float]:
    """Fill path with checks x runs results ending at END (1% failures, a 2% latency tail), three
    incidents per check, and the hourly rollups; seconds each step took."""
    start = END - runs * interval
    took = {}
    t = time.perf_counter()
    con = open_database(path)
    migrate(con)
    con.execute("SELECT setseed(0.42)")
    con.execute(
        f"""
        INSERT INTO results
            (ts, check_name, ok, degraded, status_code, response_time_ms, error_kind, error, attempts, scheduled_ts, maintenance)
        SELECT to_timestamp({start} + (i // {checks}) * {interval} + (i % {checks}) * {interval / checks}) AS ts,
               'check-' || (i % {checks}), NOT failed, NOT failed AND ms > 250, CASE WHEN failed THEN 503 ELSE 200 END,
               round(ms, 3), CASE WHEN failed THEN (['status', 'timeout', 'connect'])[1 + (i % 3)] END,
               CASE WHEN failed THEN 'generated failure' END, 1, to_timestamp({start} + (i // {checks}) * {interval}), false
        FROM (SELECT i, random() < 0.01 AS failed, 20 + 80 * random() + CASE WHEN random() < 0.02 THEN 400 * random() ELSE 0 END AS ms
              FROM range({checks * runs}) t(i))
        """
    )
    took["insert_s"] = time.perf_counter() - t
    days = int(runs * interval // DAY)
    con.execute(
        f"""INSERT INTO incidents
        (id, check_name, opened_at, resolved_at, first_error_kind, first_error, last_notified_at, notifications_sent)
        SELECT 'check-' || c || '@' || k, 'check-' || c, to_timestamp({start} + k * {DAY} + c * 7),
               to_timestamp({start} + k * {DAY} + c * 7 + 600),
               'status', 'generated', to_timestamp({start} + k * {DAY}), 1
        FROM range({checks}) a(c), range({max(days, 1)}) b(k)"""
    )
    t = time.perf_counter()
    retention.roll_up(con, END + 3600)  # every hour but the newest, as a running agent has it
    took["roll_up_s"] = time.perf_counter() - t
    t = time.perf_counter()
    while retention.fill_prefixes(con):  # as the agent's storage maintenance does, a day (month) at a time
        pass
    took["prefixes_s"] = time.perf_counter() - t
    con.execute("CHECKPOINT")
    con.close()
    return took


def column_choices(path: Path, sample: int) -> dict[str, float]:
    """Bytes per result of the first `sample` results stored as they are, and with other column
    types (each a fresh file, so the sizes compare)."""
    variants = {
        "as stored": "SELECT * FROM src.results",
        "response time as FLOAT": "SELECT * REPLACE (response_time_ms::FLOAT AS response_time_ms) FROM src.results",
        "response time as INTEGER microseconds": "SELECT * REPLACE ((response_time_ms * 1000)::INTEGER AS response_time_ms) "
        "FROM src.results",
        "without scheduled_ts (derivable from the schedule)": "SELECT * EXCLUDE (scheduled_ts) FROM src.results",
        "check as a SMALLINT id (names in another table)": "SELECT * REPLACE (hash(check_name) % 30000 AS check_name) FROM src.results",
    }
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, query in variants.items():
            file = Path(d) / "v.duckdb"
            with open_database(file) as con:
                con.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
                con.execute(f"CREATE TABLE results AS {query} ORDER BY ts LIMIT {sample}")
                con.execute("DETACH src")
                con.execute("CHECKPOINT")
            out[name] = round(file.stat().st_size / sample, 2)
            file.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, help="total results (overrides --runs: runs = results / checks)")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between runs of a check (default 60)")
    parser.add_argument("--db", help="keep the generated file here (reused when it exists)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-columns", action="store_true", help="skip the column-choice sizes")
    args = parser.parse_args()
    runs = args.results // args.checks if args.results else args.runs
    out: dict[str, object] = {"checks": args.checks, "runs": runs, "results": args.checks * runs, "interval_s": args.interval,
                              "days": round(runs * args.interval / DAY, 1), "nproc": os.cpu_count(),
                              "load_before": os.getloadavg()}  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        db = Path(args.db) if args.db else Path(d) / "big.duckdb"
        if not db.exists():
            out["generate"] = {k: round(v, 1) for k, v in generate(db, args.checks, runs, args.interval).items()}
            print(json.dumps(out), flush=True)
        else:  # a file from an earlier run: brought up to this release as the agent would at start
            with open_database(db) as con:
                migrate(con)
                t = time.perf_counter()
                while retention.fill_prefixes(con):
                    pass
                out["prefixes_s"] = round(time.perf_counter() - t, 1)
        out["file_bytes"] = db.stat().st_size
        out["bytes_per_result"] = round(db.stat().st_size / (args.checks * runs), 2)
        con = open_database(db, read_only=True)
        [(hourly,)] = con.execute("SELECT count(*) FROM results_hourly").fetchall()
        out["hourly_rows"] = hourly
        views = {
            "summary 24 h": ReportRequest(END - DAY, END),
            "summary 30 d": ReportRequest(END - 30 * DAY, END),
            "summary 1 y": ReportRequest(END - 365 * DAY, END),
            "summary 30 d on day boundaries": ReportRequest(END // DAY * DAY - 30 * DAY, END // DAY * DAY),
            "--by day, 30 d": ReportRequest(END - 30 * DAY, END, by="day"),
            "--by hour, 24 h": ReportRequest(END - DAY, END, by="hour"),
            "one check, 30 d": ReportRequest(END - 30 * DAY, END, checks=("check-7",)),
            "--incidents, 30 d": ReportRequest(END - 30 * DAY, END, incidents=True),
            "--sql count by kind, 24 h": ReportRequest(END - DAY, END, sql="SELECT error_kind, count(*) FROM results GROUP BY 1"),
            "--sql 100,000 rows": ReportRequest(END - 30 * DAY, END, sql="SELECT * FROM results LIMIT 100000"),
        }
        timings = {}
        for name, request in views.items():
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                rows = build_report(con, request).rows
                times.append(time.perf_counter() - t)
            timings[name] = {"median_s": round(statistics.median(times), 3), "rows": len(rows)}
            print(json.dumps({name: timings[name]}), flush=True)
        con.close()
        out["views"] = timings
        cli = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pulse_agent", "report", "--db", str(db), "--since", "30d",
                            "--to", "2027-01-15T08:00:00Z", "--format", "csv"], check=True, capture_output=True)  # fmt: skip
            cli.append(time.perf_counter() - t)
        out["cli_summary_30d_s"] = round(statistics.median(cli), 3)
        if not args.no_columns:
            out["bytes_per_result_by_column_choice"] = column_choices(db, min(10_000_000, args.checks * runs))
        out["load_after"] = os.getloadavg()
    print(json.dumps(out))
    (Path(__file__).resolve().parent / "results" / "report_speed.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
