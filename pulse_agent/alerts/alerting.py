"""Feeds results to the alert machine, records its events with their messages, hands messages to the sender."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any

from pulse_agent.alerts import outbox
from pulse_agent.alerts.machine import AlertState, Event, Incident, replay, step
from pulse_agent.alerts.outbox import Message, Record
from pulse_agent.alerts.sender import Sender
from pulse_agent.alerts.template import NOTIFY_TYPE, compose, event_fields
from pulse_agent.clock import Clock
from pulse_agent.config.model import CheckSpec, NotifierSpec
from pulse_agent.result import Result, iso
from pulse_agent.store import ResultStore

log = logging.getLogger("pulse_agent.alerts")

_QUIET = AlertState()


class Alerting:
    """Alert state of every check; the one place results turn into incidents and notifications."""

    def __init__(self, store: ResultStore, sender: Sender, clock: Clock, on_event: Callable[[Event], None] | None = None) -> None:
        self._store = store
        self._on_event = on_event
        self._sender = sender
        self._clock = clock
        self._states: dict[str, AlertState] = {}
        self._notifiers: dict[str, NotifierSpec] = {}
        self._ids = itertools.count(1)

    @classmethod
    async def open(
        cls, store: ResultStore, clock: Clock, sender: Sender, notifiers: Iterable[NotifierSpec], checks: Iterable[CheckSpec],
        on_event: Callable[[Event], None] | None = None,
    ) -> Alerting:  # fmt: skip
        """Alerting with its state restored from the store and undelivered notifications queued again."""
        alerting = cls(store, sender, clock, on_event)
        alerting.set_notifiers(notifiers)
        await alerting.restore(checks)
        return alerting

    @property
    def open_incidents(self) -> int:
        """Checks with an open incident."""
        return sum(1 for s in self._states.values() if s.incident is not None)

    async def close(self) -> None:
        """Stop delivering; undelivered messages wait in the outbox for the next start."""
        await self._sender.close()

    def state(self, check: str) -> AlertState | None:
        """The alert state of check, if it has run."""
        return self._states.get(check)

    async def retire(self, checks: Iterable[str]) -> None:
        """Checks no longer run (removed or disabled): drop their state and close their open
        incidents as of now, without a notification (nobody watches them any more)."""
        states = [(name, self._states.pop(name, None)) for name in checks]
        await self._close({name: s.incident for name, s in states if s is not None and s.incident is not None})

    async def _close(self, incidents: dict[str, Incident]) -> None:
        now = self._clock.time()
        records = [Record(name, now, False, replace(incident, resolved_at=now)) for name, incident in incidents.items()]
        if not records:
            return
        try:
            await self._store.call(lambda con: outbox.record(con, records))
        except Exception as exc:
            log.error("closing the incidents of checks no longer run failed: %s", exc)
        log.info("incidents closed: their checks are no longer run", extra={"checks": sorted(incidents)})

    def set_notifiers(self, notifiers: Iterable[NotifierSpec]) -> None:
        """Address messages with these notifiers from now on."""
        self._notifiers = {n.name: n for n in notifiers}
        self._sender.set_notifiers(self._notifiers.values())

    async def restore(self, checks: Iterable[CheckSpec]) -> None:
        """Take up where the last run stopped: open incidents, degraded flags, streaks, undelivered messages."""
        specs = list(checks)
        window = max((max(c.alert.failure_threshold, c.alert.success_threshold) for c in specs), default=1)
        saved = await self._store.call(lambda con: outbox.load(con, window))
        self._ids = itertools.count(saved.next_id)
        self._sender.add(saved.pending)
        for spec in specs:
            start = AlertState(incident=saved.incidents.get(spec.name), degraded=spec.name in saved.degraded)
            # Runs stored after the last recorded event may have raised one the crash kept from being recorded.
            state, events = replay(start, saved.recent.get(spec.name, ()), spec.alert)
            self._states[spec.name] = state
            if events:
                await self._emit(spec, state, events)
        running = {spec.name for spec in specs}
        await self._close({name: incident for name, incident in saved.incidents.items() if name not in running})
        if saved.incidents or saved.pending:
            still_open = sum(1 for name in saved.incidents if name in running)
            log.info("alert state restored", extra={"open_incidents": still_open, "pending_notifications": len(saved.pending)})

    def observe(self, spec: CheckSpec, result: Result) -> Coroutine[None, None, None] | None:
        """Feed one finished run (runs in maintenance windows are not seen); when it raised events,
        the coroutine that records and sends them, for the caller to await."""
        if result.maintenance:
            return None
        state, events = step(self._states.get(spec.name, _QUIET), result, spec.alert)
        self._states[spec.name] = state
        return self._emit(spec, state, events) if events else None

    async def _emit(self, spec: CheckSpec, state: AlertState, events: Sequence[Event]) -> None:
        now = self._clock.time()
        records = [
            Record(spec.name, e.result.ts, state.degraded, e.incident, tuple(self._messages(spec, e, now)) if e.send else ())
            for e in events
        ]
        try:
            await self._store.call(lambda con: outbox.record(con, records))
        except Exception as exc:  # better sent without a record than not sent
            log.error("recording alert events of %s failed, sending anyway: %s", spec.name, exc)
        for rec, event in zip(records, events, strict=True):
            _log_event(event, len(rec.messages))
            self._sender.add(rec.messages)
            if self._on_event is not None:
                self._on_event(event)

    def _messages(self, spec: CheckSpec, event: Event, now: float) -> Iterable[Message]:
        from pulse_agent.alerts.notify import url_hint  # Apprise: loaded only where notifiers exist

        fields = event_fields(event, spec)
        for name in spec.alert.notify:
            notifier = self._notifiers.get(name)
            if notifier is None:
                continue
            title, body = compose(notifier, fields)
            for url in notifier.urls:
                yield Message(
                    id=next(self._ids),
                    created_at=now,
                    check=spec.name,
                    incident_id=event.incident.id if event.incident is not None else None,
                    event=event.kind,
                    notifier=name,
                    url_key=outbox.url_key(url),
                    url_hint=url_hint(url),
                    kind=NOTIFY_TYPE[event.kind],
                    title=title,
                    body=body,
                    next_attempt_at=now,
                )


def incident_json(event: Event) -> dict[str, Any]:
    """An alert event as the live event feed (GET /api/v1/events) sends it."""
    incident = event.incident
    return {
        "event": event.kind, "check": event.check, "ts": iso(event.result.ts),
        "incident": incident.id if incident else None,
        "opened_at": iso(incident.opened_at) if incident else None,
        "resolved_at": iso(incident.resolved_at) if incident and incident.resolved_at else None,
    }  # fmt: skip


def _log_event(event: Event, messages: int) -> None:
    fields: dict[str, object] = {"check": event.check, "event": event.kind, "messages": messages}
    if event.incident is not None:
        fields.update(incident=event.incident.id, opened_at=iso(event.incident.opened_at))
    log.warning("alert %s", event.kind, extra=fields)
