"""Alerts on conditions instead of runs (SLO burn rates, SQL rules): which instances fire and resolve, and their text. Pure.

An instance is active while its condition holds at an evaluation. It fires (an incident opens)
once it has been active for `hold` seconds, and resolves at the first evaluation where it is not
active. An instance that stops before `hold` never fires and sends nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from pulse_agent.alerts.machine import Incident, incident_id
from pulse_agent.alerts.template import human_duration
from pulse_agent.result import iso

ChangeKind = Literal["slo_burn", "slo_recovered", "rule_firing", "rule_resolved"]
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Active:
    """An instance whose condition holds at this evaluation."""

    name: str  # the check (SLO) or the rule
    source: str  # "slo:page", "slo:ticket", "rule"
    instance: str  # identity within name and source: "" for an SLO, the row's labels (JSON) for a rule
    labels: Pairs  # for silences and group_by
    detail: str  # what the message says about it now

    @property
    def key(self) -> str:
        """Its identity among all condition alerts."""
        return f"{self.source}|{self.name}|{self.instance}"


@dataclass(frozen=True, slots=True)
class Tracked:
    """An instance seen active: since when, and its incident once it fired."""

    since: float
    active: Active
    incident: Incident | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """An instance fired or resolved."""

    kind: ChangeKind
    active: Active  # as last seen active
    incident: Incident


def step(tracked: Mapping[str, Tracked], active: Iterable[Active], now: float, hold: float) -> tuple[dict[str, Tracked], list[Change]]:
    """One evaluation of one rule (or of all SLOs): the instances tracked after it and what fired or resolved."""
    out: dict[str, Tracked] = {}
    changes: list[Change] = []
    for a in active:
        seen = tracked.get(a.key)
        t = Tracked(now, a) if seen is None else replace(seen, active=a)
        if t.incident is None and now - t.since >= hold:
            ident = a.source + ":" + a.name + (":" + _short(a.instance) if a.instance else "")
            incident = Incident(
                incident_id(ident, t.since), a.name, t.since, a.source.split(":")[0], a.detail, now,
                source=a.source, instance=a.instance or None,
            )
            t = replace(t, incident=incident)
            changes.append(Change("slo_burn" if a.source.startswith("slo") else "rule_firing", a, incident))
        out[a.key] = t
    for key, t in tracked.items():
        if key not in out and t.incident is not None:
            kind: ChangeKind = "slo_recovered" if t.active.source.startswith("slo") else "rule_resolved"
            changes.append(Change(kind, t.active, replace(t.incident, resolved_at=now)))
    return out, changes


def restored(incidents: Iterable[Incident], labels: Mapping[str, Pairs]) -> dict[str, Tracked]:
    """Open incidents found at start as tracked instances (a rule's labels are its instance; an SLO's, its check's)."""
    out = {}
    for i in incidents:
        assert i.source is not None  # open_conditions reads only these
        own = tuple(sorted(json.loads(i.instance).items())) if i.instance else labels.get(i.check, ())
        a = Active(i.check, i.source, i.instance or "", own, i.first_error or "")
        out[a.key] = Tracked(i.opened_at, a, i)
    return out


def instance_of(labels: Mapping[str, object]) -> str:
    """A rule row's identity: its label columns as canonical JSON."""
    return json.dumps({k: "" if v is None else str(v) for k, v in labels.items()}, sort_keys=True, separators=(",", ":"))


def title(change: Change) -> str:
    """One line for Slack and email subjects."""
    a = change.active
    if a.source == "rule":
        what = ", ".join(f"{k}={v}" for k, v in a.labels) or "(no labels)"
        state = "firing" if change.kind == "rule_firing" else "resolved"
        return f"[pulse] rule {a.name} {state}: {what}"[:200]
    severity = a.source.split(":")[1]
    if change.kind == "slo_burn":
        return f"[pulse] {a.name} is burning its error budget ({severity})"
    return f"[pulse] {a.name} stopped burning its error budget ({severity})"


def body(change: Change, now_detail: str | None, description: str = "") -> str:
    """The message: what holds (or held), since when, and the figures now."""
    i, a = change.incident, change.active
    lines = [description] if description else []
    if change.kind in ("slo_burn", "rule_firing"):
        lines.append(a.detail)
        lines.append(f"since {iso(i.opened_at)}")
    else:
        end = i.resolved_at if i.resolved_at is not None else i.opened_at
        lines.append(f"was firing {human_duration(end - i.opened_at)}, from {iso(i.opened_at)} to {iso(end)}")
        if now_detail:
            lines.append(f"now: {now_detail}")
    if a.source == "rule" and a.labels:
        lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in a.labels))
    return "\n".join(line for line in lines if line)


def _short(instance: str) -> str:
    return hashlib.sha256(instance.encode()).hexdigest()[:8]


def rule_actives(name: str, columns: Iterable[str], rows: Iterable[Mapping[str, object]]) -> list[Active]:
    """A rule's answer as instances: every column but value and summary is a label; one instance per distinct label set."""
    label_columns = [c for c in columns if c not in ("value", "summary")]
    out: dict[str, Active] = {}
    for row in rows:
        labels = {c: row.get(c) for c in label_columns}
        instance = instance_of(labels)
        value, summary = row.get("value"), row.get("summary")
        detail = "; ".join(
            part for part in (f"value {value:g}" if isinstance(value, (int, float)) else f"value {value}" if value is not None else "",
                              str(summary) if summary is not None else "") if part
        )  # fmt: skip
        pairs = tuple(sorted((k, "" if v is None else str(v)) for k, v in labels.items()))
        a = Active(name, "rule", instance, pairs, detail)
        out[a.key] = a
    return list(out.values())
