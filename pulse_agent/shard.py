"""Sharding: N agents with one config split its checks by a stable hash of the name, with no
coordination (like Prometheus hashmod). Pure; the Shard value is in the config model."""

from __future__ import annotations

from dataclasses import replace

from pulse_agent.config.model import AgentSpec, Shard

__all__ = ["Shard", "owned"]


def owned(spec: AgentSpec, shard: Shard) -> AgentSpec:
    """spec with only the checks shard runs."""
    if shard.count == 1:
        return spec
    return replace(spec, checks=tuple(c for c in spec.checks if shard.owns(c.name)))
