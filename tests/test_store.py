"""The DuckDB store on a real file."""

import itertools
import json
import subprocess
import sys
import time

import duckdb
import pytest

from pulse_agent.result import Result
from pulse_agent.store.db import APPEND_PIECE, ResultStore, StoreError, result_row
from pulse_agent.store.migrations import MIGRATIONS

T0 = 1_800_000_000.0


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def rows(path, sql="SELECT * FROM results ORDER BY ts"):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_results_round_trip_with_every_column(tmp_path):
    db = tmp_path / "p.duckdb"
    store = ResultStore(db)
    store.submit(
        Result(
            "a",
            T0,
            True,
            status_code=200,
            response_time_ms=12.5,
            attempts=1,
            scheduled_ts=T0 - 0.002,
            dns_ms=0.5,
            connect_ms=1.0,
            tls_ms=2.0,
            first_byte_ms=8.0,
            cert_expires=T0 + 86400,
            maintenance=True,
            http_version="2",
            tls_version="1.3",
            details={"answers": ["10.0.0.1"], "rcode": "NOERROR"},
        )
    )
    store.submit(
        Result("b", T0 + 1, False, status_code=503, response_time_ms=3.0, error_kind="status", error="status 503 not in [2xx]", attempts=2)
    )
    store.close()
    (ts, name, ok, degraded, code, ms, kind, error, attempts, scheduled, *phases, maintenance, http, tls, details) = rows(db)[1]
    assert phases == [None] * 5
    assert (http, tls, details) == (None, None, None)
    assert maintenance is False
    assert (name, ok, degraded, code, ms, kind, error, attempts, scheduled) == (
        "b",
        False,
        False,
        503,
        3.0,
        "status",
        "status 503 not in [2xx]",
        2,
        None,
    )
    assert ts.timestamp() == T0 + 1
    first = rows(db)[0]
    assert first[9].timestamp() == pytest.approx(T0 - 0.002)
    assert first[10:14] == (0.5, 1.0, 2.0, 8.0) and first[14].timestamp() == T0 + 86400
    assert first[15] is True
    assert first[16:18] == ("2", "1.3")
    assert json.loads(first[18]) == {"answers": ["10.0.0.1"], "rcode": "NOERROR"}


def test_results_are_flushed_within_the_flush_interval_without_closing(tmp_path):
    written = []
    store = ResultStore(tmp_path / "p.duckdb", flush_interval=0.05, on_written=written.append)
    for i in range(3):
        store.submit(Result("a", T0 + i, True))
    wait_for(lambda: store.written == 3)
    assert written == [3]
    store.close()


def test_full_batches_are_written_at_once(tmp_path):
    store = ResultStore(tmp_path / "p.duckdb", flush_interval=60, batch_size=100)
    for i in range(250):
        store.submit(Result("a", T0 + i, True))
    wait_for(lambda: store.written >= 200)  # full batches wake the writer long before the 60 s flush
    store.close()  # the rest on close
    assert store.written == 250
    assert rows(tmp_path / "p.duckdb", "SELECT count(*) FROM results") == [(250,)]


def test_a_batch_appended_in_pieces_is_the_batch_appended_at_once(tmp_path):
    """The writer appends a batch a piece at a time (the GIL goes to the event loop between pieces): the
    table holds exactly what one append of the whole batch holds, row for row and in order."""
    n = 7 * APPEND_PIECE + 3
    results = [
        Result(
            f"c{i % 13}",
            T0 + i / 7,
            i % 3 != 0,
            status_code=200 if i % 3 else 500,
            response_time_ms=i / 10,
            error_kind=None if i % 3 else "status",
            error=None if i % 3 else f"status {i}",
            attempts=1 + i % 2,
            scheduled_ts=T0 + i / 7 - 0.001,
            details={"i": i} if i % 5 == 0 else None,
        )
        for i in range(n)
    ]
    store = ResultStore(tmp_path / "p.duckdb", flush_interval=60, batch_size=n)
    for r in results:
        store.submit(r)
    store.close()
    assert store.written == n
    with duckdb.connect(str(tmp_path / "p.duckdb")) as con:
        con.execute("CREATE TABLE at_once AS SELECT * FROM results LIMIT 0")
        with con.appender("at_once") as appender:
            appender.append_rows([result_row(r) for r in results])
        assert con.execute("SELECT * FROM results").fetchall() == con.execute("SELECT * FROM at_once").fetchall()


