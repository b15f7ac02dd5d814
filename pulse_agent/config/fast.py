"""The common check (an http(s) URL, when and how long, labels: nothing else) straight to its CheckSpec.

Large configs are mostly such checks (one per customer domain), and the general builder (config/check.py)
spends most of its time on keys they do not have. This path is taken only for a document without
errors, and it builds exactly what the general builder would (tests/test_config_fast.py compares both
over a table of variants); on any doubt (a value that does not parse, a key it does not know) it
returns None and the general builder builds the check and reports the problem at its place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pulse_agent.config.check import DEFAULT_SCHEDULE, DEFAULT_TIMEOUT, label_name_problem, merge_defaults, shared_part
from pulse_agent.config.kinds import for_kind
from pulse_agent.config.model import AlertSpec, CheckSpec, MaintenanceWindow, Retries
from pulse_agent.durations import parse_duration
from pulse_agent.schedule import parse_schedule, time_zone
from pulse_agent.sizes import parse_size

# Keys whose every effect on a CheckSpec this module repeats; any other key takes the general path.
FAST_KEYS = frozenset(("name", "url", "schedule", "timezone", "missed", "timeout", "labels", "enabled"))
_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class FastPath:
    """What every common check of one load shares: the defaults it takes, the top-level maintenance windows,
    and the parts the general builder makes of the keys such a check does not have."""

    defaults: dict[str, Any]
    windows: tuple[MaintenanceWindow, ...]
    parsed: dict[tuple[Any, ...], Any]  # the dict CheckBuilder.shared uses for this load: both paths share parts
    retries: Retries
    alert: AlertSpec
    max_body_size: int

    def spec(self, raw: dict[str, Any]) -> CheckSpec | None:
        """raw's CheckSpec when it is a common check, or None: the general builder builds (and places any problem)."""
        if not raw.keys() <= FAST_KEYS:
            return None
        merged = merge_defaults(self.defaults, raw) if self.defaults else raw
        name, url = merged.get("name"), merged.get("url")
        if not isinstance(name, str) or not isinstance(url, str) or url.partition("://")[0].lower() not in _SCHEMES:
            return None
        try:
            parts = urlsplit(url)
            if not parts.hostname:
                return None
            parts.port  # noqa: B018  (raises on a port that is not a number from 0 to 65535)
            tz = merged.get("timezone", "UTC")
            time_zone(tz)
            timeout = shared_part(self.parsed, parse_duration, merged.get("timeout", DEFAULT_TIMEOUT))
            schedule = shared_part(self.parsed, parse_schedule, merged.get("schedule", DEFAULT_SCHEDULE), tz)
            labels = merged.get("labels") or {}
            if timeout <= 0 or any(label_name_problem(key) is not None for key in labels):
                return None
        except Exception:  # the general builder reports it, with its place
            return None
        return CheckSpec(
            name=name,
            url=url,
            schedule=schedule,
            timezone=tz,
            missed=merged.get("missed", "skip"),
            timeout=timeout,
            retries=self.retries,
            max_body_size=self.max_body_size,
            alert=self.alert,
            maintenance=self.windows,
            labels=tuple(sorted(labels.items())),
            enabled=merged.get("enabled", True),
        )


def fast_path(defaults: dict[str, Any], windows: tuple[MaintenanceWindow, ...], parsed: dict[tuple[Any, ...], Any]) -> FastPath | None:
    """The fast path of one load, or None when the defaults set a key it does not know (then no check takes it)."""
    own = for_kind("http", defaults)
    if not own.keys() <= FAST_KEYS:
        return None
    # What CheckBuilder.build makes of absent retries, alert and max_body_size, as the same shared objects.
    seconds = [shared_part(parsed, parse_duration, n) for n in (1, 30, 0)]
    retries = shared_part(parsed, Retries, 1, seconds[0], seconds[1])
    alert = shared_part(parsed, AlertSpec, (), 3, 2, seconds[2], True, False)
    return FastPath(own, windows, parsed, retries, alert, shared_part(parsed, parse_size, "1MiB"))
