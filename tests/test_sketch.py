"""Latency sketches: percentiles past raw retention within the stated 1 %, against exact percentiles
of the same data in a real DuckDB file (rolled up by the agent's roll_up, raw rows deleted by its
retention), merging across hours and days, and the migration that gives an existing database its
sketches."""

from __future__ import annotations

import random
import statistics

import duckdb
import pytest

from pulse_agent.report import ReportRequest, build_report
from pulse_agent.result import from_iso
from pulse_agent.store import retention, sketch
from pulse_agent.store.maintenance import Maintenance
from pulse_agent.store.migrations import MIGRATIONS, migrate
from tests.conftest import run_cli

NOW = 1_800_000_000.0  # on an hour
DAY = 86400.0


def distributions(rng: random.Random) -> dict[str, list[float]]:
    n = 3000
    return {
        "lognormal": [rng.lognormvariate(3.5, 1.0) for _ in range(n)],
        "uniform": [rng.uniform(20, 100) for _ in range(n)],
        "bimodal": [rng.gauss(15, 2) if rng.random() < 0.9 else rng.gauss(900, 50) for _ in range(n)],
        "tiny and zero": [rng.choice([0.0, 0.0005, 0.01, 0.2, 3.0]) for _ in range(n)],
        "constant": [42.0] * n,
    }


def within(estimate: float, exact: float) -> bool:
    """The stated bound: relative error at most ALPHA (values below MIN_MS share one bucket)."""
    return abs(estimate - exact) <= sketch.ALPHA * max(exact, sketch.MIN_MS) + 1e-9 or (
        exact <= sketch.MIN_MS and estimate <= sketch.MIN_MS * 1.01
    )


@pytest.mark.parametrize("name", ["lognormal", "uniform", "bimodal", "tiny and zero", "constant"])
def test_quantiles_are_within_alpha_of_the_exact_order_statistic(name):
    values = distributions(random.Random(7))[name]
    exact = sorted(values)
    s = sketch.sketch_of(values)
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        est = sketch.quantile(s, q)
        assert est is not None and within(est, exact[sketch.rank(q, len(exact))]), (q, est)
    assert sketch.quantile({}, 0.5) is None


def test_sketches_merge_exactly_by_adding_counts():
    rng = random.Random(1)
    a, b = [rng.expovariate(1 / 50) for _ in range(1000)], [rng.expovariate(1 / 500) for _ in range(1000)]
    merged = sketch.sketch_of(a)
    for k, n in sketch.sketch_of(b).items():
        merged[k] = merged.get(k, 0) + n
    assert merged == sketch.sketch_of(a + b)


def test_the_sql_bucket_is_the_python_bucket():
    values = [0.0, 0.0005, 0.001, 0.0011, 1.0, 1.0202, 3.3, 99.99, 100.0, 12345.678, 86_400_000.0]
    with duckdb.connect() as con:
        got = con.execute(f"SELECT list({sketch.key_sql('v')} ORDER BY i) FROM (SELECT unnest(?) AS v, generate_subscripts(?, 1) AS i)",
                          [values, values]).fetchall()[0][0]  # fmt: skip
        rep = con.execute(f"SELECT {sketch.value_sql('k')} FROM (SELECT 123 AS k)").fetchall()[0][0]
    assert got == [sketch.key_of(v) for v in values]
    assert rep == pytest.approx(sketch.value_of(123))


def seed(con: duckdb.DuckDBPyConnection, days: int) -> None:
    """Three checks, a run a minute each for `days` days ending at NOW, each with its own latency shape."""
    con.execute("SELECT setseed(0.3)")
    con.execute(
        f"""INSERT INTO results (ts, check_name, ok, degraded, response_time_ms, attempts, maintenance)
        SELECT to_timestamp({NOW - days * DAY} + (i // 3) * 60 + i % 3), c, true, false,
               CASE c WHEN 'lognormal' THEN exp(3.5 + sqrt(-2 * ln(random())) * cos(2 * pi() * random()))
                      WHEN 'bimodal' THEN CASE WHEN random() < 0.9 THEN 10 + 10 * random() ELSE 800 + 400 * random() END
                      ELSE 20 + 80 * random() END, 1, false
        FROM (SELECT i, (['lognormal', 'bimodal', 'uniform'])[1 + i % 3] AS c FROM range({days * 1440 * 3}) t(i))"""
    )


