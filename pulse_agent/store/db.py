"""DuckDB: open the file (store/instance.py), and write results in batches from one writer thread, which also
replaces the instance now and then so DuckDB's block cache does not grow with the file."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import duckdb

from pulse_agent.result import Result, utc
from pulse_agent.store import instance, sandbox
from pulse_agent.store.connect import StoreClosed, StoreError, hold, last_line

log = logging.getLogger("pulse_agent.store")


QUERY_THREADS = 2  # reports and user SQL running at once
QUERY_QUEUE = 8  # running or waiting before more are refused
CACHE_LIMIT = 4 << 20  # bytes of table blocks DuckDB may keep cached before the writer replaces its instance
CACHE_CHECK_EVERY_S = 30.0  # how often the writer looks at that figure
QUERY_WAIT_S = 0.1  # the longest the writer waits for running reports (and stalls) before it postpones the replacement
WAKE_EVERY = 500  # results queued before the writer is woken ahead of its flush interval
APPEND_PIECE = 50  # rows per append_rows call, which holds the GIL throughout: the event loop waits meanwhile
TRIM_EVERY_S = 30.0  # how often the writer calls its `trim` (the agent's: free C heap pages back to the system)
_STOP = object()
_FLUSH = object()

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Call:
    """Work for the writer thread: fn(connection) in a transaction, then done(value or exception)."""

    fn: Callable[[duckdb.DuckDBPyConnection], object]
    done: Callable[[object, BaseException | None], None]
    transaction: bool = True  # False: statements that cannot run inside one (CHECKPOINT)


class QueriesBusy(Exception):
    """Too many reports are running or waiting; the message says so."""


def result_row(r: Result) -> tuple[object, ...]:
    """A Result as a row of the results table."""
    return (
        utc(r.ts),
        r.check,
        r.ok,
        r.degraded,
        r.status_code,
        r.response_time_ms,
        r.error_kind,
        r.error,
        r.attempts,
        utc(r.scheduled_ts),
        r.dns_ms,
        r.connect_ms,
        r.tls_ms,
        r.first_byte_ms,
        utc(r.cert_expires),
        r.maintenance,
        r.http_version,
        r.tls_version,
        None if r.details is None else json.dumps(r.details, separators=(",", ":"), sort_keys=True),
    )


@dataclass(frozen=True, slots=True)
class History:
    """What the file remembers of earlier runs: each check's last due time, and the last result time."""

    last_runs: dict[str, float]
    last_seen: float | None


def read_history(con: duckdb.DuckDBPyConnection) -> History:
    """Last scheduled_ts per check, and the newest ts overall (when the agent was last seen working)."""
    rows = con.execute("SELECT check_name, epoch(max(coalesce(scheduled_ts, ts))) FROM results GROUP BY check_name").fetchall()
    [(seen,)] = con.execute("SELECT epoch(max(ts)) FROM results").fetchall()
    return History({name: float(t) for name, t in rows}, float(seen) if seen is not None else None)


