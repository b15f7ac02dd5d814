"""Shell: what the agent process does with the cyclic garbage collector. Process-wide state, so only
`cmd_run` chooses it (GcPolicy) and hands it to the agent; an embedding process or a test gets LeaveGc."""

from __future__ import annotations

import contextlib
import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile. Loading a config builds hundreds of thousands of containers
    that all stay alive; each collection they trigger rescans them for nothing (docs/performance.md)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@functools.cache
def _glibc(name: str, *argtypes: str) -> Callable[..., int] | None:
    """glibc's function of that name, taking the ctypes types named and giving an int, or None (musl, macOS:
    nothing to call)."""
    import ctypes  # here: `report` pauses the collector (gc_paused) and trims nothing

    try:
        fn = getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [getattr(ctypes, t) for t in argtypes], ctypes.c_int
    return fn  # type: ignore[no-any-return]


M_ARENA_MAX = -8  # glibc's mallopt parameter: the most malloc arenas the process may create
ARENAS = 2  # the agent's: one for the event loop, one shared by its other threads (docs/performance.md)


def limit_arenas(arenas: int = ARENAS) -> None:
    """At most `arenas` malloc arenas from now on (as MALLOC_ARENA_MAX would at start). glibc gives each new thread
    an arena of its own, up to 8 a core; what the writer, query and DuckDB threads free stays mapped in theirs,
    and each arena's free pages grow apart from the others'. Threads started before keep the arena they have;
    for the process's life (glibc fixes its limit the first time it applies it, so released() cannot undo it)."""
    if (mallopt := _glibc("mallopt", "c_int", "c_int")) is not None:
        mallopt(M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system. Loading a large config frees many large blocks
    (dict tables, lists, text) at once; glibc keeps them mapped unless asked (docs/performance.md)."""
    if (trim := _glibc("malloc_trim", "c_size_t")) is not None:
        trim(0)


@contextmanager
def _paused_then_trimmed() -> Iterator[None]:
    with gc_paused():
        yield
    # in a thread: trimming a large heap takes a while, and ctypes lets the event loop run meanwhile
    threading.Thread(target=release_free_memory, name="release-free-memory", daemon=True).start()


YOUNG_THRESHOLD = 7000  # net new container objects before a generation-0 collection (Python's default: 700)


class GcPolicy:
    """The agent process's: no collections while loading a config or starting, then start-up's heap frozen
    (exempt from full collections, which would stall the event loop scanning it) and collections rarer."""

    _thresholds: tuple[int, int, int] | None = None

    def paused(self) -> AbstractContextManager[None]:
        """Around loading a config, and around start-up until settled(); the free memory they leave goes
        back to the system after."""
        return _paused_then_trimmed()

    def settled(self) -> None:
        """Start-up is over: what it built lives on. A run's objects are freed by their reference counts (no
        cycles: tests/test_wire.py), so at 700 the collector ran a dozen times a second over objects of runs
        still in flight, promoting them into long collections; at YOUNG_THRESHOLD it runs rarely (docs/performance.md)."""
        gc.freeze()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, *self._thresholds[1:])

    def released(self) -> None:
        """The agent stopped: its heap is ordinary garbage again, collected as before."""
        gc.unfreeze()
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def trim(self) -> None:
        """Now and then while the agent runs (the store's writer thread, every TRIM_EVERY_S): the C heap's free
        pages back to the system. DuckDB's threads free much of what they allocate, and glibc keeps it mapped
        unless asked (docs/performance.md)."""
        release_free_memory()


class LeaveGc(GcPolicy):
    """Leave the collector as the process has it."""

    def paused(self) -> AbstractContextManager[None]:
        """Nothing."""
        return contextlib.nullcontext()

    def settled(self) -> None:
        """Nothing."""

    def released(self) -> None:
        """Nothing."""

    def trim(self) -> None:
        """Nothing."""
