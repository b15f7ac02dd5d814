"""Pure: how many probe worker processes an agent should start (`agent.workers: auto`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pulse_agent.config.model import CheckSpec
from pulse_agent.schedule import Cron, Interval

# One process runs about 1,000 fresh-connection checks/s at roughly 40% of a core with a
# scheduler p99 lag near 2 ms (docs/performance.md). Past that, the same process also has
# to store, alert and render /metrics on the rest of its core, so lag grows before the core
# is full: that is where a worker per core starts to pay for its memory (a process each).
AUTO_WORKERS_ABOVE = 1000.0

WorkersSetting = int | Literal["auto"]


def checks_per_second(checks: Iterable[CheckSpec], now: float) -> float:
    """Runs per second the checks ask for: 1/interval, or the gap between a cron's next two runs."""
    total = 0.0
    for check in checks:
        schedule = check.schedule
        if isinstance(schedule, Interval):
            total += 1.0 / schedule.seconds
        elif isinstance(schedule, Cron):
            first = schedule.next_due(now)
            second = schedule.next_due(first) if first is not None else None
            if first is not None and second is not None:  # a cron that fires once more or never has no rate
                total += 1.0 / max(second - first, 1.0)
        # a one-shot runs once: no sustained rate
    return total


def resolve_workers(setting: WorkersSetting, rate: float, cores: int) -> tuple[int, str]:
    """The number of probe workers to start and why: an explicit number wins; `auto` uses every core
    when the configured rate needs more than one."""
    if setting != "auto":
        return setting, f"agent.workers: {setting}"
    if cores < 2:
        return 0, f"auto: one core ({rate:,.0f} checks/s configured)"
    if rate <= AUTO_WORKERS_ABOVE:
        return 0, f"auto: {rate:,.0f} checks/s configured, one process serves up to {AUTO_WORKERS_ABOVE:,.0f}/s"
    return cores, f"auto: {rate:,.0f} checks/s configured, over {AUTO_WORKERS_ABOVE:,.0f}/s: a worker per core ({cores})"
