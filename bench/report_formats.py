"""`pulse-agent report` at 100,000 checks, as `bench/scale.py` leaves the database: one result per
check in the last minutes (raw rows only, 1 in 7 checks without one, 5% failing, an incident per 50
checks), then the whole command timed in each format (wall and the child's CPU seconds). Not a test:
figures go to docs/performance.md ("Reports at 100,000 checks").

    python bench/report_formats.py [--checks 100000] [--repeat 3] [--db FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pulse_agent.store.connect import open_database
from pulse_agent.store.migrations import migrate


def generate(path: Path, checks: int, now: float) -> None:
    """checks results in the 10 minutes before now, and their incidents."""
    with open_database(path) as con:
        migrate(con)
        con.execute("SELECT setseed(0.1)")
        con.execute(f"""
            INSERT INTO results (ts, check_name, ok, degraded, status_code, response_time_ms, error_kind, error, attempts,
                                 scheduled_ts, maintenance)
            SELECT to_timestamp({now} - 600 + i * 0.005), 'check-' || i, NOT failed, false, CASE WHEN failed THEN 503 ELSE 200 END,
                   round(ms, 3), CASE WHEN failed THEN (['status', 'timeout', 'connect'])[1 + (i % 3)] END,
                   CASE WHEN failed THEN 'generated' END, 1, to_timestamp({now} - 600 + i * 0.005), false
            FROM (SELECT i, random() < 0.05 AS failed, 0.5 + 10 * random() AS ms FROM range({checks}) t(i)) WHERE i % 7 <> 3""")
        con.execute(f"""
            INSERT INTO incidents (id, check_name, opened_at, resolved_at, first_error_kind, first_error, last_notified_at,
                                   notifications_sent)
            SELECT 'check-' || i || '@1', 'check-' || i, to_timestamp({now} - 3000),
                   CASE WHEN i % 2 = 0 THEN to_timestamp({now} - 1000) END, 'status', 'x', to_timestamp({now} - 3000), 1
            FROM range(0, {checks}, 50) t(i)""")
        con.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="keep the generated file here (reused within 24 h of its making)")
    args = parser.parse_args()
    out: dict[str, object] = {"checks": args.checks, "nproc": os.cpu_count(), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as d:
        db = Path(args.db) if args.db else Path(d) / "report.duckdb"
        if not db.exists():
            generate(db, args.checks, time.time())
        for fmt in ("json", "csv", "table", "markdown"):
            walls, cpus = [], []
            for _ in range(args.repeat):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pulse_agent", "report", "--db", str(db), "--format", fmt],
                               check=True, stdout=subprocess.DEVNULL)  # fmt: skip
                walls.append(time.perf_counter() - t)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            out[fmt] = {"wall_s_median": round(statistics.median(walls), 2), "cpu_s_median": round(statistics.median(cpus), 2)}
            print(json.dumps({fmt: out[fmt]}), flush=True)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
