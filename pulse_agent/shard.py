"""Sharding: N agents with one config split its checks by a stable hash of the name, with no
coordination (like Prometheus hashmod). Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pulse_agent.config.model import AgentSpec

_FORM = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")
_ORDINAL_FORM = re.compile(r"ordinal/([1-9][0-9]*)")
_POD_ORDINAL = re.compile(r".+-([0-9]+)")  # a StatefulSet's pod NAME-ORDINAL


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


def resolve(text: str, env: Mapping[str, str]) -> str:
    """ "ordinal/N" -> "K/N" with K = the pod's ordinal + 1 (a StatefulSet's replica 0 runs shard
    1/N, replica N-1 shard N/N); any other text unchanged. ValueError when there is no ordinal or it
    is N or more (replicas and N disagree)."""
    m = _ORDINAL_FORM.fullmatch(text.strip())
    if m is None:
        return text
    count, ordinal = int(m.group(1)), pod_ordinal(env)
    if ordinal >= count:
        raise ValueError(f"pod ordinal {ordinal} has no shard of {text!r}: set N to the StatefulSet's replicas")
    return f"{ordinal + 1}/{count}"


def pod_ordinal(env: Mapping[str, str]) -> int:
    """The pod's ordinal: $PULSE_POD_ORDINAL (e.g. from the label apps.kubernetes.io/pod-index), else
    the number ending $POD_NAME or $HOSTNAME (a StatefulSet names its pods NAME-0, NAME-1, ...)."""
    if env.get("PULSE_POD_ORDINAL", "").strip():
        text = env["PULSE_POD_ORDINAL"].strip()
        if not text.isdigit():
            raise ValueError(f"PULSE_POD_ORDINAL={text!r} is not a pod ordinal (0, 1, 2, ...)")
        return int(text)
    for var in ("POD_NAME", "HOSTNAME"):
        m = _POD_ORDINAL.fullmatch(env.get(var, "").strip())
        if m:
            return int(m.group(1))
    raise ValueError(
        "shard ordinal/N needs the pod's ordinal: set PULSE_POD_ORDINAL, "
        "or POD_NAME (or HOSTNAME) to a StatefulSet pod name like pulse-agent-2"
    )
