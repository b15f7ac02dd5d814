"""Which event loop the agent and its probe workers run on."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where installed (PULSE_EVENT_LOOP=asyncio opts out), else asyncio's default."""
    if os.environ.get("PULSE_EVENT_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop
        except ImportError:
            return None
        return uvloop.new_event_loop
    return None
