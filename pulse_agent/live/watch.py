"""Follows the config on disk: any change near it triggers a reload attempt (the agent compares digests).

Watches the parent directory of a config file (or the config directory itself): an editor's
atomic save or a Kubernetes ConfigMap update replaces the file or swaps a `..data` symlink, and a
watch on the file itself goes deaf after the first such replacement. Not recursive: both happen in
that directory itself, and a file config's directory may be a whole checkout (walking and watching
every directory below it cost 1,473 inotify watches and 17,000 stat calls for this repository).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

from pulse_agent.config.files import PATTERNS

log = logging.getLogger("pulse_agent.live")


def relevant(config: Path) -> Callable[[Change, str], bool]:
    """Filter of the events that may change config: its own name (or the config files of a
    directory), and Kubernetes' `..data` / `..<timestamp>` swaps."""
    is_dir = config.is_dir()

    def keep(_: Change, path: str) -> bool:
        p = Path(path)
        if any(part.startswith("..") for part in p.parts[-2:]):
            return True
        if is_dir:
            return not p.name.startswith(".") and any(p.match(pattern) for pattern in PATTERNS)
        return p.name == config.name

    return keep


async def watch_config(
    config: Path, on_change: Callable[[], Awaitable[object]], stop: asyncio.Event, *, settle_ms: int = 50, poll_ms: int = 1000
) -> None:
    """Call on_change after each burst of relevant file events, and every poll_ms without any
    (a change made before the watch was in place, or one a file system does not report, is
    still found), until stop is set; never raises."""
    config = config.absolute()
    where = config if config.is_dir() else config.parent
    while not stop.is_set():
        try:
            async for _ in awatch(
                where, watch_filter=relevant(config), step=settle_ms, debounce=1000, stop_event=stop, recursive=False,
                rust_timeout=poll_ms, yield_on_timeout=True,
            ):  # fmt: skip
                await on_change()
        except Exception as exc:  # e.g. the directory vanished for a moment: keep the agent, retry
            log.warning("watching %s failed, retrying in 1 s: %s", where, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
