"""Pure: the one stable hash of a check name, the same on every start and every machine.

It is CRC-32, the hash interval phases have always used (so upgrading moves no check in time). Phases
use it directly; splits into buckets (shards, probe workers) pass it, salted, through a 64-bit mixing
step first, because CRC-32 is linear: without mixing, names of one length would fall into the same
worker of every shard.
"""

from __future__ import annotations

import zlib

_MASK = 2**64 - 1


def name_hash(name: str, salt: str = "") -> int:
    """32-bit hash of salt and name."""
    return zlib.crc32((salt + name).encode("utf-8"))


def spread(name: str) -> float:
    """Deterministic fraction in [0, 1) from a name."""
    return name_hash(name) / 2**32


def bucket(name: str, count: int, salt: str = "") -> int:
    """Which of count buckets (0-based) a name falls in; a salt gives an independent split."""
    x = (name_hash(name, salt) | len(salt) << 32) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK  # splitmix64's finalizer: every input bit moves every output bit
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) % count
