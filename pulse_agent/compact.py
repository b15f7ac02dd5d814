"""What a probe worker keeps of each of its checks: the fields that differ from a template check, the spec
made again for each run (workers.child). A `CheckSpec` is 41 slots whatever it holds, and pickle gives every
spec of a frame its own numbers; a worker with 50,000 checks kept 50,000 of each (docs/performance.md)."""

from __future__ import annotations

import pickle
from dataclasses import fields
from typing import Any

from pulse_agent.config.model import CheckSpec
from pulse_agent.schedule import Schedule

_FIELDS = tuple(f.name for f in fields(CheckSpec))
_NAME, _SCHEDULE = _FIELDS.index("name"), _FIELDS.index("schedule")
_SCALARS = (str, int, float, bytes)  # compared by type and value (float by its exact bits: 0.0 is not -0.0)


def _same_scalar(value: Any, other: Any) -> bool:
    if type(value) is not type(other) or value != other:
        return False
    return type(value) is not float or value.hex() == other.hex()


class CompactCheck:
    """One check as a worker keeps it: its name, schedule and enabled flag (what the scheduler reads), and
    the values of the fields where it differs from its template."""

    __slots__ = ("_layout", "_template", "_values", "enabled", "name", "schedule")

    def __init__(
        self, name: str, schedule: Schedule, enabled: bool, template: tuple[Any, ...], layout: tuple[int, ...], values: tuple[Any, ...]
    ) -> None:
        self.name = name
        self.schedule = schedule
        self.enabled = enabled
        self._template = template
        self._layout = layout
        # one differing value (most checks differ from their template by URL alone) is kept without a tuple
        self._values: Any = values[0] if len(layout) == 1 else values

    def spec(self) -> CheckSpec:
        """The check's spec, equal field for field to the one the agent sent."""
        values = list(self._template)
        values[_NAME] = self.name
        if len(self._layout) == 1:
            values[self._layout[0]] = self._values
        else:
            for index, value in zip(self._layout, self._values, strict=True):
                values[index] = value
        return CheckSpec(*values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompactCheck) and self.spec() == other.spec()

    __hash__ = None  # type: ignore[assignment]  # like a spec's equality, by value; never a key


def compact(specs: list[CheckSpec]) -> list[CompactCheck]:
    """specs (a frame's) as CompactChecks whose template is the first: a value equal to the template's (a
    scalar by type and exact value, anything else by its pickle) is the template's own object, so checks
    written alike share it, numbers included. An object the specs share (as their pickle made them) is
    compared once."""
    if not specs:
        return []
    template = _values(specs[0])
    pickled: dict[int, bytes] = {}
    same: dict[tuple[int, int], bool] = {}  # (field, id of an object of specs) -> whether it equals the template's
    layouts: dict[tuple[int, ...], tuple[int, ...]] = {}
    out = []
    for spec in specs:
        layout: list[int] = []
        differing: list[Any] = []
        for index, (value, mine) in enumerate(zip(_values(spec), template, strict=True)):
            if index == _NAME or value is mine:
                continue
            if isinstance(value, _SCALARS):
                if _same_scalar(value, mine):
                    continue
            elif value is not None and mine is not None:
                equal = same.get((index, id(value)))
                if equal is None:
                    if index not in pickled:
                        pickled[index] = pickle.dumps(mine, pickle.HIGHEST_PROTOCOL)
                    equal = same[index, id(value)] = pickle.dumps(value, pickle.HIGHEST_PROTOCOL) == pickled[index]
                if equal:
                    continue
            layout.append(index)
            differing.append(value)
        key = tuple(layout)
        schedule = differing[key.index(_SCHEDULE)] if _SCHEDULE in key else template[_SCHEDULE]
        out.append(CompactCheck(spec.name, schedule, spec.enabled, template, layouts.setdefault(key, key), tuple(differing)))
    return out


def _values(spec: CheckSpec) -> tuple[Any, ...]:
    """spec's field values in order, not copied (dataclasses.astuple copies them deeply)."""
    return tuple(getattr(spec, name) for name in _FIELDS)
