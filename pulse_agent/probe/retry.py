"""Pure: when a failed attempt may be retried, how long to wait first, and the longest a run can take."""

from __future__ import annotations

from pulse_agent.backoff import doubling
from pulse_agent.config.model import CheckSpec, Delivery

JITTER = 0.2  # up to +20% on each backoff, so retries of many checks do not align


def may_retry(delivery: Delivery, request_sent: bool) -> bool:
    """at_least_once retries any failure; at_most_once only when the request never left this machine."""
    return delivery == "at_least_once" or not request_sent


def backoff(spec: CheckSpec, attempt: int) -> float:
    """Wait after the given failed attempt, before jitter: doubling, capped at max_backoff."""
    return doubling(spec.retries.backoff, spec.retries.max_backoff, attempt)


def run_budget(spec: CheckSpec) -> float:
    """Longest one run can take: every attempt's timeout plus every wait between attempts, jitter included."""
    attempts = max(1, spec.retries.attempts)
    waits = sum(backoff(spec, n) for n in range(1, attempts)) * (1 + JITTER)
    return spec.timeout * attempts + waits
