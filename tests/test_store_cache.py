"""DuckDB's block cache bounded by the writer replacing its instance, on a real file: nothing lost,
reports answering (and never closed under), the sandbox as locked as before."""

import asyncio
import random
import threading

import duckdb
import pytest

from pulse_agent.report import ReportRequest, answer
from pulse_agent.result import Result
from pulse_agent.store import db, instance
from pulse_agent.store.connect import StoreError
from pulse_agent.store.db import ResultStore

T0 = 1_800_000_000.0
CHECKS = 200
LIMIT = 512 << 10  # bytes of cached table blocks the bounded store keeps


def results(rng: random.Random, first: int, n: int) -> list[Result]:
    """n results of CHECKS checks, a third failing, with latencies that compress like real ones do (poorly)."""

    def one(i: int) -> Result:
        failed = i % 3 == 0
        return Result(f"c{i % CHECKS}", T0 + i, not failed, status_code=503 if failed else 200,
                      response_time_ms=rng.uniform(1, 900), error_kind="status" if failed else None, scheduled_ts=T0 + i)  # fmt: skip

    return [one(i) for i in range(first, first + n)]


async def written(store: ResultStore, batch: list[Result]) -> None:
    """batch written and checkpointed, and the writer past its look at the cache that followed."""
    for r in batch:
        store.submit(r)
    await store.checkpoint()
    await store.call(lambda con: None)  # a later turn of the writer: the one after the checkpoint has looked


async def cached_after_rounds(store: ResultStore, rounds: int, per_round: int) -> list[int]:
    """BASE_TABLE bytes after each of rounds checkpoints of per_round new results."""
    rng, seen = random.Random(7), []
    for k in range(rounds):
        await written(store, results(rng, k * per_round, per_round))
        seen.append(await store.read(instance.cached_table_bytes))
    return seen


@pytest.mark.parametrize("bounded", [True, False])
async def test_the_block_cache_stays_under_the_bound_while_checkpoints_add_blocks_and_reports_still_answer(tmp_path, bounded):
    limit = LIMIT if bounded else 1 << 40
    store = ResultStore(tmp_path / "p.duckdb", cache_limit=limit, cache_check_every=0)
    try:
        seen = await cached_after_rounds(store, rounds=8, per_round=25_000)
        total = 8 * 25_000
        # a report over the whole history answers at the configured memory limit, through the query pool
        report = await store.query(lambda con: answer(con, ReportRequest(T0, T0 + total + 1), store.limits))
        counted = await store.query(lambda con: con.execute("SELECT count(*), count(DISTINCT check_name) FROM results").fetchall())
    finally:
        store.close()
    assert len(report.rows) == CHECKS and counted == [(total, CHECKS)]
    if bounded:
        assert max(seen) <= limit and store.instances > 1
    else:  # without the bound the cache grows with the file: the bound above is what holds it
        assert seen[-1] > 4 * LIMIT and store.instances == 1


async def test_a_running_report_holds_off_the_replacement_and_answers_then_the_cache_is_freed(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "QUERY_WAIT_S", 0.01)  # the writer looks at every turn here
    store = ResultStore(tmp_path / "p.duckdb", cache_limit=LIMIT, cache_check_every=0)
    inside, release = threading.Event(), threading.Event()

    def slow_report(con: duckdb.DuckDBPyConnection) -> int:
        inside.set()
        assert release.wait(60)
        return con.execute("SELECT count(*) FROM results").fetchall()[0][0]

    try:
        report = asyncio.ensure_future(store.query(slow_report))
        await asyncio.to_thread(inside.wait, 10)
        during = await cached_after_rounds(store, rounds=6, per_round=25_000)
        assert max(during) > LIMIT and store.instances == 1 and not report.done()
        release.set()
        assert await report >= 0  # the instance it ran on was never closed under it
        await written(store, [])
        assert store.instances == 2 and await store.read(instance.cached_table_bytes) <= LIMIT
    finally:
        release.set()
        store.close()


