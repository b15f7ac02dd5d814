"""Storage: the DuckDB file that keeps every result."""

from pulse_agent.store.db import ResultStore, StoreError

__all__ = ["ResultStore", "StoreError"]
