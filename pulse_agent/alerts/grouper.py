"""Holds the messages of notifiers with group_by until their group is due, then queues one message
per group and URL. The members stay in the outbox until the grouped message is recorded in the
same transaction that marks them, so a restart neither loses nor repeats one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from pulse_agent.alerts import outbox
from pulse_agent.alerts.grouping import GROUP_EVENT, compose_group, group_due
from pulse_agent.alerts.outbox import Message
from pulse_agent.alerts.sender import Sender
from pulse_agent.clock import Clock, sleep_until
from pulse_agent.config.model import NotifierSpec
from pulse_agent.store import ResultStore

log = logging.getLogger("pulse_agent.alerts")

GroupId = tuple[str, str, str]  # notifier, url key, group key


class Grouper:
    """One timer per waiting group; a due group becomes one outbox message for the sender."""

    def __init__(self, store: ResultStore, clock: Clock, sender: Sender, next_id: Callable[[], int]) -> None:
        self._store, self._clock, self._sender, self._next_id = store, clock, sender, next_id
        self._notifiers: dict[str, NotifierSpec] = {}
        self._waiting: dict[GroupId, list[Message]] = {}
        self._last_sent: dict[GroupId, float] = {}
        self._timers: dict[GroupId, asyncio.Task[None]] = {}
        self._closing = False

    @property
    def depth(self) -> int:
        """Messages waiting for their group."""
        return sum(len(m) for m in self._waiting.values())

    def set_notifiers(self, notifiers: Iterable[NotifierSpec]) -> None:
        """Group with these notifiers' settings from now on."""
        self._notifiers = {n.name: n for n in notifiers}

    def groups(self, notifier: str) -> bool:
        """Whether messages of notifier wait for their group."""
        spec = self._notifiers.get(notifier)
        return spec is not None and bool(spec.group_by)

    def add(self, messages: Iterable[Message]) -> None:
        """Let messages (with a group_key) wait for their group's next message."""
        for m in messages:
            gid = (m.notifier, m.url_key, m.group_key or "")
            self._waiting.setdefault(gid, []).append(m)
            if gid not in self._timers:
                task = asyncio.create_task(self._send_when_due(gid), name=f"group:{m.notifier}")
                self._timers[gid] = task

    async def close(self) -> None:
        """Stop: what waits stays in the outbox for the next start."""
        self._closing = True
        for task in self._timers.values():
            task.cancel()
        if self._timers:
            await asyncio.wait(list(self._timers.values()))

    async def _send_when_due(self, gid: GroupId) -> None:
        try:
            notifier = self._notifiers.get(gid[0])
            members = self._waiting[gid]
            if notifier is not None:
                await sleep_until(self._clock, group_due(min(m.created_at for m in members), self._last_sent.get(gid), notifier))
            members = self._waiting.pop(gid)
            now = self._clock.time()
            self._last_sent[gid] = now
            title, body, kind = compose_group(gid[2], [(m.event, m.line or m.title) for m in members])
            first = members[0]
            combined = Message(self._next_id(), now, gid[2], None, GROUP_EVENT, first.notifier, first.url_key, first.url_hint, kind, title,
                               body, next_attempt_at=now)  # fmt: skip
            ids = [m.id for m in members]
            try:
                await self._store.call(lambda con: outbox.record_group(con, combined, ids))
            except Exception as exc:  # better sent without a record than not sent
                log.error("recording a grouped notification failed, sending anyway: %s", exc)
            log.info("notifications grouped", extra={"notifier": first.notifier, "group": gid[2], "messages": len(members)})
            self._sender.add([combined])
        finally:
            del self._timers[gid]
            if gid in self._waiting and not self._closing:  # more arrived while this one was recorded
                self._timers[gid] = asyncio.create_task(self._send_when_due(gid), name=f"group:{gid[0]}")
