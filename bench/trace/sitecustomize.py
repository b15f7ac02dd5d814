"""The soak's tracer, loaded into the agent's process by `bench/soak.py --trace` (this directory first on
PYTHONPATH): each garbage collection of 1 ms or more (and every full one), each writer batch and writer call of
2 ms or more, each maintenance round, each time the event loop woke 4 ms or more late for a 10 ms sleep, and every 30 s the
heap (Python's allocated blocks; glibc's mallinfo2: bytes in use, free, mapped apart),
as JSON lines {k, t, ms, ...} in $PULSE_TRACE_OUT. Benchmark code: nothing of the agent imports it."""

import os
import sys

if os.environ.get("PULSE_TRACE_OUT") and "pulse_agent" in sys.orig_argv and "run" in sys.orig_argv:
    import gc
    import json
    import threading
    import time

    _out = open(os.environ["PULSE_TRACE_OUT"], "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    # reentrant: a collection can start inside the write, and its callback emits a line on the same thread
    _lock = threading.RLock()

    def _emit(kind: str, start: float, seconds: float, **more: object) -> None:
        line = {"k": kind, "t": round(start, 4), "ms": round(seconds * 1000, 2), "thread": threading.current_thread().name, **more}
        text = json.dumps(line) + "\n"  # outside the lock: it allocates, and a collection's line may come first
        with _lock:
            _out.write(text)

    _gc_start: dict[str, float] = {}

    def _on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _gc_start.update(t=time.time(), cpu=time.thread_time())
        elif (seconds := time.time() - _gc_start["t"]) >= 0.001 or info["generation"] == 2:
            cpu = round((time.thread_time() - _gc_start["cpu"]) * 1000, 2)
            _emit(f"gc{info['generation']}", _gc_start["t"], seconds, cpu_ms=cpu, collected=info["collected"])

    gc.callbacks.append(_on_gc)

    def _timed(cls: type, name: str, kind: str, min_ms: float) -> None:
        inner = getattr(cls, name)

        def timed(self: object, *args: object) -> object:
            start, cpu = time.time(), time.thread_time()
            try:
                return inner(self, *args)
            finally:
                if (seconds := time.time() - start) * 1000 >= min_ms:
                    fn = getattr(args[0], "fn", None)
                    fn = getattr(fn, "func", fn)  # a functools.partial: the function it calls
                    what = {"rows": len(args[0])} if kind == "write" else {"fn": getattr(fn, "__qualname__", "?")}  # type: ignore[arg-type]
                    _emit(kind, start, seconds, cpu_ms=round((time.thread_time() - cpu) * 1000, 2), **what)

        setattr(cls, name, timed)

    async def _late_wakeups() -> None:
        import asyncio

        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            if (late := time.perf_counter() - start - 0.01) >= 0.004:
                _emit("loop_late", time.time() - late, late)

    def _heap() -> None:
        import ctypes

        class MallInfo2(ctypes.Structure):
            names = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
            _fields_ = [(f, ctypes.c_size_t) for f in names]

        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
        mallinfo2.restype = MallInfo2
        while True:
            m = mallinfo2()
            mib = {f: round(getattr(m, f) / 2**20, 1) for f in ("arena", "hblkhd", "uordblks", "fordblks")}
            _emit("heap", time.time(), 0.0, py_blocks=sys.getallocatedblocks(), **mib)
            time.sleep(30)

    def _patch() -> None:
        while "pulse_agent.store.maintenance" not in sys.modules:  # imported with the agent, long before it runs
            time.sleep(0.02)
        from pulse_agent.store import db, maintenance

        _timed(db.ResultStore, "_write", "write", 2.0)
        _timed(db.ResultStore, "_call", "call", 2.0)
        rounds, forever = maintenance.Maintenance.round, maintenance.Maintenance.forever

        async def timed_round(self: maintenance.Maintenance) -> dict[str, int]:
            start = time.time()
            try:
                return await rounds(self)
            finally:
                _emit("maintenance", start, time.time() - start)

        async def with_watch(self: maintenance.Maintenance) -> None:
            import asyncio

            asyncio.get_running_loop().create_task(_late_wakeups())
            await forever(self)

        maintenance.Maintenance.round = timed_round  # type: ignore[method-assign]
        maintenance.Maintenance.forever = with_watch  # type: ignore[method-assign]

    threading.Thread(target=_patch, name="soak-trace", daemon=True).start()
    threading.Thread(target=_heap, name="soak-trace-heap", daemon=True).start()