def exact_percentiles(con, start: float, end: float, by_day: bool = False) -> dict:
    group = "date_trunc('day', ts), " if by_day else ""
    rows = con.execute(
        f"SELECT {group} check_name, list(response_time_ms ORDER BY response_time_ms) FROM results "
        "WHERE ts >= to_timestamp(?) AND ts < to_timestamp(?) GROUP BY ALL",
        [start, end],
    ).fetchall()
    out = {}
    for *key, values in rows:
        exact = {f"p{q}": values[sketch.rank(q / 100, len(values))] for q in (50, 95, 99)}
        cont = statistics.quantiles(values, n=100, method="inclusive")
        exact |= {f"cont_p{q}": round(cont[q - 1], 3) for q in (50, 95, 99)}
        out[tuple(str(k) if not isinstance(k, str) else k for k in key) if by_day else key[0]] = exact
    return out


def test_reports_past_retention_give_percentiles_within_1_percent(tmp_path):
    db = tmp_path / "p.duckdb"
    with duckdb.connect(str(db)) as con:
        migrate(con)
        seed(con, days=4)
        whole, mixed = (NOW - 4 * DAY, NOW), (NOW - 2.5 * DAY, NOW - 600)  # mixed: rollups, then raw to a partial hour
        exact_whole, exact_mixed = exact_percentiles(con, *whole), exact_percentiles(con, *mixed)
        exact_days = exact_percentiles(con, *whole, by_day=True)
        retention.roll_up(con, NOW - 1.5 * DAY)  # rolled up to 1.5 days ago; the last 1.5 days stay raw only
        while retention.delete_raw_batch(con, NOW - 2 * DAY) == retention.BATCH:  # raw kept 2 days
            pass
        [(oldest,)] = con.execute("SELECT epoch(min(ts)) FROM results").fetchall()
        assert oldest >= NOW - 2 * DAY  # the first two days exist only as rollups
        for window, exact in ((whole, exact_whole), (mixed, exact_mixed)):
            rows = build_report(con, ReportRequest(*window)).rows
            assert {r["check_name"] for r in rows} == set(exact) and all(r["runs"] > 1000 for r in rows)
            for r in rows:
                for p in ("p50", "p95", "p99"):
                    assert within(r[f"{p}_ms"], exact[r["check_name"]][p]), (
                        window,
                        r["check_name"],
                        p,
                        r[f"{p}_ms"],
                        exact[r["check_name"]][p],
                    )
        days = build_report(con, ReportRequest(*whole, by="day")).rows
        assert {(r["bucket"].replace("T", " ").replace(".000Z", "+00:00"), r["check_name"]) for r in days} == set(exact_days)
        for r in days:  # each day merges 24 hourly sketches (and raw rows, for the days partly raw)
            exact = exact_days[(r["bucket"].replace("T", " ").replace(".000Z", "+00:00"), r["check_name"])]
            raw_only = from_iso(r["bucket"]) >= NOW - 1.5 * DAY
            for p in ("p50", "p95", "p99"):
                if raw_only:  # no rolled-up hour in it: exact, interpolated like quantile_cont
                    assert r[f"{p}_ms"] == pytest.approx(exact[f"cont_{p}"], abs=0.0011), (r["bucket"], r["check_name"], p)
                else:
                    assert within(r[f"{p}_ms"], exact[p]), (r["bucket"], r["check_name"], p)
        assert sum(from_iso(r["bucket"]) >= NOW - 1.5 * DAY for r in days) == 2 * 3


