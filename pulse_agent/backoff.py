"""Retry timing shared by probe retries and notification re-sends. Pure."""

from __future__ import annotations


def doubling(first: float, cap: float, attempt: int) -> float:
    """Wait after failed attempt number `attempt` (1-based): first, 2*first, 4*first, ... capped at cap."""
    return min(cap, first * 2.0 ** (attempt - 1))
