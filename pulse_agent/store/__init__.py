"""Storage: the DuckDB file that keeps every result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pulse_agent.store.connect import StoreError
    from pulse_agent.store.db import ResultStore

__all__ = ["ResultStore", "StoreError"]


def __getattr__(name: str) -> Any:
    """ResultStore and StoreError on first use: the writer's module imports asyncio and its threads,
    which `report` and `export` (reading the file through store/connect.py) never need."""
    if name == "ResultStore":
        from pulse_agent.store.db import ResultStore

        return ResultStore
    if name == "StoreError":
        from pulse_agent.store.connect import StoreError

        return StoreError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
