"""Durations: "1h30m" <-> seconds."""

from __future__ import annotations

import re
from functools import lru_cache

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_SECONDS = 100 * 365 * 86400.0  # longer is a typo, and overflows timers
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*")


@lru_cache(maxsize=4096, typed=True)  # configs repeat the same few durations; typed: True == 1 must not share 1's entry
def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration such as 250ms, 30s, 1h30m, 7d or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{value!r} is negative; a duration is 0 or more")
        if not value < MAX_SECONDS:  # also NaN
            raise ValueError(f"{str(value)[:20]} is not a duration of at most 100 years")
        return float(value)
    text = value.strip()
    if not text:
        raise ValueError("empty duration")
    total, pos = 0.0, 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if m is None:
            raise ValueError(f"{value!r} is not a duration (e.g. 250ms, 30s, 5m, 1h30m, 7d)")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not total < MAX_SECONDS:
        raise ValueError(f"{value[:20]!r} is not a duration of at most 100 years")
    return total


def format_duration(seconds: float) -> str:
    """Shortest exact unit form of a duration: 90 -> "1m30s", 0.25 -> "250ms"."""
    if seconds < 0:
        raise ValueError("negative duration")
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