async def test_after_a_replacement_user_sql_still_cannot_change_settings_or_read_files(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    store = ResultStore(tmp_path / "p.duckdb", cache_limit=LIMIT, cache_check_every=0)
    try:
        await cached_after_rounds(store, rounds=4, per_round=25_000)
        assert store.instances > 1
        for sql in ("SET lock_configuration = false", "SET memory_limit = '8GiB'", f"SELECT * FROM read_csv('{secret}')"):
            with pytest.raises(duckdb.Error):
                await store.query(lambda con, sql=sql: con.execute(sql).fetchall())
        settings = await store.query(lambda con: con.execute(
            "SELECT current_setting('lock_configuration'), current_setting('enable_external_access'), current_setting('checkpoint_threshold')").fetchall())  # fmt: skip
    finally:
        store.close()
    assert settings == [(True, False, "4.0 MiB")]


async def test_results_and_calls_wait_while_the_file_cannot_be_opened_again_then_each_is_written_once(tmp_path, monkeypatch):
    prepare, failures = instance.prepare, []

    def refused_twice(*args, **kwargs):
        if len(failures) < 2:
            failures.append(1)
            raise StoreError("cannot open database: it is locked by another process")
        return prepare(*args, **kwargs)

    store = ResultStore(tmp_path / "p.duckdb", cache_limit=LIMIT, cache_check_every=0, flush_interval=0.01)
    try:
        rng = random.Random(3)
        for r in results(rng, 0, 100_000):
            store.submit(r)
        await store.call(lambda con: None)
        monkeypatch.setattr(instance, "prepare", refused_twice)
        # the checkpoint's turn closes the instance (its cache is past the bound) and cannot open it again
        await store.checkpoint()
        for r in results(rng, 100_000, 1_000):
            store.submit(r)
        counted = await store.call(lambda con: con.execute("SELECT count(*), count(DISTINCT ts) FROM results").fetchall())
    finally:
        store.close()
    assert len(failures) == 2 and store.dropped == 0
    assert counted == [(101_000, 101_000)]


def test_the_gate_shuts_only_once_no_query_runs_and_queries_arriving_meanwhile_wait_for_it_to_open():
    gate, order = instance.QueryGate(), []
    inside, leave = threading.Event(), threading.Event()

    def running_query() -> None:
        with gate.passed():
            inside.set()
            leave.wait(10)
            order.append("first query left")

    first = threading.Thread(target=running_query)
    first.start()
    inside.wait(10)
    with gate.shut(0.02) as idle:
        assert not idle  # a query still runs: the caller postpones
    leave.set()
    first.join(10)

    def late_query() -> None:
        with gate.passed():
            order.append("late query ran")

    with gate.shut(1.0) as idle:
        assert idle
        late = threading.Thread(target=late_query)
        late.start()
        late.join(0.05)
        assert late.is_alive()  # held off while shut
        order.append("replaced")
    late.join(10)
    assert order == ["first query left", "replaced", "late query ran"]


async def test_no_other_process_takes_the_file_while_the_writer_replaces_its_instance(tmp_path):
    """DuckDB's lock goes while the instance is replaced; the agent's (store/connect.py) stays: a `report`
    opening the file meanwhile is sent to the agent, never given the file. Once the store closes, it is."""
    import subprocess
    import sys

    path, stop = tmp_path / "p.duckdb", tmp_path / "stop"
    probe = (  # open_read_only as fast as it goes until told to stop: how often it got the file, how often not
        "import os, sys\nfrom pulse_agent.report_source import open_read_only\n"
        "got = away = 0\nprint('ready', flush=True)\n"
        f"while not os.path.exists({str(stop)!r}) or got + away == 0:\n"
        f"    con = open_read_only({str(path)!r})\n"
        "    if con is None: away += 1\n"
        "    else: got += 1; con.close()\n"
        "print(got, away, flush=True)\n"
    )
    store = ResultStore(path, cache_limit=0, cache_check_every=0)
    child = subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        rng = random.Random(3)
        for k in range(30):  # each turn of the writer after a checkpoint replaces the instance
            await written(store, results(rng, k * 1_000, 1_000))
        stop.touch()
        got, away = map(int, child.stdout.readline().split())  # type: ignore[union-attr]
        replaced = store.instances
        counted = await store.read(lambda con: con.execute("SELECT count(*) FROM results").fetchall())
    finally:
        stop.touch()
        child.wait(30)
        store.close()
    assert replaced > 20 and got == 0 and away > 0 and counted == [(30_000,)]
    after = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout.split()
    assert after[1:3] == ["1", "0"]  # the store closed: the file is anybody's again


async def test_while_the_file_cannot_be_opened_again_reads_say_closed_and_no_write_is_attempted(tmp_path, monkeypatch):
    from pulse_agent.view import StoreClosed  # what the API answers 503 to

    prepare, refusing = instance.prepare, threading.Event()
    refusing.set()

    def refused_while_asked(*args, **kwargs):
        if refusing.is_set():
            raise StoreError("cannot open database: it is locked by another process")
        return prepare(*args, **kwargs)

    store = ResultStore(tmp_path / "p.duckdb", cache_limit=0, cache_check_every=0, flush_interval=0.01)
    try:
        rng = random.Random(5)
        for r in results(rng, 0, 5_000):
            store.submit(r)
        await store.checkpoint()
        monkeypatch.setattr(instance, "prepare", refused_while_asked)
        for r in results(rng, 5_000, 500):
            store.submit(r)
        for _ in range(1000):  # a turn of the writer closes the instance (its cache is past 0) and cannot open it again
            if store.failing is not None:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # five more flushes of the writer meanwhile
        with pytest.raises(StoreClosed):
            await store.read(lambda con: con.execute("SELECT 1").fetchall())
        assert store.write_failures == 0 and store.failing is not None and "locked" in store.failing
        refusing.clear()
        counted = await store.call(lambda con: con.execute("SELECT count(*) FROM results").fetchall())
        read = await store.read(lambda con: con.execute("SELECT count(*) FROM results").fetchall())
    finally:
        store.close()
    assert counted == read == [(5_500,)] and store.dropped == 0
