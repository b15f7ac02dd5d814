"""User SQL is sandboxed by DuckDB itself (store/sandbox.py): each bypass of the old regex guard,
first against the engine alone (the parser wall skipped), then through a real running agent's API,
with and without a token. Real DuckDB files throughout."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from pulse_agent.store.connect import open_database
from pulse_agent.store.migrations import MIGRATIONS, migrate
from pulse_agent.store.sandbox import Limits, QueryRefused, QueryTimeout, lock_down, one_select, read_only, run_select
from tests.agent_process import AgentProcess
from tests.conftest import free_port

CTE_WRITES = [
    "WITH d AS (DELETE FROM results RETURNING 1) SELECT count(*) FROM d",
    "WITH d AS (INSERT INTO outbox VALUES (99, now(), 'api', NULL, 'failure', 'ops', 'k', 'json://evil.example', 'failure',"
    " 'rotate your credentials at http://evil.example', 'b', 0, now(), NULL, NULL, NULL, NULL, NULL, NULL, NULL) RETURNING 1) SELECT count(*) FROM d",
    "WITH d AS (DELETE FROM schema_migrations RETURNING 1) SELECT count(*) FROM d",
    "WITH d AS (UPDATE results SET ok = false RETURNING 1) SELECT count(*) FROM d",
]
RUNAWAY = "SELECT sum(hash(i)) FROM range(4000000000) t(i)"
MEMORY_BOMB = "SELECT repeat('x', 50000000) FROM range(100)"


def attacks(tmp: Path) -> list[str]:
    """Queries that read or write outside the database, or change the engine."""
    return [
        f"SELECT * FROM '{tmp}/secret.csv' TABLESAMPLE 100%",
        f"SELECT * FROM '{tmp}/secret.csv' AS \"x{{\"",
        f"SELECT * FROM read_csv('{tmp}/secret.csv')",
        f"SELECT * FROM read_text('{tmp}/secret.csv')",
        f"SELECT * FROM glob('{tmp}/*')",
        f"SELECT * FROM enable_profiling(format='json', save_location='{tmp}/profile.txt')",
        f"SELECT * FROM enable_logging(storage='file', storage_path='{tmp}/logs')",
        "SELECT * FROM add_grammar_extension('x')",
        "SELECT * FROM create_external_resource('x', params := MAP {'a': 'b'}, resource_name := 'r')",
        "SELECT * FROM disable_logging()",
        "SELECT * FROM force_checkpoint()",
        "SELECT nextval('x')",
        "SELECT * FROM duckdb_secrets()",
        "SELECT getenv('HOME')",
        "SELECT * FROM query('DELETE FROM results')",
        f"SELECT * FROM read_duckdb('{tmp}/p.duckdb')",
    ]


@pytest.fixture
def con(tmp_path):
    """The agent's database as the agent opens it: migrated, a few rows, locked down."""
    (tmp_path / "secret.csv").write_text("user,password\nroot,hunter2\n")
    con = open_database(tmp_path / "p.duckdb")
    migrate(con)
    con.execute("INSERT INTO results (ts, check_name, ok, degraded, attempts) SELECT now(), 'api', true, false, 1 FROM range(10)")
    lock_down(con, allowed_dirs=[str(tmp_path / "exports")])
    yield con
    con.close()


def state(con: duckdb.DuckDBPyConnection) -> tuple[object, ...]:
    """Everything a query must not change: table contents and every engine setting."""
    tables = [con.execute(f"SELECT count(*), hash(list(t ORDER BY ALL)) FROM {t} t").fetchall() for t in
              ("results", "outbox", "schema_migrations", "incidents", "alert_state")]  # fmt: skip
    settings = con.execute("SELECT name, value FROM duckdb_settings() ORDER BY 1").fetchall()
    return tuple(tables), tuple(settings)


@pytest.mark.parametrize("sql", CTE_WRITES)
def test_the_engine_alone_refuses_data_modifying_ctes(con, sql):
    before = state(con)
    assert one_select(sql)  # the parser wall lets them through: they are SELECT statements
    with pytest.raises(duckdb.TransactionException, match="read-only mode"), read_only(con, 10) as cur:
        cur.execute(sql).fetchall()  # straight on the engine, no wrapper, no parser wall
    with pytest.raises(QueryRefused):
        run_select(con, sql)
    assert state(con) == before


def test_files_settings_and_engine_state_are_out_of_reach(con, tmp_path):
    before = state(con)
    files = sorted(p.name for p in tmp_path.iterdir())
    for sql in attacks(tmp_path):
        with pytest.raises(QueryRefused) as refused:
            run_select(con, sql)
        assert "hunter2" not in str(refused.value), sql
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no profile, no log directory
    assert state(con) == before
    # checkpoint() is accepted: it moves the WAL into the file, as DuckDB does by itself; no data changes.
    assert run_select(con, "SELECT * FROM checkpoint()") == (["Success"], []) or state(con)[0] == before[0]
    assert state(con)[0] == before[0]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE EXTENSIONS", "this is another kind of statement"),
        ("SELECT " + "+".join(["1"] * 2000), "Max expression depth"),
        ("SELECT 1; SELECT 2", "give exactly one statement, not 2"),
        ("", "give exactly one statement, not 0"),
        ("DELETE FROM results", "DELETE statements are refused"),
        ("SET threads = 64", "SET statements are refused"),
        ("COPY results TO 'x.csv'", "COPY statements are refused"),
        ("PRAGMA enable_profiling", "PRAGMA statements are refused"),
    ],
)
def test_the_parser_wall_answers_with_a_reason(con, sql, reason):
    with pytest.raises(QueryRefused, match=reason):
        run_select(con, sql)