def test_a_database_from_before_sketches_gets_them_from_its_raw_rows(tmp_path):
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:  # a file as the previous release left it: migrations 1-5 only
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        for version, sql in enumerate(MIGRATIONS[:5], start=1):
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        seed(con, days=1)
        exact = exact_percentiles(con, NOW - DAY, NOW)
        con.execute(  # its hourly rollups, made the old way (no sketch column)
            """INSERT INTO results_hourly SELECT date_trunc('hour', ts), check_name, count(*), count(*), 0, MAP {},
                      quantile_cont(response_time_ms, 0.5), quantile_cont(response_time_ms, 0.95), quantile_cont(response_time_ms, 0.99),
                      max(response_time_ms) FROM results GROUP BY ALL"""
        )
    with duckdb.connect(str(db)) as con:
        assert migrate(con) == len(MIGRATIONS)  # at once: the sketches come from the agent's storage maintenance
        [(missing,)] = con.execute("SELECT count(*) FROM results_hourly WHERE latency_sketch IS NULL").fetchall()
        assert missing == 24 * 3  # 24 hours, three checks
        assert retention.roll_up_days(con) == 0  # no day is merged before its hours have sketches
        rounds = 0
        while retention.backfill_sketches(con):  # an hour per call, as the agent's maintenance loop calls it
            rounds += 1
        assert rounds == 24
        [(missing,)] = con.execute("SELECT count(*) FROM results_hourly WHERE latency_sketch IS NULL").fetchall()
        assert missing == 0
        assert retention.roll_up_days(con) == 3  # now the complete day is merged, with its sketches
        con.execute("DELETE FROM results")  # retention takes every raw row: the sketches answer alone
        rows = build_report(con, ReportRequest(NOW - DAY, NOW)).rows
    assert {r["check_name"]: r["runs"] for r in rows} == {"bimodal": 1440, "lognormal": 1440, "uniform": 1440}
    for r in rows:
        for p in ("p50", "p95", "p99"):
            assert within(r[f"{p}_ms"], exact[r["check_name"]][p]), (r["check_name"], p)