class ResultStore:
    """Owns the read-write connection; results queue up and one thread appends them in batches."""

    def __init__(
        self,
        path: str | Path,
        *,
        flush_interval: float = 1.0,
        batch_size: int = 5000,  # appender rows per write: 5,000 cost 4.6 us a row, 1,000 cost 6.0 us
        max_pending: int = 1_000_000,
        on_written: Callable[[int], None] | None = None,
        on_write_failed: Callable[[], None] | None = None,
        export_dir: str | None = None,
        memory_limit: int = sandbox.DEFAULT_MEMORY_LIMIT,
        query_timeout: float = sandbox.DEFAULT_TIMEOUT,
        trim: Callable[[], None] | None = None,
        trim_every: float = TRIM_EVERY_S,
        cache_limit: int = CACHE_LIMIT,
        cache_check_every: float = CACHE_CHECK_EVERY_S,
    ) -> None:
        self.path = Path(path)
        self._export_dir, self._memory_limit = export_dir, memory_limit
        self._held_lock = hold(self.path)  # kept while the instance is replaced (connect.py: the agent's lock)
        try:
            self._con = instance.prepare(self.path, export_dir=export_dir, memory_limit=memory_limit)
            try:
                self.history = read_history(self._con)
            except duckdb.Error as exc:
                self._con.close()
                raise StoreError(f"cannot prepare database {str(self.path)!r}: {last_line(str(exc))}") from None
        except BaseException:
            self._let_go()
            raise
        self._reader = self._con.cursor()  # a second connection to the same database, for queries
        self._reader_lock = threading.Lock()
        self._cursors = self._con.cursor()  # where the query pool's connections are opened
        self._cursor_lock = threading.Lock()
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._wake_every = min(WAKE_EVERY, batch_size)
        self._max_pending = max_pending
        self._on_written = on_written
        self._on_write_failed = on_write_failed
        self._trim, self._trim_every = trim, trim_every
        self._trimmed = time.monotonic()
        self._cache_limit, self._cache_check_every = cache_limit, cache_check_every
        self._cache_checked = time.monotonic()
        self._gate = instance.QueryGate()  # shut while the writer replaces the instance
        self._lost: str | None = None  # why the instance could not be opened again, until it is
        self.instances = 1  # DuckDB instances this store has opened on the file
        self._held: collections.deque[_Call] = collections.deque()  # calls waiting for the file to open again
        self.failing: str | None = None  # why the last write of results failed, until one succeeds
        self.write_failures = 0  # failed write attempts (each retry of the same rows counts)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()  # calls, flush requests, stop
        self._results: collections.deque[Result] = collections.deque()
        self._unwritten: list[tuple[object, ...]] = []  # rows a failed write keeps for the next try
        self._stopping = threading.Event()  # interrupts running reports at close
        self.limits = sandbox.Limits(timeout=query_timeout, stop=self._stopping)
        # Reports and user SQL: their own small pool, so a slow query never holds the threads /metrics and reloads use.
        self._queries = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="pulse-query")
        self._queries_waiting = 0
        self._thread = threading.Thread(target=self._write_loop, name="pulse-store-writer", daemon=True)
        self._thread.start()
        self.written = 0
        self.dropped = 0

    def submit(self, result: Result) -> None:
        """Queue a result for writing; never blocks."""
        # A deque, not the queue: waking the writer per result cost a thread switch per run.
        self._results.append(result)
        if len(self._results) % self._wake_every == 0:  # short writes: converting holds the GIL the event loop needs
            self._queue.put(_FLUSH)

    @property
    def pending(self) -> int:
        """Results submitted but not written yet (approximate while the writer works)."""
        return len(self._results) + len(self._unwritten)

    async def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run a query function in a thread on the reader connection; sees what has been written."""

        def run() -> T:
            with self._reader_lock:
                if self._lost is not None:  # the instance is being replaced and the file is not open again yet
                    raise StoreClosed(f"the database is being opened again ({self._lost}); try again in a moment")
                # In a transaction of its own, ended here: a result fn left unread would otherwise keep its
                # transaction open, and DuckDB cannot checkpoint while one is.
                self._reader.execute("BEGIN")
                try:
                    return fn(self._reader)
                finally:
                    with contextlib.suppress(duckdb.Error):  # never hides what fn raised
                        self._reader.execute("ROLLBACK")

        return await asyncio.to_thread(run)

    async def query(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, timeout: float | None = None) -> T:
        """Run fn on a connection opened for it, in a READ ONLY transaction interrupted after the query
        timeout (sandbox.QueryTimeout), on the query pool; QueriesBusy when too many already wait."""
        if self._queries_waiting >= QUERY_QUEUE:
            raise QueriesBusy(f"{QUERY_QUEUE} reports are running or waiting already; try again later")
        limit = self.limits.timeout if timeout is None else timeout

        def run() -> T:
            with self._gate.passed():
                if self._lost is not None:  # the writer could not open the file again yet
                    raise QueriesBusy(f"the database is being reopened ({self._lost}); try again later")
                with self._cursor_lock:  # the writer's connection belongs to the writer thread: cursors come from their own
                    base = self._cursors.cursor()
                try:
                    with sandbox.read_only(base, limit, self._stopping) as cur:
                        return fn(cur)
                finally:
                    base.close()

        self._queries_waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._queries, run)
        finally:
            self._queries_waiting -= 1

    async def call(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, transaction: bool = True) -> T:
        """Run fn on the writer's connection in one transaction (or none), after every result submitted before it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def done(value: object, error: BaseException | None) -> None:
            def settle() -> None:
                if future.done():
                    return
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(cast(T, value))

            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(settle)

        self._queue.put(_Call(fn, done, transaction))
        return await future

    async def checkpoint(self) -> None:
        """Write what DuckDB holds in memory and in its WAL into the file's compressed blocks, after every
        result submitted before it. DuckDB does this itself only once the WAL reaches checkpoint_threshold,
        which a small agent takes days to write: until then each result stays in memory uncompressed."""
        try:
            await self.call(lambda con: con.execute("CHECKPOINT"), transaction=False)
        except duckdb.TransactionException as exc:  # a report still reads: the next round checkpoints
            log.debug("checkpoint postponed: %s", last_line(str(exc)))

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then close the file; never raises. What could not be written
        is counted in `dropped`."""
        self._stopping.set()  # a running report is interrupted, not waited for
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        if self._thread.is_alive():  # the writer is stuck in the file: what it holds is lost
            self.dropped += self.pending
            log.error("the writer did not finish within %.0f s; %d results not written to %s", timeout, self.pending, self.path)
        self._queries.shutdown(wait=True, cancel_futures=True)
        try:
            self._cursors.close()
            with self._reader_lock:
                self._reader.close()
            self._con.close()
        except duckdb.Error as exc:  # a file that refuses writes may refuse the final checkpoint too
            log.error("closing %s failed: %s", self.path, last_line(str(exc)))
        self._let_go()

    def _let_go(self) -> None:
        """Release the agent's lock of the file (after the file itself)."""
        if self._held_lock is not None:
            with contextlib.suppress(OSError):
                os.close(self._held_lock)
            self._held_lock = None

    def _write_loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._flush_interval)
            except queue.Empty:
                item = _FLUSH
            if self._lost is not None:
                self._reopen()
            self._drain()  # every result submitted before a call is written before it runs
            if isinstance(item, _Call):
                self._held.append(item)
            while self._held and self._lost is None:  # in order; held while the file is not open (the outbox's rows too)
                self._call(self._held.popleft())
            if self._trim is not None and time.monotonic() - self._trimmed >= self._trim_every:
                self._trimmed = time.monotonic()
                self._trim()  # in this thread: glibc's malloc_trim through ctypes lets the event loop run meanwhile
            if item is not _STOP and time.monotonic() - self._cache_checked >= self._cache_check_every:
                self._cache_checked = time.monotonic()
                self._bound_cache()
            if item is _STOP:
                for call in self._held:
                    call.done(None, StoreError(f"{self.path} was not open again when the agent stopped: {self._lost}"))
                if self._unwritten:
                    self.dropped += len(self._unwritten)
                    log.error("closing with %d results that could not be written to %s", len(self._unwritten), self.path)
                return

    def _bound_cache(self) -> None:
        """Replace the instance when its cached table blocks pass cache_limit, unless a report runs."""
        try:
            if self._lost is not None or instance.cached_table_bytes(self._con) <= self._cache_limit:
                return
        except duckdb.Error:
            return  # the file refuses work: the writes say so
        with self._gate.shut(QUERY_WAIT_S) as idle:
            if not idle or not self._reader_lock.acquire(timeout=QUERY_WAIT_S):
                log.debug("replacing the database instance postponed: a report is running")
                return
            try:
                with self._cursor_lock:
                    self._close_instance()
                    self._reopen()
            finally:
                self._reader_lock.release()

    def _close_instance(self) -> None:
        """Close every connection of the instance, which ends it (DuckDB checkpoints at the last one)."""
        for con in (self._cursors, self._reader, self._con):
            try:
                con.close()
            except duckdb.Error as exc:
                log.error("closing %s failed: %s", self.path, last_line(str(exc)))
        self._lost = "closed to free its cache"

    def _reopen(self) -> None:
        """Open the file again as at start (no migration left to run); on failure the writes fail and keep
        their rows, and the next flush tries again."""
        try:
            con = instance.prepare(self.path, export_dir=self._export_dir, memory_limit=self._memory_limit)
        except StoreError as exc:
            if self._lost != str(exc):
                log.error("reopening the database failed, will retry: %s", exc)
            self._lost = str(exc)
            return
        self._con, self._reader, self._cursors = con, con.cursor(), con.cursor()
        self._lost = None
        self.instances += 1

    def _drain(self) -> None:
        """Write the results queued now (not those arriving meanwhile: they wait for the next flush), batch_size rows per append."""
        results = self._results
        left = len(results)
        while left or self._unwritten:
            rows = self._unwritten
            take = min(left, max(0, self._batch_size - len(rows)))
            for _ in range(take):
                rows.append(result_row(results.popleft()))
            left -= take
            self._unwritten = self._write(rows)
            if self._unwritten:  # the file refuses writes now: keep the newest max_pending, try at the next flush
                while results:
                    self._unwritten.append(result_row(results.popleft()))
                excess = len(self._unwritten) - self._max_pending
                if excess > 0:
                    self.dropped += excess
                    log.error("dropped %d oldest unwritten results (more than %d pending)", excess, self._max_pending)
                    del self._unwritten[:excess]
                return

    def _call(self, call: _Call) -> None:
        try:
            if call.transaction:
                self._con.execute("BEGIN")
            value = call.fn(self._con)
            if call.transaction:
                self._con.execute("COMMIT")
        except Exception as exc:
            if call.transaction:
                with contextlib.suppress(duckdb.Error):
                    self._con.execute("ROLLBACK")
            call.done(None, exc)
        else:
            call.done(value, None)

    def _write(self, batch: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        """Append batch; on failure return it for the next try."""
        if self._lost is not None:  # no instance to write to: no attempt (the reopening says why, once)
            self.failing = self._lost
            return batch
        try:
            with self._con.appender("results") as appender:  # one appender: the same flushes as one call
                for start in range(0, len(batch), APPEND_PIECE):
                    appender.append_rows(batch[start : start + APPEND_PIECE])
                    time.sleep(0)  # the GIL to the event loop between pieces (a whole batch held it for milliseconds)
        except duckdb.Error as exc:
            self.failing = last_line(str(exc))
            self.write_failures += 1
            if self._on_write_failed is not None:
                self._on_write_failed()
            log.error("writing %d results to %s failed, will retry: %s", len(batch), self.path, self.failing)
            return batch
        self.failing = None
        self.written += len(batch)
        if self._on_written is not None:
            self._on_written(len(batch))
        return []
