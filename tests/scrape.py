"""Reading an agent's metrics as Prometheus would: parse what /metrics renders."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from pulse_agent.web.metrics import Metrics


def families(metrics: Metrics) -> list:
    """Every metric family of the rendered exposition."""
    return list(text_string_to_metric_families(metrics.render().decode()))


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of the sample called name with exactly these labels (None when absent)."""
    for family in families(metrics):
        for s in family.samples:
            if s.name == name and s.labels == (labels or {}):
                return s.value
    return None
