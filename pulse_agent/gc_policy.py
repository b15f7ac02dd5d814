"""Shell: what the agent process does with the cyclic garbage collector. Process-wide state, so only
`cmd_run` chooses it (GcPolicy) and hands it to the agent; an embedding process or a test gets LeaveGc."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
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


class GcPolicy:
    """The agent process's: no collections while loading a config or starting, then start-up's heap frozen
    (exempt from full collections, which would stall the event loop scanning it)."""

    def paused(self) -> AbstractContextManager[None]:
        """Around loading a config, and around start-up until settled()."""
        return gc_paused()

    def settled(self) -> None:
        """Start-up is over: what it built lives on."""
        gc.freeze()

    def released(self) -> None:
        """The agent stopped: its heap is ordinary garbage again."""
        gc.unfreeze()


class LeaveGc(GcPolicy):
    """Leave the collector as the process has it."""

    def paused(self) -> AbstractContextManager[None]:
        """Nothing."""
        return contextlib.nullcontext()

    def settled(self) -> None:
        """Nothing."""

    def released(self) -> None:
        """Nothing."""
