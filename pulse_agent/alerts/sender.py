"""Delivers outbox messages: one lane per URL, in order, re-sent with backoff until delivered or dead.

A lane waits on its own URL only, so a slow or broken notifier delays nobody else, and never a
check. Each outcome is written to the outbox before the lane moves on; a message sent but not yet
marked when the process dies is sent again on restart (at least once).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

from pulse_agent.alerts import outbox
from pulse_agent.alerts.outbox import Message
from pulse_agent.backoff import doubling
from pulse_agent.clock import Clock, sleep_until
from pulse_agent.config.model import NotifierSpec
from pulse_agent.store import ResultStore

log = logging.getLogger("pulse_agent.alerts")

# (url, title, body, notify type, timeout) -> None when delivered, else the reason
Deliver = Callable[[str, str, str, str, float], Awaitable[str | None]]
# Who a delivery under way is for (notifier, check, event, url), for lines logged while it runs.
DELIVERY: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("pulse_delivery", default={})  # noqa: B039


async def apprise_deliver(url: str, title: str, body: str, kind: str, timeout: float) -> str | None:
    """Deliver through Apprise, imported on first use: agents without notifiers never load it."""
    from pulse_agent.alerts.notify import deliver

    return await deliver(url, title, body, kind, timeout)


# (notifier, result) with result "delivered", "failed" (will retry) or "dead"
Outcome = Callable[[str, str], None]


class Sender:
    """Sends queued messages through `deliver` (Apprise in the agent) and records every outcome."""

    def __init__(self, store: ResultStore, clock: Clock, deliver: Deliver, on_outcome: Outcome | None = None) -> None:
        self._store = store
        self._clock = clock
        self._deliver = deliver
        self._on_outcome = on_outcome
        self._notifiers: dict[str, NotifierSpec] = {}
        self._lanes: dict[tuple[str, str], deque[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: set[asyncio.Task[None]] = set()  # lanes in a delivery attempt, not waiting for one
        self._closing = False

    @property
    def depth(self) -> int:
        """Messages waiting to be delivered."""
        return sum(len(q) for q in self._lanes.values())

    def set_notifiers(self, notifiers: Iterable[NotifierSpec]) -> None:
        """Deliver with these notifiers' URLs and settings from now on."""
        self._notifiers = {n.name: n for n in notifiers}

    def add(self, messages: Iterable[Message]) -> None:
        """Queue messages behind those already waiting for the same URL."""
        for m in messages:
            key = (m.notifier, m.url_key)
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = deque()
                task = asyncio.create_task(self._run_lane(key, lane), name=f"notify:{m.notifier}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            lane.append(m)

    async def close(self, grace: float = 5.0) -> None:
        """Stop sending: attempts under way get `grace` seconds to finish and be recorded; what is
        still queued stays in the outbox for the next start."""
        self._closing = True
        for task in self._tasks - self._sending:
            task.cancel()
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def _run_lane(self, key: tuple[str, str], lane: deque[Message]) -> None:
        try:
            while lane and not self._closing:
                retry = await self._attempt(lane[0])
                if retry is None:
                    lane.popleft()
                else:
                    lane[0] = retry
        finally:
            if self._lanes.get(key) is lane and not lane:
                del self._lanes[key]

    async def _attempt(self, m: Message) -> Message | None:
        """One delivery attempt when due; the message to try again, or None when delivered or dead."""
        if m.next_attempt_at > self._clock.time():
            await sleep_until(self._clock, m.next_attempt_at)
        task = asyncio.current_task()
        assert task is not None
        self._sending.add(task)
        try:
            return await self._send(m)
        finally:
            self._sending.discard(task)

    async def _send(self, m: Message) -> Message | None:
        notifier = self._notifiers.get(m.notifier)
        url = _url(notifier, m.url_key)
        fields = {"notifier": m.notifier, "url": m.url_hint, "check": m.check, "event": m.event, "attempt": m.attempts + 1}
        if notifier is None or url is None:
            error: str | None = f"notifier {m.notifier!r} or this URL of it is no longer configured"
        else:
            DELIVERY.set(fields)
            error = await self._deliver(url, m.title, m.body, m.kind, notifier.timeout)
        now = self._clock.time()
        if error is None:
            await self._write(outbox.mark_delivered, m, now)
            self._count(m.notifier, "delivered")
            log.info("notification delivered", extra=fields)
            return None
        attempts = m.attempts + 1
        give_up = notifier is None or url is None or now - m.created_at >= notifier.give_up_after
        if give_up:
            await self._write(outbox.mark_failed, m, error, None, now)
            self._count(m.notifier, "dead")
            log.error("notification moved to the dead letters", extra={**fields, "error": error})
            return None
        assert notifier is not None
        next_at = now + doubling(notifier.backoff, notifier.max_backoff, attempts)
        await self._write(outbox.mark_failed, m, error, next_at, now)
        self._count(m.notifier, "failed")
        log.warning("notification failed, will retry", extra={**fields, "error": error, "retry_in_s": round(next_at - now, 3)})
        return replace(m, attempts=attempts, next_attempt_at=next_at)

    async def _write(self, fn: Callable[..., None], *args: object) -> None:
        try:
            await self._store.call(lambda con: fn(con, *args))
        except Exception as exc:  # the message goes on in memory; only its record is behind
            log.error("recording a notification outcome failed: %s", exc)

    def _count(self, notifier: str, result: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(notifier, result)


def _url(notifier: NotifierSpec | None, key: str) -> str | None:
    if notifier is None:
        return None
    return next((u for u in notifier.urls if outbox.url_key(u) == key), None)