def test_ordinary_queries_keep_their_columns_rows_and_parameters(con):
    assert run_select(con, "SELECT check_name, count(*) AS n FROM results GROUP BY 1;  -- the count") == (
        ["check_name", "n"],
        [("api", 10)],
    )
    assert run_select(con, "SELECT " + "+".join(["1"] * 400) + " AS s") == (["s"], [(400,)])
    assert run_select(con, "SELECT 1 AS a, 2 AS a") == (["a", "a_1"], [(1, 2)])  # unique names, so JSON rows keep both
    assert run_select(con, "SELECT i FROM range(5) t(i) ORDER BY i DESC", limits=Limits(max_rows=3)) == (["i"], [(4,), (3,), (2,)])
    assert run_select(con, "SELECT $n::INT + 1 AS m", {"n": 41}) == (["m"], [(42,)])


def test_a_runaway_query_is_interrupted(con):
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"longer than 0\.5s"):
        run_select(con, RUNAWAY, limits=Limits(timeout=0.5))
    assert time.monotonic() - started < 5
    assert run_select(con, "SELECT count(*) FROM results") == (["count_star()"], [(10,)])  # the database is fine after


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (MEMORY_BOMB, "the answer is larger than"),  # one 50 MB string, repeated: small inside DuckDB, 5 GB in Python
        ("SELECT max(length(x)) FROM (SELECT repeat('x', 50000000 + i) AS x FROM range(100) t(i))", "Out of Memory"),
    ],
)
def test_memory_bombs_are_refused_inside_the_engine(tmp_path, sql, reason):
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    lock_down(con, memory_limit=256 << 20)
    with pytest.raises(QueryRefused, match=reason):
        run_select(con, sql)
    con.close()


# --- through a running agent -------------------------------------------------------------------

TOKEN = "sandbox-token-0123456789"


def agent_config(tmp_path: Path, port: int, token: bool) -> Path:
    cfg = tmp_path / "pulse.yaml"
    auth = f", api_token: '{TOKEN}'" if token else ""
    cfg.write_text(
        f"version: 1\nagent: {{listen: '127.0.0.1:{port}', query_timeout: 2s, export_dir: '{tmp_path}/exports'{auth}}}\n"
        f"checks:\n  - {{name: self, url: 'http://127.0.0.1:{port}/healthz', schedule: every 1s}}\n"
    )
    return cfg


def vm_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.parametrize("token", [True, False], ids=["token", "no-token"])
def test_a_running_agent_refuses_every_bypass_and_stays_responsive(tmp_path, token):
    (tmp_path / "secret.csv").write_text("user,password\nroot,hunter2\n")
    port = free_port()
    db = tmp_path / "p.duckdb"
    agent = AgentProcess("-c", str(agent_config(tmp_path, port, token)), "--db", str(db))
    headers = {"Authorization": f"bearer {TOKEN}"} if token else {}
    try:
        agent.wait_for(lambda r: r.get("msg") == "agent started")
        agent.wait_for(lambda r: r.get("msg") == "result")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:

            def report(sql: str) -> httpx.Response:
                return client.post("/api/v1/report", json={"start": 0, "end": time.time() + 60, "sql": sql})

            deadline = time.monotonic() + 10
            while report("SELECT count(*) AS n FROM results").json()["rows"][0]["n"] == 0:  # the first batch is written
                assert time.monotonic() < deadline
                time.sleep(0.1)
            files = sorted(p.name for p in tmp_path.iterdir())
            for sql in [*CTE_WRITES, *attacks(tmp_path), "UPDATE EXTENSIONS", "SELECT " + "+".join(["1"] * 2000)]:
                answer = report(sql)
                assert answer.status_code == 400, (sql, answer.text)
                assert "hunter2" not in answer.text and "Traceback" not in answer.text
            assert sorted(p.name for p in tmp_path.iterdir() if p.name != "p.duckdb.wal") == sorted(f for f in files if f != "p.duckdb.wal")
            assert client.post("/api/v1/export", json={"start": 0, "end": 1, "out": str(tmp_path / "elsewhere")}).status_code == 403

            # A runaway query is stopped at query_timeout; meanwhile /metrics and reloads answer at once.
            slow: list[httpx.Response] = []
            runners = [threading.Thread(target=lambda: slow.append(report(RUNAWAY))) for _ in range(3)]
            for t in runners:
                t.start()
            time.sleep(0.3)
            while any(t.is_alive() for t in runners):
                t0 = time.monotonic()
                assert client.get("/metrics").status_code == 200
                assert client.post("/-/reload").status_code == 200
                assert time.monotonic() - t0 < 1.5
                time.sleep(0.1)
            assert [r.status_code for r in slow] == [400] * 3
            assert all("longer than 2s" in r.json()["error"] for r in slow)

            bomb = report(MEMORY_BOMB)
            assert bomb.status_code == 400, bomb.text
            assert "larger than" in bomb.json()["error"] or "longer than 2s" in bomb.json()["error"]  # a loaded machine is slower
            assert client.get("/healthz").status_code == 200
            assert vm_peak_mb(agent.proc.pid) < 1500  # the bomb never reached Python: 10 GB before
            assert report("SELECT count(*) AS n FROM results").status_code == 200
    finally:
        assert agent.stop(signal.SIGTERM) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchall() == [(len(MIGRATIONS),)]
        assert con.execute("SELECT count(*) FROM outbox").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM results WHERE NOT ok").fetchall() == [(0,)]
    assert not os.path.exists(tmp_path / "profile.txt") and not os.path.exists(tmp_path / "logs")
