"""The alert tables: record events and their messages before sending, mark deliveries, restore after a restart.

Every function here takes the writer's DuckDB connection and runs inside ResultStore.call, so
an event, its incident row and its outbox messages commit together or not at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb

from pulse_agent.alerts.machine import Incident
from pulse_agent.result import Result, utc


@dataclass(frozen=True, slots=True)
class Message:
    """One notification to one URL of one notifier: a row of the outbox."""

    id: int
    created_at: float
    check: str
    incident_id: str | None
    event: str
    notifier: str
    url_key: str
    url_hint: str
    kind: str  # Apprise notify type
    title: str
    body: str
    attempts: int = 0
    next_attempt_at: float = 0.0
    suppressed: str | None = None  # recorded, never sent: the silence or dependency that held it
    group_key: str | None = None  # waits in this group of its notifier (group_by) to go out in one message
    line: str = ""  # its line in that message


@dataclass(frozen=True, slots=True)
class Record:
    """What one event changes: the check's alert state, its incident, and the messages to send."""

    check: str
    transition_ts: float  # the run that caused the event
    degraded: bool
    incident: Incident | None
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class Saved:
    """The alert tables as a restarting agent finds them."""

    incidents: dict[str, Incident]  # open ones, by check
    degraded: set[str]  # checks whose degraded event has not been followed by recovered
    recent: dict[str, list[Result]]  # per check, the last runs after its last recorded event, oldest first
    pending: list[Message]  # undelivered, not dead, oldest first
    next_id: int


