"""Sharding: N agents with one config split its checks by a stable hash of the name, with no
coordination (like Prometheus hashmod). Pure; the Shard value is in the config model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from pulse_agent.config.model import AgentSpec, Shard

__all__ = ["Shard", "owned", "pod_ordinal", "resolve"]

_ORDINAL_FORM = re.compile(r"ordinal/([1-9][0-9]*)")
_POD_ORDINAL = re.compile(r".+-([0-9]+)")  # a StatefulSet's pod NAME-ORDINAL


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