def test_reading_a_database_the_agent_has_not_upgraded_yet_says_what_to_do(tmp_path):
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        for version, sql in enumerate(MIGRATIONS[:5], start=1):
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
    proc = run_cli("report", "--db", str(db), "--since", "1d")
    assert proc.returncode == 1 and "is from an older pulse-agent (schema 5" in proc.stderr and "start the agent on it once" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_daily_rollups_merge_their_hours_exactly(tmp_path):
    with duckdb.connect(str(tmp_path / "p.duckdb")) as con:
        migrate(con)
        seed(con, days=3)
        con.execute("UPDATE results SET ok = false, error_kind = CASE WHEN epoch(ts)::BIGINT % 7 = 0 THEN 'timeout' ELSE 'status' END "
                    "WHERE epoch(ts)::BIGINT % 5 = 0")  # fmt: skip
        retention.roll_up(con, NOW)
        hourly = con.execute(
            f"""SELECT {"to_timestamp(epoch(hour)::BIGINT // 86400 * 86400)"} AS day, check_name, sum(runs), sum(ok_runs),
                       sum(failures_by_kind['timeout']), max(max_ms) FROM results_hourly GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
        daily = con.execute(
            "SELECT day, check_name, runs, ok_runs, failures_by_kind['timeout'], max_ms FROM results_daily ORDER BY ALL"
        ).fetchall()
        complete = [row for row in hourly if row[0].timestamp() + DAY <= NOW]  # the day NOW is in is not complete
        assert daily == complete and len(daily) == 3 * 3
        [(sketch_ok,)] = con.execute(
            """SELECT bool_and(d.total = h.total) FROM (SELECT day, check_name, list_sum(map_values(latency_sketch)) AS total FROM results_daily) d
               JOIN (SELECT to_timestamp(epoch(hour)::BIGINT // 86400 * 86400) AS day, check_name, sum(list_sum(map_values(latency_sketch))) AS total
                     FROM results_hourly GROUP BY ALL) h USING (day, check_name)"""
        ).fetchall()
        assert sketch_ok
        assert retention.roll_up(con, NOW) == 0 and con.execute("SELECT count(*) FROM results_daily").fetchall() == [(9,)]  # idempotent
        retention.delete_old_rollups(con, NOW - DAY)
        [(days_left,)] = con.execute("SELECT count(*) FROM results_daily").fetchall()
    assert days_left == 3  # only the complete day that ends after the cutoff stays


async def test_the_agent_backfills_sketches_of_an_upgraded_file_before_retention_deletes_raw_rows(tmp_path):
    import asyncio

    from pulse_agent.agent import Agent, RunOptions
    from pulse_agent.clock import ManualClock
    from pulse_agent.config import parse_config

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:  # the previous release's file: 3 days, rolled up without sketches
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        for version, sql in enumerate(MIGRATIONS[:5], start=1):
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        seed(con, days=3)
        exact = exact_percentiles(con, NOW - 3 * DAY, NOW)
        con.execute(
            """INSERT INTO results_hourly SELECT date_trunc('hour', ts), check_name, count(*), count(*), 0, MAP {}, NULL, NULL, NULL,
                      max(response_time_ms) FROM results GROUP BY ALL"""
        )
    spec = parse_config("version: 1\nagent: {retention: 1d, listen: '127.0.0.1:0'}\n", "p.yaml", {})
    agent = Agent(spec, RunOptions(database=str(db)), clock=ManualClock(NOW))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.started.wait(), 10)
    await Maintenance(agent.store, agent.clock, lambda: agent.spec.agent).round()  # with the round at start: backfill every hour, then delete raw rows past 1 day
    await Maintenance(agent.store, agent.clock, lambda: agent.spec.agent).round()  # the days are merged once their hours have sketches
    stop.set()
    assert await task == 0
    with duckdb.connect(str(db), read_only=True) as con:
        [(left,)] = con.execute("SELECT count(*) FROM results WHERE ts < to_timestamp(?)", [NOW - DAY]).fetchall()
        [(missing, days)] = con.execute(
            "SELECT count(*) FILTER (WHERE latency_sketch IS NULL), (SELECT count(*) FROM results_daily) FROM results_hourly"
        ).fetchall()
        rows = build_report(con, ReportRequest(NOW - 3 * DAY, NOW)).rows
    assert left == 0 and missing == 0 and days > 0  # raw rows went only after their hours got sketches
    for r in rows:
        for p in ("p50", "p95", "p99"):
            assert within(r[f"{p}_ms"], exact[r["check_name"]][p]), (r["check_name"], p)


def test_one_pass_over_sorted_entries_answers_what_the_window_over_summed_buckets_does():
    """Report percentiles read each group's sketch entries in one pass (entries_quantiles_sql); the
    window over buckets summed per group (quantiles_sql, which the daily rollups use) is the reference:
    prefix terms (signed), a bucket in several entries, empty and all-zero groups, one-entry groups."""
    rng = random.Random(7)
    rows = []  # (group, bucket, signed count): each group a difference of two cumulative sketches plus raw counts
    for g in range(300):
        later = {rng.randint(-20, 60): rng.randint(1, 50) for _ in range(rng.randint(0, 40))}
        earlier = {k: rng.randint(0, n) for k, n in later.items() if rng.random() < 0.5}
        rows += [(g, k, float(n)) for k, n in later.items()] + [(g, k, -float(n)) for k, n in earlier.items()]
        rows += [(g, rng.randint(-20, 60), float(rng.randint(1, 3))) for _ in range(rng.randint(0, 5))]
    rows += [(1000, 5, 3.0), (1000, 5, -3.0), (1001, 9, 1.0)]  # nets to nothing; one count
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (g INTEGER, key SMALLINT, n DOUBLE)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        summed = "(SELECT g, key, sum(n) AS n FROM t GROUP BY ALL HAVING sum(n) > 0)"
        expected = con.execute(f"SELECT * FROM ({sketch.quantiles_sql(summed, 'g')}) ORDER BY g").fetchall()
        entries = "(SELECT g, list_sort(list(struct_pack(k := key, n := n))) AS e FROM t GROUP BY ALL)"
        got = con.execute(f"SELECT * FROM ({sketch.entries_quantiles_sql(entries, 'g')}) ORDER BY g").fetchall()
    assert got == expected and len(got) >= 250
    assert 1000 not in [g for g, *_ in got] and 1001 in [g for g, *_ in got]
