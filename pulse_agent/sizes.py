"""Sizes: "1MiB" <-> bytes."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*", re.IGNORECASE)


def parse_size(value: str | int) -> int:
    """Bytes in a size such as 65536, "512KiB", "1MiB" or "2MB"."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        return value
    m = _SIZE.fullmatch(value)
    if m is None:
        raise ValueError(f"{value!r} is not a size (e.g. 65536, 512KiB, 1MiB)")
    n = float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    if not n < 2**53:  # also inf from hundreds of digits
        raise ValueError(f"{value[:20]!r} is too large a size")
    return int(n)


def format_size(n: int) -> str:
    """Short binary form: 1048576 -> "1 MiB", 1000 -> "1000 bytes"."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"
