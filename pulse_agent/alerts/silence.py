"""Silences: matchers over a check's name and labels, active from starts_at to ends_at. Pure.

Matchers read like Alertmanager's: `check=api`, `team!=payments`, `tier=~"1|2"`, `env!~dev.*`.
A regular expression must match the whole value; a label the check does not have is "".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pulse_agent.durations import parse_duration
from pulse_agent.probe.regex import regex_problem, regex_search
from pulse_agent.result import from_iso, iso

MatchOp = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")
MAX_SILENCE_S = 366 * 86400.0


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on `check` (the check's name) or on a label."""

    name: str
    op: MatchOp
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """'team=~pay.*' -> Matcher('team', '=~', 'pay.*'); ValueError saying what is wrong."""
        m = _MATCHER.fullmatch(text)
        if m is None:
            raise ValueError(f"matcher {text!r}: write NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX (NAME: check or a label)")
        name, op, value = m.group(1), m.group(2), m.group(3)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if op in ("=~", "!~") and (problem := regex_problem(_whole(value))) is not None:  # RE2, as every user regex
            raise ValueError(f"matcher {text!r}: {problem}")
        return cls(name, op, value)  # type: ignore[arg-type]

    def matches(self, check: str, labels: Mapping[str, str]) -> bool:
        """Whether this matcher holds for a check of that name and labels."""
        actual = check if self.name == "check" else labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = regex_search(_whole(self.value), actual)
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def _whole(pattern: str) -> str:
    """A regex that must match a whole value (as Alertmanager's matchers do)."""
    return f"^(?:{pattern})\\z"


@dataclass(frozen=True, slots=True)
class Silence:
    """Notifications of matching checks are recorded, not sent, from starts_at until ends_at."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    reason: str
    author: str
    created_at: float

    def active(self, now: float) -> bool:
        """Whether the silence holds at now."""
        return self.starts_at <= now < self.ends_at

    def matches(self, check: str, labels: Mapping[str, str]) -> bool:
        """Whether every matcher holds for the check."""
        return all(m.matches(check, labels) for m in self.matchers)

    def state(self, now: float) -> Literal["pending", "active", "expired"]:
        """Where now falls in the silence's span."""
        return "pending" if now < self.starts_at else "active" if now < self.ends_at else "expired"

    def describe(self) -> str:
        """One line for messages and logs: id, who and why, until when."""
        return f"silence {self.id} by {self.author} until {iso(self.ends_at)}: {self.reason}"

    def to_json(self, now: float) -> dict[str, Any]:
        """The silence as the API answers it."""
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "reason": self.reason,
            "author": self.author,
            "created_at": iso(self.created_at),
            "state": self.state(now),
        }


def silencing(silences: Iterable[Silence], check: str, labels: Mapping[str, str], now: float) -> Silence | None:
    """The active silence that covers the check at now (the one ending last), if any."""
    found = [s for s in silences if s.active(now) and s.matches(check, labels)]
    return max(found, key=lambda s: s.ends_at) if found else None


def new_silence(body: Mapping[str, Any], silence_id: str, now: float) -> Silence:
    """A silence from an API request body; ValueError naming the field that is wrong.

    Body: `matchers` (list of strings), `reason`, `author`, `ends_at` (ISO-8601) or `duration`
    ("2h"), optional `starts_at` (ISO-8601, default now)."""
    if not isinstance(body, Mapping):
        raise ValueError("give a JSON object with matchers, reason, author and duration or ends_at")
    raw = body.get("matchers")
    if not isinstance(raw, list) or not raw or not all(isinstance(m, str) for m in raw):
        raise ValueError('matchers: give a non-empty list of strings like ["check=api", "team=~pay.*"]')
    matchers = tuple(Matcher.parse(m) for m in raw)
    reason, author = body.get("reason"), body.get("author")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason: say why the checks are silenced")
    if not isinstance(author, str) or not author.strip():
        raise ValueError("author: say who silences them")
    starts = _instant(body, "starts_at") if body.get("starts_at") is not None else now
    if body.get("ends_at") is not None:
        ends = _instant(body, "ends_at")
    elif isinstance(body.get("duration"), (str, int, float)) and not isinstance(body.get("duration"), bool):
        try:
            ends = starts + parse_duration(body["duration"])
        except ValueError as exc:
            raise ValueError(f"duration: {exc}") from None
    else:
        raise ValueError("give ends_at (ISO-8601) or duration (2h)")
    if ends <= max(starts, now):
        raise ValueError("the silence would end before it starts or in the past")
    if ends - starts > MAX_SILENCE_S:
        raise ValueError("a silence lasts at most 366d; disable the check instead")
    if starts - now > MAX_SILENCE_S:  # and so it ends long before year 9999 ends: every time here can be written
        raise ValueError("starts_at: a silence starts within 366d from now")
    return Silence(silence_id, matchers, starts, ends, reason.strip(), author.strip(), now)


def _instant(body: Mapping[str, Any], key: str) -> float:
    value = body[key]
    try:
        return from_iso(str(value))
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not an ISO-8601 time like 2026-11-22T10:00:00Z") from None
