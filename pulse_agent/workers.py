"""The worker executor: with `agent.workers: N`, N child processes schedule and probe the checks (split by a
stable hash of the name) and send results back over a pipe; the agent stores, alerts and serves them.

One Python process probes on one core (docs/performance.md); workers let one agent use them all
while keeping one database, one /metrics and one alert state. Frames on the pipes are a 4-byte
length and a pickle: the parent sends ("settings", WorkerSettings), ("checks", changed specs, removed
names, soon), ("run", token, spec, due) and ("stop", seconds); a child sends ("results", rows,
skipped, next due times by check name: those set since the last frame, None for never again, the
names of the checks running now) and ("ran", token, row or None: refused) for a run asked by "run".
A reload sends only what changed; specs travel as their class and field values (_Pickler). A child
that dies is started again with the checks it had; runs asked of it meanwhile are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import itertools
import logging
import operator
import pickle
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pulse_agent.backoff import doubling
from pulse_agent.config.model import CheckSpec, LogFormat, LogLevel
from pulse_agent.names import bucket
from pulse_agent.result import Result

log = logging.getLogger("pulse_agent.workers")

_LENGTH = struct.Struct("!I")
_ROW = operator.attrgetter(*(f.name for f in fields(Result)))  # a Result as a plain tuple: 10x cheaper to pickle
FLUSH_EVERY_S = 0.02  # a child sends its results at least this often
FLUSH_ROWS = 512  # or as soon as this many are waiting
CHECKS_PER_FRAME = 5_000  # checks handed to a child per frame at start (see Worker._send_checks)

OnResults = Callable[[list[Result], list[str], dict[str, float | None]], Awaitable[None]]
OnRan = Callable[[Result, CheckSpec], Awaitable[Result]]  # a run asked of a worker: its result, as settled


async def _as_is(result: Result, _: CheckSpec) -> Result:
    return result


SPECS_PER_PICKLE = 1000  # the specs of a "checks" frame travel as pickles of this many (see pack)


def pack(message: tuple[Any, ...]) -> bytes:
    """One frame. A "checks" frame's specs go as several pickles of SPECS_PER_PICKLE each: unpickling
    keeps every spec's argument tuple in the unpickler's memo until the whole pickle is read, and that
    tuple has a CheckSpec's size: one pickle of 50,000 specs left 18 MB of freed tuples in pools the
    specs keep (docs/performance.md); in small pickles the next specs take the freed places."""
    if message[0] == "checks":
        specs = message[1]
        message = ("checks", [_dumps(specs[i : i + SPECS_PER_PICKLE]) for i in range(0, len(specs), SPECS_PER_PICKLE)], *message[2:])
    body = _dumps(message)
    return _LENGTH.pack(len(body)) + body


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


class _Pickler(pickle.Pickler):
    """Slotted dataclasses (every spec) as their class and a tuple of field values: dataclasses' own
    __getstate__ and __setstate__ look fields() up for every object, which made handing 100,000
    checks to the workers take seconds."""

    def reducer_override(self, obj: Any) -> Any:
        values = _values_of(type(obj))
        return NotImplemented if values is None else (type(obj), values(obj))


_VALUES: dict[type, Callable[[Any], tuple[Any, ...]] | None] = {}  # a cache: classes never change


def _values_of(cls: type) -> Callable[[Any], tuple[Any, ...]] | None:
    """obj -> the arguments that build it again, for a slotted dataclass that dataclasses would pickle
    field by field and whose every field is an argument of __init__; else None (pickled as usual)."""
    try:
        return _VALUES[cls]
    except KeyError:
        pass
    values = None
    own = getattr(cls, "__getstate__", None)
    if dataclasses.is_dataclass(cls) and "__slots__" in cls.__dict__ and getattr(own, "__name__", "") == "_dataclass_getstate":
        fields = dataclasses.fields(cls)
        if fields and all(f.init for f in fields):
            get = operator.attrgetter(*(f.name for f in fields))
            values = get if len(fields) > 1 else lambda obj: (get(obj),)
    _VALUES[cls] = values
    return values


async def read_message(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next frame's message; None at the end of the stream."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        message: tuple[Any, ...] = pickle.loads(await reader.readexactly(_LENGTH.unpack(head)[0]))
    except asyncio.IncompleteReadError:
        return None
    if message[0] == "checks":  # see pack
        message = ("checks", [spec for part in message[1] for spec in pickle.loads(part)], *message[2:])
    return message


def rows_of(results: list[Result]) -> list[tuple[Any, ...]]:
    """Results as tuples for a frame."""
    return [_ROW(r) for r in results]


def results_of(rows: list[tuple[Any, ...]], checks: Mapping[str, CheckSpec] | None = None) -> list[Result]:
    """Tuples from a frame as Results; a check in checks gets its spec's own name text, not the frame's copy
    (the agent keeps each check's last Result)."""
    if not checks:
        return [Result(*row) for row in rows]
    return [Result(spec.name, *row[1:]) if (spec := checks.get(row[0])) is not None else Result(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What a child needs besides its checks."""

    max_concurrency: int
    log_format: LogFormat
    log_level: LogLevel
    heartbeat: float = 1.0  # a child sends a frame at least this often, results or not
    hung_after: float = 15.0  # a child silent this long is killed and started again


class Worker:
    """The agent's side of one child process."""

    def __init__(
        self, index: int, settings: WorkerSettings, on_results: OnResults, on_restart: Callable[[], None], on_ran: OnRan = _as_is
    ) -> None:
        self.index = index
        self._settings = settings
        self._on_results = on_results
        self._on_restart = on_restart
        self._on_ran = on_ran
        self._checks: dict[str, CheckSpec] = {}  # what the child runs, by name
        self._running: frozenset[str] = frozenset()  # as the child last said
        self._asked: dict[int, tuple[CheckSpec, asyncio.Future[Result | None]]] = {}  # runs asked, by token
        self._tokens = itertools.count()
        self._process: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task[None] | None = None
        self._stopping = False
        self._failures = 0
        self._heard = 0.0  # loop time of the child's last frame

    async def start(self) -> None:
        """Start the child and hand it its checks."""
        from pulse_agent.config.child import boot

        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", boot("import runpy; runpy.run_module('pulse_agent.workers', run_name='__main__', alter_sys=True)"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=2**26, start_new_session=True,  # Ctrl-C and group signals go to the agent, which stops children in order
        )  # fmt: skip
        self._heard = asyncio.get_running_loop().time()
        self._send(("settings", self._settings))
        self._send_checks(list(self._checks.values()), [], soon=False)
        self._reading = asyncio.create_task(self._read(self._process), name=f"worker-{self.index}")

    def set_checks(self, checks: list[CheckSpec], soon: bool) -> None:
        """Schedule exactly these checks in the child (unchanged ones keep their place in time)."""
        new = {c.name: c for c in checks}
        self.take(new, [c for name, c in new.items() if self._checks.get(name) is not c], soon)

    def take(self, checks: dict[str, CheckSpec], changed: list[CheckSpec], soon: bool) -> None:
        """set_checks given the checks by name and those of them that are not the very ones handed before."""
        removed = [name for name in self._checks if name not in checks]
        self._checks = checks
        if changed or removed:
            self._send_checks(changed, removed, soon=soon)

    def _send_checks(self, changed: list[CheckSpec], removed: list[str], *, soon: bool) -> None:
        """Checks to schedule, in frames of CHECKS_PER_FRAME: the child schedules (and runs) the first while
        the rest are on their way. A reload's (soon) go in one frame: the child spreads their first runs
        over a window as wide as the whole batch needs."""
        step = len(changed) if soon else CHECKS_PER_FRAME
        for start in range(0, max(len(changed), 1), max(step, 1)):
            self._send(("checks", changed[start : start + step], removed if start == 0 else [], soon))

    @property
    def handed(self) -> Mapping[str, CheckSpec]:
        """The checks this worker runs, by name (as set_checks last gave them)."""
        return self._checks

    def running(self, name: str) -> bool:
        """Whether the child runs the check called name now (or has been asked to)."""
        return name in self._running or any(spec.name == name for spec, _ in self._asked.values())

    @property
    def inflight(self) -> int:
        """Runs in progress in the child, as it last said."""
        return len(self._running)

    def run_now(self, spec: CheckSpec, due: float | None) -> asyncio.Future[Result | None]:
        """Ask the child to run spec now; the future gets its result, or None when refused."""
        done: asyncio.Future[Result | None] = asyncio.get_running_loop().create_future()
        if self._stopping or self.pid is None or self.running(spec.name):
            done.set_result(None)
            return done
        token = next(self._tokens)
        self._asked[token] = (spec, done)
        self._send(("run", token, spec, due))
        return done

    def _send(self, message: tuple[Any, ...]) -> None:
        process = self._process
        if process is not None and process.stdin is not None and not process.stdin.is_closing():
            process.stdin.write(pack(message))

    async def _handle(self, message: tuple[Any, ...]) -> None:
        if message[0] == "ran":
            spec, done = self._asked.pop(message[1])
            result = None if message[2] is None else await self._on_ran(Result(*message[2]), spec)
            if not done.done():
                done.set_result(result)
            return
        await self._on_results(results_of(message[1], self._checks), message[2], message[3])
        self._running = frozenset(message[4])

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while (message := await read_message(process.stdout)) is not None:
            self._failures = 0
            self._heard = asyncio.get_running_loop().time()
            try:
                await self._handle(message)
            except Exception:  # a bug in handling one batch must not stop this worker's results
                log.exception("handling results of probe worker %d failed", self.index)
        self._running = frozenset()
        for _, done in self._asked.values():  # the child is gone: what it was asked will not come
            if not done.done():
                done.set_result(None)
        self._asked.clear()
        why = f"exited with {await process.wait()}"
        while not self._stopping:
            self._failures += 1
            wait = doubling(1.0, 30.0, self._failures)
            log.error("probe worker %d %s; starting it again in %.0f s", self.index, why, wait)
            self._on_restart()
            await asyncio.sleep(wait)
            if self._stopping:
                return
            try:
                await self.start()
                return
            except OSError as exc:  # e.g. no memory to fork: keep trying, slower
                why = f"could not start ({exc})"

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.returncode is None else None

    def check_alive(self, now: float) -> None:
        """Kill the child if it has been silent past hung_after (a hung loop, SIGSTOP); it is started again."""
        process = self._process
        silent = now - self._heard
        if self._stopping or process is None or process.returncode is not None or silent < self._settings.hung_after:
            return
        log.error("probe worker %d sent nothing for %.0f s; killing it", self.index, silent)
        process.kill()

    async def stop(self, budget: float) -> None:
        """Let the child finish its in-flight runs (up to budget seconds) and deliver their results."""
        self._stopping = True
        process = self._process
        if process is None or process.returncode is not None:  # never started, or waiting to restart
            if self._reading is not None:
                self._reading.cancel()
            return
        self._send(("stop", budget))
        if process.stdin is not None:
            process.stdin.close()
        try:
            if self._reading is not None:
                await asyncio.wait_for(asyncio.shield(self._reading), budget + 5.0)
        except TimeoutError:
            process.kill()
        await process.wait()


class WorkerExecutor:
    """The executor of N workers; each check goes to the one its name hashes to, and so do its run-now and
    `running` questions."""

    def __init__(
        self, count: int, settings: WorkerSettings, on_results: OnResults, on_restart: Callable[[], None], on_ran: OnRan = _as_is
    ) -> None:
        self.workers = [Worker(i, settings, on_results, on_restart, on_ran) for i in range(count)]
        self._settings = settings
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def inflight(self) -> int:
        """Runs in progress in the children, as they last said."""
        return sum(w.inflight for w in self.workers)

    def _owner(self, name: str) -> Worker:
        # The worker set_checks gave it: it keeps each check where it is, which is where the name hashes while
        # the number of workers stays what it was at start (it never changes during the executor's life).
        return self.workers[worker_of(name, len(self.workers))]

    async def run_now(self, spec: CheckSpec, due: float | None = None) -> asyncio.Future[Result | None]:
        """Ask the worker that owns spec to run it now (refused while a run of it is in progress there)."""
        return self._owner(spec.name).run_now(spec, due)

    def running(self, name: str) -> bool:
        """Asked of the worker that owns the check."""
        return self._owner(name).running(name)

    async def start(self) -> None:
        """Start every child, and the watchdog that restarts a hung one."""
        await asyncio.gather(*(w.start() for w in self.workers))
        self._watchdog = asyncio.create_task(self._watch(), name="worker-watchdog")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._settings.heartbeat)
            for worker in self.workers:
                worker.check_alive(loop.time())

    def set_checks(self, checks: Sequence[CheckSpec], *, soon: bool) -> None:
        """Split checks across the workers and hand each its share."""
        shares: list[dict[str, CheckSpec]] = [{} for _ in self.workers]
        changed: list[list[CheckSpec]] = [[] for _ in self.workers]
        # one pass: a check a worker has goes back to it (its name is not hashed again), and whether it is
        # the very spec it has is known on the way (a reload of 100,000 checks)
        handed = [(worker.handed, share, fresh) for worker, share, fresh in zip(self.workers, shares, changed, strict=True)]
        for spec in checks:
            name = spec.name
            for owner in handed:
                was = owner[0].get(name)
                if was is not None:
                    break
            else:  # a new check: the worker its name hashes to
                k = worker_of(name, len(self.workers))
                owner = (self.workers[k].handed, shares[k], changed[k])
            owner[1][name] = spec
            if was is not spec:
                owner[2].append(spec)
        for worker, share, fresh in zip(self.workers, shares, changed, strict=True):
            worker.take(share, fresh, soon)

    async def stop(self, budget: float) -> int:
        """Stop every child after its in-flight runs (a child cancels what outlasts budget itself)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        await asyncio.gather(*(w.stop(budget) for w in self.workers))
        return 0


def worker_of(name: str, count: int) -> int:
    """The worker (0-based) that runs the check called name: stable across restarts and reloads."""
    return bucket(name, count, "pulse-worker")


async def child() -> None:
    """A worker process: checks in on stdin, results out on stdout, until told to stop."""
    from pulse_agent.clock import SystemClock
    from pulse_agent.compact import CompactCheck, compact
    from pulse_agent.logs import setup_logging
    from pulse_agent.probe.kinds import Probes
    from pulse_agent.scheduler import Scheduler

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout)
    out = asyncio.StreamWriter(transport, protocol, None, loop)
    first = await read_message(reader)
    if first is None or first[0] != "settings":
        return
    settings: WorkerSettings = first[1]
    setup_logging(settings.log_format, settings.log_level)
    prober = Probes()
    outbox: list[Result] = []
    skipped: list[str] = []
    dues: dict[str, float | None] = {}  # next due times set since the last frame (the agent exports them)
    full = asyncio.Event()

    def probe(check: CompactCheck, due: float) -> Awaitable[Result]:
        return prober.run(check.spec(), due)  # a spec for the run only: a worker keeps its checks compact

    async def run(check: CompactCheck, due: float) -> Result:
        result = await probe(check, due)
        outbox.append(result)
        if len(outbox) >= FLUSH_ROWS:
            full.set()
        return result

    sent = loop.time()
    told: frozenset[str] = frozenset()  # the running checks as last sent

    def flush() -> None:
        nonlocal sent, told
        running = scheduler.running_checks()
        if outbox or skipped or dues or running != told or loop.time() - sent >= settings.heartbeat:  # empty: "alive"
            out.write(pack(("results", rows_of(outbox), list(skipped), dict(dues), sorted(running))))
            outbox.clear()
            skipped.clear()
            dues.clear()
            sent, told = loop.time(), running

    async def run_asked(token: int, spec: CheckSpec, due: float | None) -> None:
        """A run the agent asked for: its result goes back in its own frame, not with the scheduled ones."""
        task = await scheduler.run_now(compact([spec])[0], time.time() if due is None else due, probe)
        result = await task if task is not None else None
        out.write(pack(("ran", token, _ROW(result) if isinstance(result, Result) else None)))

    async def flushing() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(full.wait(), FLUSH_EVERY_S)
            full.clear()
            flush()
            await out.drain()

    scheduler = Scheduler(
        run, clock=SystemClock(), max_concurrency=settings.max_concurrency, on_skip=skipped.append, on_due=dues.__setitem__
    )
    running = asyncio.create_task(scheduler.run())
    sending = asyncio.create_task(flushing())
    budget = 5.0
    asked: set[asyncio.Task[None]] = set()
    while (message := await read_message(reader)) is not None:
        if message[0] == "run":
            task = asyncio.create_task(run_asked(*message[1:]))
            asked.add(task)
            task.add_done_callback(asked.discard)
        elif message[0] == "checks":
            _, changed, removed, soon = message
            prober.forget()
            scheduler.update(compact(changed), removed, soon=soon)
        elif message[0] == "stop":
            budget = message[1]
            break
    scheduler.stop()
    await running
    await scheduler.drain(budget)
    await asyncio.gather(*asked, return_exceptions=True)
    sending.cancel()
    flush()
    await out.drain()
    await prober.close()
    out.close()


if __name__ == "__main__":
    from pulse_agent.loop import event_loop_factory

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(child())
