"""The reload diff: (old config, new config) -> what was added, removed, changed, kept. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Protocol

from pulse_agent.config.model import AgentSpec

# Agent settings a running agent cannot take over; they need a restart.
RESTART_SETTINGS = ("listen", "database", "max_concurrency", "log_format", "api_token", "shard", "workers", "location", "export_dir",
                    "insecure_api", "query_memory_limit", "query_timeout")  # fmt: skip


class _Named(Protocol):
    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Changes:
    """Names added, removed, changed and kept, each sorted."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many of each."""
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed), "unchanged": len(self.unchanged)}


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """Everything a reload changes."""

    checks: Changes
    notifiers: Changes
    settings: tuple[str, ...]  # agent settings whose value changed

    @property
    def empty(self) -> bool:
        """Whether applying it changes nothing."""
        c, n = self.checks, self.notifiers
        return not (c.added or c.removed or c.changed or n.added or n.removed or n.changed or self.settings)


def compare(old: Sequence[_Named], new: Sequence[_Named]) -> Changes:
    """Items matched by name: equal ones are unchanged."""
    before = {item.name: item for item in old}
    added: list[str] = []
    changed: list[str] = []
    unchanged: list[str] = []
    for item in new:  # one pass, each pair compared once, the old ones left in before are removed (100,000 checks)
        name = item.name
        was = before.pop(name, None)
        if was is None:
            added.append(name)
        else:
            (unchanged if _same(item, was) else changed).append(name)
    return Changes(
        added=tuple(sorted(added)),
        removed=tuple(sorted(before)),
        changed=tuple(sorted(changed)),
        unchanged=tuple(sorted(unchanged)),
    )


def _same(a: object, b: object) -> bool:
    return a is b or a == b  # a reload reuses the spec of an untouched check: no field-by-field compare


def diff(old: AgentSpec, new: AgentSpec) -> ConfigDiff:
    """What turning old into new changes."""
    settings = tuple(f.name for f in fields(old.agent) if getattr(old.agent, f.name) != getattr(new.agent, f.name))
    return ConfigDiff(compare(old.checks, new.checks), compare(old.notifiers, new.notifiers), settings)
