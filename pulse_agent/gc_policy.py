"""Shell: the agent's use of the cyclic garbage collector (process-wide state, so only the shell touches it)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
