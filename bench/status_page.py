"""Status page speed with 1,000 checks and 90 days of history: generates a DuckDB file with 90 days
of hourly rollups per check (what retention keeps past raw results) plus the last 2 days of raw
results (one a minute per check) and a few incidents, starts a real agent on it (checks that do not
run during the bench), and times what a reader waits for: GET /status (server time and bytes, gzip),
GET /api/v1/status, one badge, and, when Debian's chromium is installed, the page's load event in
headless Chromium. Not a test: figures go to docs/performance.md and the closing note.

    python bench/status_page.py [--checks 1000] [--days 90] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pulse_agent.store.db import open_database
from pulse_agent.store.migrations import migrate

RAW_DAYS = 2


def generate(path: Path, checks: int, days: int, now: float) -> float:
    """Fill path: days x 24 hourly rollups and RAW_DAYS of raw runs per check; seconds it took."""
    t = time.perf_counter()
    con = open_database(path)
    migrate(con)
    con.execute("SELECT setseed(0.42)")
    hour0 = now - now % 3600 - days * 86400
    raw0 = now - now % 3600 - RAW_DAYS * 86400
    con.execute(
        f"""
        INSERT INTO results_hourly (hour, check_name, runs, ok_runs, degraded_runs, failures_by_kind, p50_ms, p95_ms, p99_ms, max_ms)
        SELECT to_timestamp({hour0} + h * 3600), 'check-' || c, 60, 60 - fails, 0, MAP {{}}, 40 + 20 * random(), 90, 120, 200
        FROM (SELECT h, c, CASE WHEN random() < 0.02 THEN (random() * 10)::INTEGER ELSE 0 END AS fails
              FROM range({(days - RAW_DAYS) * 24}) a(h), range({checks}) b(c))
        """
    )
    con.execute(
        f"""
        INSERT INTO results
            (ts, check_name, ok, degraded, status_code, response_time_ms, error_kind, error, attempts, scheduled_ts, maintenance)
        SELECT to_timestamp({raw0} + (i // {checks}) * 60 + (i % {checks}) * 0.05), 'check-' || (i % {checks}), NOT failed, false,
               CASE WHEN failed THEN 503 ELSE 200 END, 20 + 80 * random(), CASE WHEN failed THEN 'status' END,
               CASE WHEN failed THEN 'generated failure' END, 1, NULL, false
        FROM (SELECT i, random() < 0.01 AS failed FROM range({checks * RAW_DAYS * 24 * 60}) t(i))
        WHERE {raw0} + (i // {checks}) * 60 < {now}
        """
    )
    con.execute(
        f"""
        INSERT INTO results_hourly (hour, check_name, runs, ok_runs, degraded_runs, failures_by_kind, p50_ms, p95_ms, p99_ms, max_ms)
        SELECT date_trunc('hour', ts), check_name, count(*), count(*) FILTER (WHERE ok), 0, MAP {{}},
               median(response_time_ms), NULL, NULL, max(response_time_ms)
        FROM results WHERE ts < date_trunc('hour', to_timestamp({now})) GROUP BY ALL
        """
    )
    con.execute(
        f"""INSERT INTO incidents
        SELECT 'check-' || c || '@' || k, 'check-' || c, to_timestamp({now} - k * 86400 - 3600), to_timestamp({now} - k * 86400),
               'status', 'generated', to_timestamp({now} - k * 86400), 1
        FROM range(0, {checks}, 100) a(c), range(1, 4) b(k)"""
    )
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - t


def config(path: Path, db: Path, checks: int) -> None:
    lines = ["version: 1", f"agent: {{listen: '127.0.0.1:0', database: '{db}', workers: 0}}",
             "status_page: {title: Acme status, description: Generated history of 90 days., group_by: team}", "checks:"]  # fmt: skip
    for i in range(checks):
        lines.append(
            f"  - {{name: check-{i}, url: 'http://127.0.0.1:9/', schedule: 'at 2099-01-01T00:00:00Z', labels: {{team: t{i % 10}}}}}"
        )
    path.write_text("\n".join(lines) + "\n")


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    """Seconds of the first GET path (the figures queried), the median of the next ones (within the
    figures' 10 s cache: what most readers get), and the answer's size on the wire (gzip)."""
    times = []
    for _ in range(repeat + 1):
        t = time.perf_counter()
        answer = client.get(path, headers={"Accept-Encoding": "gzip"})
        answer.raise_for_status()
        times.append(time.perf_counter() - t)
    gzipped = answer.headers.get("content-encoding") == "gzip"
    return times[0], statistics.median(times[1:]), int(answer.headers.get("content-length", 0)) if gzipped else len(answer.content)


def browser_load(url: str, repeat: int, screenshot: Path | None = None) -> float | None:
    """Median ms from navigation start to the load event in headless Chromium (None without it);
    a screenshot of the whole page at 1280 px when asked."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    try:
        loads = []
        for _ in range(repeat + 1):
            browser.get(url)
            loads.append(
                browser.execute_script("const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;")
            )
        if screenshot is not None:
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False}
            )
            browser.save_screenshot(str(screenshot))
        return statistics.median(loads[1:])
    finally:
        browser.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--screenshot", type=Path, help="save the page at 1280 px here (docs/status-page.png is --checks 6)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, cfg = Path(tmp) / "bench.duckdb", Path(tmp) / "pulse.yaml"
        now = time.time()
        made = generate(db, args.checks, args.days, now)
        config(cfg, db, args.checks)
        exe = Path(sys.executable).parent / "pulse-agent"
        agent = subprocess.Popen([str(exe), "run", "-c", str(cfg), "--log-format", "json"], stderr=subprocess.PIPE, text=True)
        try:
            url = None
            assert agent.stderr is not None
            for line in agent.stderr:
                record = json.loads(line)
                if record.get("msg") == "agent started":
                    url = f"http://{record['listen']}"
                    break
            if url is None:
                raise SystemExit("the agent did not start")
            with httpx.Client(base_url=url, timeout=120) as client:
                page_cold, page_s, page_bytes = timed(client, "/status", args.repeat)
                time.sleep(11)  # past the figures' cache
                data_cold, data_s, _ = timed(client, "/api/v1/status", args.repeat)
                badge_cold, badge_s, _ = timed(client, f"/badge/check-{args.checks // 2}/uptime/90d.svg", args.repeat)
                plain = len(client.get("/status").content)
            load_ms = browser_load(f"{url}/status", args.repeat, args.screenshot)
        finally:
            agent.terminate()
            agent.wait(60)
    figures = {
        "checks": args.checks,
        "days_of_rollups": args.days,
        "generate_s": round(made, 1),
        "status_html_first_ms": round(page_cold * 1000, 1),
        "status_html_ms": round(page_s * 1000, 1),
        "status_html_bytes": plain,
        "status_html_gzip_bytes": page_bytes,
        "api_status_first_ms": round(data_cold * 1000, 1),
        "api_status_ms": round(data_s * 1000, 1),
        "badge_first_ms": round(badge_cold * 1000, 1),
        "badge_ms": round(badge_s * 1000, 1),
        "browser_load_ms": None if load_ms is None else round(load_ms, 1),
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
