"""Sharding: N agents with one config split its checks by a stable hash of the name, with no
coordination (like Prometheus hashmod). Pure."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from pulse_agent.config.model import AgentSpec

_FORM = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (1-based, as written: "2/4")."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """ "2/4" -> Shard(2, 4); ValueError saying what to write otherwise."""
        m = _FORM.fullmatch(text.strip())
        if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise ValueError(f"{text!r} is not a shard: write K/N with 1 <= K <= N, e.g. 2/4")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, check: str) -> bool:
        """Whether this shard runs the check called check (every name has exactly one shard)."""
        return self.count == 1 or bucket(check, self.count) == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def bucket(name: str, count: int, salt: bytes = b"") -> int:
    """Which of count buckets (0-based) a name falls in: a stable hash, the same on every machine.
    A salt gives an independent split (probe workers inside one shard)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=salt).digest()
    return int.from_bytes(digest, "big") % count


def owned(spec: AgentSpec, shard: Shard) -> AgentSpec:
    """spec with only the checks shard runs."""
    if shard.count == 1:
        return spec
    return replace(spec, checks=tuple(c for c in spec.checks if shard.owns(c.name)))
