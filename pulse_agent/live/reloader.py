"""Reloads: the files' digest, loading, refusing a broken config or diffing and applying a good one, the
config_versions record; one at a time, with the memo that makes a reload redo only what an edit changed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager

from pulse_agent.clock import Clock
from pulse_agent.config import ConfigInvalid, Memo, load_config
from pulse_agent.config.files import Signature, Source, digest, read_sources, settled, stat_signature
from pulse_agent.config.model import AgentSpec
from pulse_agent.live.diff import RESTART_SETTINGS, ConfigDiff, diff
from pulse_agent.live.reload import Reload, record_version
from pulse_agent.shard import Shard, owned
from pulse_agent.store import ResultStore
from pulse_agent.validators import SHELL_VALIDATORS
from pulse_agent.web.metrics import Metrics

log = logging.getLogger("pulse_agent.agent")

Apply = Callable[[AgentSpec, ConfigDiff], Awaitable[None]]
# The watch's poll reads the files at least this often even while stat says they did not change: a file
# system whose clock differs from ours, or whose attributes a client caches (NFS), may show an edit late.
READ_ANYWAY_NS = 10_000_000_000


def disk_digest(config: str) -> str:
    """Digest of the config as it is on disk now; "unreadable" while it cannot be read (reload says why)."""
    return on_disk(config)[0]


def on_disk(config: str) -> tuple[str, list[Source] | None]:
    """The config's files as they are on disk now and their digest; ("unreadable", None) while they cannot be read."""
    try:
        sources = read_sources(config)
    except (ConfigInvalid, OSError, ValueError):
        return "unreadable", None
    return digest(sources), sources


class Reloader:
    """Loads the config at `config` again when asked, and hands a good one to `apply` with its diff."""

    def __init__(
        self,
        config: str | None,
        shard: Shard,
        running: Callable[[], AgentSpec],
        apply: Apply,
        metrics: Metrics,
        clock: Clock,
        memo: Memo | None = None,
        loading: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self.config = config
        self._shard = shard
        self._running = running
        self._apply = apply
        self._metrics = metrics
        self._clock = clock
        self._memo = memo or Memo()
        self._loading = loading  # around each load: the agent process pauses the collector (gc_policy.py)
        self._lock = asyncio.Lock()
        self._refused = ""  # digest of a refused edit: reported once, not at every file event
        self._seen: tuple[Signature, str, int] | None = None  # the files' settled signature, their digest, when read
        self.store: ResultStore | None = None  # where versions are recorded, once open

    async def reload(self, reason: str) -> Reload:
        """Load the config again and apply what changed; a config with errors changes nothing."""
        async with self._lock:
            return await self._reload(reason)

    async def reload_if_changed(self) -> Reload | None:
        """Reload when the files' digest differs from the running (or last refused) config's."""
        if self.config is None:
            return None
        (now, sources), running = await asyncio.to_thread(self._on_disk, self.config), self._running().digest
        if now == running and self._refused:
            async with self._lock:  # a refused edit was undone: the files are the running config again
                if self._refused:
                    self._refused = ""
                    self._metrics.config_restored()
                    log.info("config on disk is the running config again", extra={"digest": now})
            return None
        if now in (running, self._refused):
            return None
        async with self._lock:
            # the files as just read, unless another reload ran while this one waited: then as they are now
            return await self._reload("file", sources if self._running().digest == running else None)

    def _on_disk(self, config: str) -> tuple[str, list[Source] | None]:
        """on_disk, or the digest alone while stat says the files are as when it was last taken (the watch's
        poll every second would otherwise read and hash a large config each time)."""
        signature, at = stat_signature(config), int(self._clock.time() * 1e9)  # the wall clock of the files' times
        seen = self._seen
        if signature is not None and seen is not None and seen[0] == signature and at - seen[2] < READ_ANYWAY_NS:
            return seen[1], None
        now, sources = on_disk(config)
        self._seen = (signature, now, at) if signature is not None and sources is not None and settled(signature, at) else None
        return now, sources

    async def _reload(self, reason: str, sources: list[Source] | None = None) -> Reload:
        old = self._running()
        if self.config is None:
            return Reload(False, reason, old.digest, errors=("the agent was not started from a config file",))
        loading = time.perf_counter()
        try:
            with self._loading():
                loaded = await asyncio.to_thread(load_config, self.config, None, self._memo, validators=SHELL_VALIDATORS, sources=sources)
            new = owned(loaded, self._shard)
        except ConfigInvalid as exc:
            return await self._refuse(reason, tuple(str(e) for e in exc.errors))
        except Exception as exc:  # all or nothing: whatever went wrong, the running config stays
            log.exception("loading the config failed")
            return await self._refuse(reason, (f"{self.config}: cannot be loaded ({type(exc).__name__}: {str(exc)[:200]})",))
        started = time.perf_counter()
        try:
            change = diff(old, new)
            diffed = time.perf_counter()
            await self._apply(new, change)
        except Exception as exc:
            log.exception("applying the config failed; going back to the running one")
            await self._apply(old, diff(new, old))
            return await self._refuse(reason, (f"{self.config}: cannot be applied ({type(exc).__name__}: {str(exc)[:200]})",))
        load_ms, diff_ms = round((started - loading) * 1000, 1), round((diffed - started) * 1000, 1)
        apply_ms = round((time.perf_counter() - diffed) * 1000, 1)
        self._refused = ""
        self._metrics.reloaded(True, self._clock.time())
        await self.record(new, change, reason)
        notifiers = change.notifiers
        log.info("config reloaded", extra={
            "reason": reason, "digest": new.digest, "load_ms": load_ms, "diff_ms": diff_ms, "apply_ms": apply_ms,
            **change.checks.counts(),
            "notifiers_changed": len(notifiers.added) + len(notifiers.removed) + len(notifiers.changed)})  # fmt: skip
        if restart := [s for s in change.settings if s in RESTART_SETTINGS]:
            log.warning("these agent settings take effect at the next restart", extra={"settings": restart})
        return Reload(True, reason, new.digest, change)

    async def _refuse(self, reason: str, errors: tuple[str, ...]) -> Reload:
        """A refused reload: counted, logged once per content, the running config untouched."""
        running = self._running().digest
        self._metrics.reloaded(False, self._clock.time())
        log.error("config reload refused; still running the last good config", extra={
            "reason": reason, "running": running, "errors": list(errors)})  # fmt: skip
        self._refused = await asyncio.to_thread(disk_digest, self.config or "")
        return Reload(False, reason, running, errors=errors)

    async def record(self, spec: AgentSpec, change: ConfigDiff, reason: str) -> None:
        """Store one applied config version (start-up's too); a failure loses only the record."""
        if self.store is None:
            return
        at = self._clock.time()
        try:
            await self.store.call(lambda con: record_version(con, spec, change, reason, at))
        except Exception as exc:  # the reload stands; only its record is missing
            log.error("recording config version %s failed: %s", spec.digest, exc)
