"""Pure schedule math: a schedule string -> the next due time after an instant."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

from pulse_agent.durations import parse_duration

MIN_INTERVAL = 1.0
MAX_INTERVAL = 86_400.0

_UNIT_WORDS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_EVERY_N_UNIT = re.compile(r"(?:(\d+(?:\.\d+)?)\s*)?([a-z]+)")

ACCEPTED_FORMS = "an interval such as 30s, 1h30m, 'every 5 minutes' or 'every hour' (1s .. 24h)"


class ScheduleError(ValueError):
    """A schedule string that cannot be understood; the message says why and what is accepted."""


@dataclass(frozen=True, slots=True)
class Interval:
    """Runs every `seconds`, on a grid offset per check so checks spread over the interval."""

    seconds: float
    text: str

    def next_due(self, after: float, key: str) -> float:
        """First grid point strictly after `after` for the check named `key`."""
        phase = spread(key) * self.seconds
        steps = math.floor((after - phase) / self.seconds) + 1
        return phase + steps * self.seconds


Schedule = Interval


def spread(key: str) -> float:
    """Deterministic fraction in [0, 1) from a name: the same on every start and every machine."""
    return zlib.crc32(key.encode("utf-8")) / 2**32


def parse_schedule(text: str) -> Schedule:
    """Parse a schedule string; raise ScheduleError naming the bad token and the accepted forms."""
    words = " ".join(text.lower().split())
    if not words:
        raise ScheduleError(f"empty schedule; write {ACCEPTED_FORMS}")
    body = words.removeprefix("every ").strip() if words.startswith("every ") else words
    seconds = _interval_seconds(body)
    if seconds is None:
        bad = body.split()[-1] if body.split() else body
        raise ScheduleError(f"cannot read {text!r} (at {bad!r}); write {ACCEPTED_FORMS}")
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ScheduleError(f"interval {text!r} is out of range; it must be between 1s and 24h")
    return Interval(seconds, text)


def _interval_seconds(body: str) -> float | None:
    try:
        return parse_duration(body)
    except ValueError:
        pass
    m = _EVERY_N_UNIT.fullmatch(body)
    if m is None or m.group(2) not in _UNIT_WORDS:
        return None
    return float(m.group(1) or 1) * _UNIT_WORDS[m.group(2)]