async def test_results_a_refused_write_keeps_are_written_once_the_file_takes_them(tmp_path):
    """While appends fail, results wait (the newest max_pending of them); once the table is back they land."""
    store = ResultStore(tmp_path / "p.duckdb", flush_interval=0.02, max_pending=5)
    await store.call(lambda con: con.execute("ALTER TABLE results RENAME TO away"))
    for i in range(8):
        store.submit(Result("a", T0 + i, True))
    wait_for(lambda: store.dropped == 3)
    await store.call(lambda con: con.execute("ALTER TABLE away RENAME TO results"))
    wait_for(lambda: store.written == 5)
    store.close()
    assert [r[0].timestamp() for r in rows(tmp_path / "p.duckdb")] == [T0 + i for i in range(3, 8)]


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path):
    db = tmp_path / "p.duckdb"
    for i in range(2):
        store = ResultStore(db)
        store.submit(Result("a", T0 + i, True))
        store.close()
    assert rows(db, "SELECT count(*) FROM results") == [(2,)]
    assert rows(db, "SELECT version FROM schema_migrations") == [(v,) for v in range(1, len(MIGRATIONS) + 1)]


def test_missing_directory_is_a_one_line_error(tmp_path):
    with pytest.raises(StoreError) as info:
        ResultStore(tmp_path / "nope" / "p.duckdb")
    assert (
        str(info.value)
        == f"cannot open database '{tmp_path}/nope/p.duckdb': directory '{tmp_path}/nope' does not exist; create it or set agent.database / --db"
    )


def test_database_held_by_another_process_is_a_one_line_error(tmp_path):
    db = tmp_path / "p.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,sys,time; c=duckdb.connect({str(db)!r}); print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError) as info:
            ResultStore(db)
        message = str(info.value)
        assert message.startswith(f"cannot open database '{db}': it is locked by another process (PID {holder.pid})")
        assert "\n" not in message
    finally:
        holder.stdin.close()
        holder.wait(10)


async def test_a_maintenance_round_checkpoints_so_results_leave_memory_and_the_wal(tmp_path):
    # DuckDB checkpoints by itself only once its WAL reaches checkpoint_threshold, which a small
    # agent takes days to write; until then every result stays in memory uncompressed.
    from pulse_agent.clock import ManualClock
    from pulse_agent.config.model import AgentSettings
    from pulse_agent.store.maintenance import Maintenance

    db = tmp_path / "p.duckdb"
    store = ResultStore(db)
    try:
        for i in range(20_000):
            store.submit(Result(f"c{i % 7}", T0 + i, i % 5 != 0, status_code=200, response_time_ms=float(i % 90)))
        await store.call(lambda con: None)  # every result submitted is written
        wal = tmp_path / "p.duckdb.wal"

        def in_memory(con) -> int:
            found = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'").fetchone()
            return int(found[0] or 0)

        held = await store.read(in_memory)
        assert wal.stat().st_size > 0 and held > 0
        await Maintenance(store, ManualClock(T0 + 20_000), AgentSettings).round()
        assert not wal.exists() or wal.stat().st_size == 0
        assert await store.read(in_memory) < held / 4
        assert await store.read(lambda con: con.execute("SELECT count(*) FROM results").fetchone()[0]) == 20_000
    finally:
        store.close()
    assert rows(db, "SELECT count(*), count(DISTINCT check_name) FROM results") == [(20_000, 7)]


def test_the_writer_trims_the_heap_now_and_then_while_it_writes(tmp_path):
    trims: list[float] = []
    store = ResultStore(tmp_path / "p.duckdb", flush_interval=0.01, trim=lambda: trims.append(time.monotonic()), trim_every=0.05)
    try:
        for i in range(5):
            store.submit(Result("a", T0 + i, True))
        wait_for(lambda: len(trims) >= 2)
    finally:
        store.close()
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(trims))  # not at every wake of the writer
    assert rows(tmp_path / "p.duckdb", "SELECT count(*) FROM results") == [(5,)]
