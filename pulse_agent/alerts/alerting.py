"""Feeds results to the alert machine, records its events with their messages, hands messages to the sender."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from typing import Any

import duckdb

from pulse_agent.alerts import humans, outbox
from pulse_agent.alerts.condition import Change, title
from pulse_agent.alerts.grouper import Grouper
from pulse_agent.alerts.grouping import group_key
from pulse_agent.alerts.machine import AlertState, Event, Incident, replay, step
from pulse_agent.alerts.outbox import Message, Record
from pulse_agent.alerts.sender import Sender
from pulse_agent.alerts.silence import Silence, new_silence, silencing
from pulse_agent.alerts.template import NOTIFY_TYPE, compose, event_fields, event_line
from pulse_agent.clock import Clock, Timer
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
        self._grouper = Grouper(store, clock, sender, lambda: next(self._ids))
        self._silences: list[Silence] = []
        self._batch: list[Record] = []  # records of events waiting for the write under way
        self._batch_done: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._held_for: dict[str, set[str]] = {}  # check -> dependents whose messages were held while it was down
        self._last: dict[str, tuple[CheckSpec, Result]] = {}  # checks whose failure is held: their spec and last run
        self._timers: dict[str, Timer] = {}  # silence id -> the release at its end
        self._releases: set[asyncio.Task[None]] = set()

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

    @property
    def queued(self) -> int:
        """Messages waiting to be delivered, or waiting for their group."""
        return self._sender.depth + self._grouper.depth

    async def close(self) -> None:
        """Stop delivering; undelivered messages wait in the outbox for the next start."""
        for timer in self._timers.values():
            timer.cancel()
        if self._releases:
            await asyncio.wait(list(self._releases))
        await self._grouper.close()
        await self._sender.close()

    def state(self, check: str) -> AlertState | None:
        """The alert state of check, if it has run."""
        return self._states.get(check)

    async def retire(self, checks: Iterable[str]) -> None:
        """Checks no longer run (removed or disabled): drop their state and close their open
        incidents as of now, without a notification (nobody watches them any more)."""
        states = [(name, self._states.pop(name, None)) for name in checks]
        for name, _ in states:
            self._last.pop(name, None)
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

    def silences(self) -> list[Silence]:
        """The silences known now: pending, active, and those expired since the agent started."""
        return list(self._silences)

    async def add_silence(self, body: dict[str, object]) -> Silence:
        """A new silence from an API body (ValueError saying what is wrong), stored before it counts."""
        silence = new_silence(body, uuid.uuid4().hex[:12], self._clock.time())
        await self._store.call(lambda con: humans.save_silence(con, silence))
        self._silences.append(silence)
        self._release_at(silence)
        log.info("silence added", extra={**silence.to_json(self._clock.time()), "silence": silence.id})
        return silence

    async def expire_silence(self, silence_id: str) -> Silence | None:
        """End a silence now; None when there is no such silence."""
        now = self._clock.time()
        found = next((i for i, s in enumerate(self._silences) if s.id == silence_id), None)
        if found is None:
            return None
        silence = self._silences[found]
        ended = replace(silence, ends_at=min(silence.ends_at, now), starts_at=min(silence.starts_at, now))
        await self._store.call(lambda con: humans.save_silence(con, ended))
        self._silences[found] = ended
        self._release_at(ended)
        log.info("silence expired", extra={"silence": silence_id})
        return ended

    async def ack(self, incident_id: str, by: str | None) -> Incident | None:
        """Acknowledge an open incident: no more reminders until it resolves. None when no open incident has that id."""
        name = next((n for n, s in self._states.items() if s.incident is not None and s.incident.id == incident_id), None)
        if name is None:
            return None
        state, now = self._states[name], self._clock.time()
        assert state.incident is not None  # found by its open incident above
        incident = replace(state.incident, acked_at=now, acked_by=by)
        self._states[name] = replace(state, incident=incident)
        await self._store.call(lambda con: humans.save_ack(con, incident_id, now, by))
        log.info("incident acknowledged", extra={"incident": incident_id, "check": name, "by": by})
        return incident

    def set_notifiers(self, notifiers: Iterable[NotifierSpec]) -> None:
        """Address messages with these notifiers from now on."""
        self._notifiers = {n.name: n for n in notifiers}
        self._sender.set_notifiers(self._notifiers.values())
        self._grouper.set_notifiers(self._notifiers.values())

    async def restore(self, checks: Iterable[CheckSpec]) -> None:
        """Take up where the last run stopped: open incidents, degraded flags, streaks, undelivered messages."""
        specs = list(checks)
        window = max((max(c.alert.failure_threshold, c.alert.success_threshold) for c in specs), default=1)
        saved = await self._store.call(lambda con: outbox.load(con, window))
        now = self._clock.time()
        self._silences = await self._store.call(lambda con: humans.load_silences(con, now))
        for silence in self._silences:
            self._release_at(silence)
        self._ids = itertools.count(saved.next_id)
        self._dispatch(saved.pending)
        for spec in specs:
            incident, degraded = saved.incidents.get(spec.name), spec.name in saved.degraded
            # most checks have nothing to restore: they share one state (frozen) instead of an object each
            start = AlertState(incident=incident, degraded=degraded) if incident is not None or degraded else _QUIET
            # Runs stored after the last recorded event may have raised one the crash kept from being recorded.
            state, events = replay(start, saved.recent.get(spec.name, ()), spec.alert)
            self._states[spec.name] = state
            if state.incident is not None and state.incident.held is not None and saved.recent.get(spec.name):
                self._last[spec.name] = (spec, saved.recent[spec.name][-1])
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
        if events:
            return self._emit(spec, state, events)
        return self._late(spec, result)

    def _late(self, spec: CheckSpec, result: Result) -> Coroutine[None, None, None] | None:
        """When what held spec's failure back (a silence, a dependency) is over and it is still down:
        the coroutine that sends the failure now, marked late. Else remember the run for later."""
        state = self._states.get(spec.name)
        if state is None or state.incident is None or state.incident.held is None:
            self._last.pop(spec.name, None)
            return None
        if self.holding(spec, self._clock.time()) is not None:
            self._last[spec.name] = (spec, result)
            return None
        held, incident = state.incident.held, replace(state.incident, held=None)
        self._states[spec.name] = state = replace(state, incident=incident)
        self._last.pop(spec.name, None)
        return self._emit(spec, state, [Event("failure", spec.name, result, incident)], late=held)

    def _release_at(self, silence: Silence) -> None:
        """At the silence's end, send the failures it held back (not at each check's next run,
        which may be an hour away)."""
        old = self._timers.pop(silence.id, None)
        if old is not None:
            old.cancel()
        if silence.ends_at > self._clock.time():
            self._timers[silence.id] = self._clock.call_at(silence.ends_at, lambda: self._start_release(silence.id))
        else:
            self._start_release(silence.id)

    def _start_release(self, silence_id: str | None) -> None:
        if silence_id is not None:
            self._timers.pop(silence_id, None)
        task = asyncio.get_running_loop().create_task(self._release(), name="alert-release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release(self) -> None:
        """Send, marked late, every held failure whose check nothing holds any more."""
        sends = [c for spec, result in list(self._last.values()) if (c := self._late(spec, result)) is not None]
        for send in sends:
            try:
                await send
            except Exception as exc:  # a timer's task: nobody else would see it
                log.error("sending a held-back failure failed: %s", exc)

    def holding(self, spec: CheckSpec, now: float) -> str | None:
        """Why spec's notifications are recorded but not sent at now (a silence, a dependency that is down), or None."""
        silence = silencing(self._silences, spec.name, dict(spec.labels), now)
        if silence is not None:
            return silence.describe()
        down = self._down_dependencies(spec)
        if down:
            return f"{', '.join(down)} (depends_on) {'is' if len(down) == 1 else 'are'} down"
        return None

    def _down_dependencies(self, spec: CheckSpec) -> list[str]:
        return [name for name in spec.depends_on if self._down(name)]

    def _down(self, check: str) -> bool:
        state = self._states.get(check)
        return state is not None and (state.failures > 0 or state.incident is not None)

    async def _emit(self, spec: CheckSpec, state: AlertState, events: Sequence[Event], late: str | None = None) -> None:
        now = self._clock.time()
        records, release = [], False
        for e in events:
            incident, held = e.incident, self.holding(spec, now) if e.send else None
            note = f"sent late: it was held back while {late}" if late else None
            if e.kind == "failure" and held is not None and incident is not None:
                incident = replace(incident, held=held)
                e = replace(e, incident=incident)
                if state.incident is not None and state.incident.id == incident.id:
                    self._states[spec.name] = state = replace(state, incident=incident)
            elif e.kind == "resolved" and incident is not None and incident.held is not None and held is None:
                note = f"its failure was not sent: {incident.held}"
            if e.kind == "resolved" and (dependents := self._held_for.pop(spec.name, None)):
                release = True
                note = f"alerts of checks that depend on {spec.name} were held back meanwhile: {', '.join(sorted(dependents))}"
            if e.kind == "failure" and held is not None:
                self._last[spec.name] = (spec, e.result)
            elif e.kind == "resolved":
                self._last.pop(spec.name, None)
            if held is not None:
                for name in self._down_dependencies(spec):
                    self._held_for.setdefault(name, set()).add(spec.name)
            messages = tuple(self._messages(spec, e, now, note, held)) if e.send else ()
            records.append(Record(spec.name, e.result.ts, state.degraded, incident, messages))
        try:
            await self._record(records)
        except Exception as exc:  # better sent without a record than not sent
            log.error("recording alert events of %s failed, sending anyway: %s", spec.name, exc)
        for rec, event in zip(records, events, strict=True):
            _log_event(event, rec.messages)
            self._dispatch(rec.messages)
            if self._on_event is not None:
                self._on_event(event)
        if release:  # its dependents still down say so now
            self._start_release(None)

    async def _record(self, records: list[Record]) -> None:
        """Write records in one transaction with those of every other event raised meanwhile: while
        one write is under way the next batch gathers (a storm of 300 events is a few commits)."""
        if self._batch_done is None:
            self._batch_done = asyncio.get_running_loop().create_future()
        self._batch.extend(records)
        done = self._batch_done
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="alert-records")
        await done

    async def _flush(self) -> None:
        try:
            while self._batch_done is not None:
                records, done = self._batch, self._batch_done
                self._batch, self._batch_done = [], None
                try:
                    await self._store.call(functools.partial(_record_all, records=records))
                except Exception as exc:
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        finally:
            self._flusher = None

    def _dispatch(self, messages: Iterable[Message]) -> None:
        """Messages to the sender, or to wait for their group; suppressed ones stay recorded only."""
        for m in messages:
            if m.suppressed is not None:
                continue
            if m.group_key is not None and self._grouper.groups(m.notifier):
                self._grouper.add([m])
            else:
                self._sender.add([m])

    def _messages(self, spec: CheckSpec, event: Event, now: float, note: str | None, held: str | None) -> Iterable[Message]:
        fields = event_fields(event, spec, note)
        incident = event.incident.id if event.incident is not None else None
        line = event_line(fields)
        for notifier in self._addressed(spec.alert.notify):
            title, body = compose(notifier, fields)
            yield from self._to_urls(notifier, spec.name, dict(spec.labels), incident, event.kind, title, body, line, now, held)

    def _addressed(self, names: Iterable[str]) -> Iterable[NotifierSpec]:
        return (n for name in names if (n := self._notifiers.get(name)) is not None)

    def _to_urls(
        self, notifier: NotifierSpec, check: str, labels: dict[str, str], incident: str | None, event: str, title: str, body: str,
        line: str, now: float, held: str | None,
    ) -> Iterable[Message]:  # fmt: skip
        """One message per URL of notifier, waiting in its group when the notifier groups."""
        from pulse_agent.alerts.notify import url_hint  # Apprise: loaded only where notifiers exist

        group = group_key(notifier, check, labels)
        for url in notifier.urls:
            yield Message(
                id=next(self._ids), created_at=now, check=check, incident_id=incident, event=event, notifier=notifier.name,
                url_key=outbox.url_key(url), url_hint=url_hint(url), kind=NOTIFY_TYPE[event], title=title, body=body,
                next_attempt_at=now, suppressed=held, group_key=group, line=line,
            )  # fmt: skip

    async def raise_conditions(self, changes: Sequence[tuple[Change, tuple[str, ...], str]]) -> None:
        """Record and send SLO and rule alerts that fired or resolved: (change, notifiers, body). The
        incidents and their messages commit together (the outbox's promise); a silence matching the
        check or rule name and labels holds the messages back, recorded."""
        now = self._clock.time()
        incidents: list[Incident] = []
        messages: list[Message] = []
        for change, notify, text in changes:
            a = change.active
            silence = silencing(self._silences, a.name, dict(a.labels), now)
            held = silence.describe() if silence is not None else None
            heading = title(change)
            for notifier in self._addressed(notify):
                messages += self._to_urls(notifier, a.name, dict(a.labels), change.incident.id, change.kind, heading, text,
                                          heading.removeprefix("[pulse] "), now, held)  # fmt: skip
            incidents.append(change.incident)
        try:
            await self._store.call(lambda con: outbox.record_incidents(con, incidents, messages))
        except Exception as exc:  # as for checks' events: better sent without a record than not sent
            log.error("recording SLO and rule alerts failed, sending anyway: %s", exc)
        for change, _, _ in changes:
            log.warning("alert %s", change.kind, extra={"check": change.active.name, "source": change.active.source,
                                                        "incident": change.incident.id, "detail": change.active.detail})  # fmt: skip
        self._dispatch(messages)


def _record_all(con: duckdb.DuckDBPyConnection, records: list[Record]) -> None:
    outbox.record(con, records)


def incident_json(event: Event) -> dict[str, Any]:
    """An alert event as the live event feed (GET /api/v1/events) sends it."""
    incident = event.incident
    return {
        "event": event.kind, "check": event.check, "ts": iso(event.result.ts),
        "incident": incident.id if incident else None,
        "opened_at": iso(incident.opened_at) if incident else None,
        "resolved_at": iso(incident.resolved_at) if incident and incident.resolved_at else None,
    }  # fmt: skip


def _log_event(event: Event, messages: Sequence[Message]) -> None:
    fields: dict[str, object] = {"check": event.check, "event": event.kind, "messages": len(messages)}
    held = next((m.suppressed for m in messages if m.suppressed), None)
    if held is not None:
        fields["held"] = held
    if event.incident is not None:
        fields.update(incident=event.incident.id, opened_at=iso(event.incident.opened_at))
    log.warning("alert %s", event.kind, extra=fields)
