"""Storage upkeep while the agent runs: complete hours rolled up, old raw results and rollups deleted."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pulse_agent.clock import Clock, sleep_until
from pulse_agent.config.model import AgentSettings
from pulse_agent.store import retention
from pulse_agent.store.db import ResultStore

log = logging.getLogger("pulse_agent.agent")

MAINTAIN_EVERY_S = 600.0  # roll up hours and apply retention this often


class Maintenance:
    """Rounds of upkeep on one store under the running config's retention settings."""

    def __init__(self, store: ResultStore, clock: Clock, settings: Callable[[], AgentSettings]) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings

    async def round(self) -> dict[str, int]:
        """Roll up complete hours, then delete raw results past agent.retention (in batches, so writes
        go on between them) and hourly rows past agent.rollup; what was done."""
        store, now, settings = self._store, self._clock.time(), self._settings()
        rolled = await store.call(lambda con: retention.roll_up(con, now))
        backfilled = 0  # hours rolled up by a release without sketches: before retention deletes their raw rows
        while n := await store.call(retention.backfill_sketches):
            backfilled += n
        deleted = 0
        while True:
            n = await store.call(lambda con: retention.delete_raw_batch(con, now - settings.retention))
            deleted += n
            if n < retention.BATCH:
                break
        expired = await store.call(lambda con: retention.delete_old_rollups(con, now - settings.rollup))
        prefixed = 0  # after the deletes: a period cut in two by them is summed again at once
        while n := await store.call(retention.fill_prefixes):
            prefixed += n
        await store.checkpoint()  # the round's deletes and the newest results leave memory for the file
        done = {"hours_rolled_up": rolled, "sketches_backfilled": backfilled, "prefixes_filled": prefixed,
                "results_deleted": deleted, "hourly_rows_deleted": expired}  # fmt: skip
        if any(done.values()):
            log.info("storage maintained", extra=done)
        return done

    async def forever(self) -> None:
        """A round now and every MAINTAIN_EVERY_S; a failed round is logged and the next one retries."""
        while True:
            try:
                await self.round()
            except Exception as exc:  # a full disk must not stop the checks
                log.error("storage maintenance failed: %s", exc)
            await sleep_until(self._clock, self._clock.time() + MAINTAIN_EVERY_S)