def url_key(url: str) -> str:
    """A stable, secret-free name of url."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def record(con: duckdb.DuckDBPyConnection, records: list[Record]) -> None:
    """Write events: incident rows upserted, alert state replaced, messages queued; a few statements
    for any number of records, so a storm of events costs one transaction, not hundreds."""
    states = {r.check: r for r in records}
    record_incidents(con, [r.incident for r in records if r.incident is not None], [m for r in records for m in r.messages])
    _many(con, "INSERT OR REPLACE INTO alert_state VALUES {}", [(r.check, utc(r.transition_ts), r.degraded) for r in states.values()])


def record_incidents(con: duckdb.DuckDBPyConnection, incidents: list[Incident], messages: list[Message]) -> None:
    """Incident rows upserted (the last state of each wins) and their messages queued; for SLO and
    rule alerts this is the whole record (they have no per-check alert_state)."""
    latest = {i.id: i for i in incidents}
    _many(
        con,
        "INSERT INTO incidents (id, check_name, opened_at, resolved_at, first_error_kind, first_error, last_notified_at, held,"
        " source, instance) VALUES {}"
        " ON CONFLICT (id) DO UPDATE SET resolved_at = excluded.resolved_at, last_notified_at = excluded.last_notified_at,"
        " held = excluded.held",
        [(i.id, i.check, utc(i.opened_at), utc(i.resolved_at), i.first_error_kind, i.first_error, utc(i.last_notified_at), i.held,
          i.source, i.instance) for i in latest.values()],
    )  # fmt: skip
    _insert(con, messages)


def open_conditions(con: duckdb.DuckDBPyConnection) -> list[Incident]:
    """Open SLO and rule incidents, for a restarting agent."""
    rows = con.execute(
        "SELECT id, check_name, epoch(opened_at), first_error_kind, first_error, epoch(last_notified_at), epoch(acked_at), acked_by,"
        " held, source, instance FROM incidents WHERE resolved_at IS NULL AND source IS NOT NULL ORDER BY opened_at"
    ).fetchall()
    return [
        Incident(r[0], r[1], r[2], r[3], r[4], r[5], acked_at=r[6], acked_by=r[7], held=r[8], source=r[9], instance=r[10]) for r in rows
    ]


def _insert(con: duckdb.DuckDBPyConnection, messages: list[Message]) -> None:
    _many(
        con,
        "INSERT INTO outbox (id, created_at, check_name, incident_id, event, notifier, url_key, url_hint, kind, title, body,"
        " next_attempt_at, suppressed, group_key, line) VALUES {}",
        [(m.id, utc(m.created_at), m.check, m.incident_id, m.event, m.notifier, m.url_key, m.url_hint, m.kind, m.title, m.body,
          utc(m.next_attempt_at), m.suppressed, m.group_key, m.line) for m in messages],
    )  # fmt: skip


def _many(con: duckdb.DuckDBPyConnection, sql: str, rows: list[tuple[object, ...]], chunk: int = 200) -> None:
    """sql with its VALUES {} filled by rows, chunk rows per statement (one statement costs about as much as one row)."""
    for at in range(0, len(rows), chunk):
        part = rows[at : at + chunk]
        values = ", ".join(["(" + ", ".join("?" * len(part[0])) + ")"] * len(part))
        con.execute(sql.format(values), [v for row in part for v in row])


def record_group(con: duckdb.DuckDBPyConnection, combined: Message, members: list[int]) -> None:
    """Queue a grouped message and mark the messages it carries, in one transaction (none is sent twice)."""
    _insert(con, [combined])
    con.execute("UPDATE outbox SET grouped_into = ? WHERE list_contains(?, id)", [combined.id, members])


def mark_delivered(con: duckdb.DuckDBPyConnection, message: Message, at: float) -> None:
    """message reached its URL."""
    con.execute("UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?", [utc(at), message.id])
    if message.incident_id is not None:
        con.execute("UPDATE incidents SET notifications_sent = notifications_sent + 1 WHERE id = ?", [message.incident_id])
    if message.event == "group":  # the messages it carried arrived with it
        con.execute(
            "UPDATE incidents SET notifications_sent = notifications_sent + 1"
            " WHERE id IN (SELECT incident_id FROM outbox WHERE grouped_into = ?)",
            [message.id],
        )
        con.execute("UPDATE outbox SET delivered_at = ? WHERE grouped_into = ?", [utc(at), message.id])


def mark_failed(con: duckdb.DuckDBPyConnection, message: Message, error: str, next_attempt_at: float | None, at: float) -> None:
    """An attempt failed: try again at next_attempt_at, or (None) give up into the dead letters."""
    if next_attempt_at is None:
        con.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, dead_at = ? WHERE id = ?", [error, utc(at), message.id])
    else:
        con.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            [error, utc(next_attempt_at), message.id],
        )


def load(con: duckdb.DuckDBPyConnection, window: int) -> Saved:
    """Open incidents, degraded flags, the last `window` runs per check since its last event, pending messages."""
    incidents = {
        row[1]: Incident(row[0], row[1], row[2], row[3], row[4], row[5], acked_at=row[6], acked_by=row[7], held=row[8])
        for row in con.execute(
            "SELECT id, check_name, epoch(opened_at), first_error_kind, first_error, epoch(last_notified_at), epoch(acked_at), acked_by,"
            " held FROM incidents WHERE resolved_at IS NULL AND source IS NULL"
        ).fetchall()
    }
    degraded = {name for (name,) in con.execute("SELECT check_name FROM alert_state WHERE degraded").fetchall()}
    recent: dict[str, list[Result]] = {}
    rows = con.execute(
        """SELECT r.check_name, epoch(r.ts), r.ok, r.degraded, r.status_code, r.response_time_ms, r.error_kind, r.error
           FROM results r LEFT JOIN alert_state s USING (check_name)
           WHERE NOT r.maintenance AND (s.transition_ts IS NULL OR r.ts > s.transition_ts)
           QUALIFY row_number() OVER (PARTITION BY r.check_name ORDER BY r.ts DESC) <= ?
           ORDER BY r.check_name, r.ts""",
        [window],
    ).fetchall()
    for name, ts, ok, slow, status, ms, kind, error in rows:
        recent.setdefault(name, []).append(Result(name, ts, ok, slow, status, ms, kind, error))
    pending = [
        Message(*row)
        for row in con.execute(
            "SELECT id, epoch(created_at), check_name, incident_id, event, notifier, url_key, url_hint, kind, title, body, attempts,"
            " epoch(next_attempt_at), suppressed, group_key, coalesce(line, '') FROM outbox"
            " WHERE delivered_at IS NULL AND dead_at IS NULL AND suppressed IS NULL AND grouped_into IS NULL ORDER BY id"
        ).fetchall()
    ]
    [(top,)] = con.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchall()
    return Saved(incidents, degraded, recent, pending, int(top) + 1)
