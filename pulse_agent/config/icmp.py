"""Pure: an ICMP check's `icmp:` block and expect.max_packet_loss, checked so that a run fits in its timeout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pulse_agent.config.dns import bare_url_problem
from pulse_agent.durations import format_duration, parse_duration

DEFAULT_COUNT = 3
DEFAULT_INTERVAL = 1.0  # ping(8)'s and icmplib's default
DEFAULT_SIZE = 56  # payload bytes, ping(8)'s default: 64-byte ICMP packets
MIN_INTERVAL = 0.01


@dataclass(frozen=True, slots=True)
class IcmpCheck:
    """How an ICMP check pings: `count` echo requests `interval` seconds apart with `size` payload bytes, and the
    packet loss (percent) above which the run fails; None: it fails only when no reply came."""

    count: int = DEFAULT_COUNT
    interval: float = DEFAULT_INTERVAL
    size: int = DEFAULT_SIZE
    max_packet_loss: float | None = None


def icmp_check(get: Callable[..., Any], fail: Callable[[tuple[str, ...], str], None], timeout: float, url: str) -> IcmpCheck | None:
    """The check's icmp: block and max_packet_loss; every request must be sent within `timeout`."""
    if (problem := bare_url_problem(url, "icmp://host (ICMP has no ports)", port=False)) is not None:
        fail(("url",), problem)
        return None
    count = get("icmp", "count", default=DEFAULT_COUNT)
    size = get("icmp", "size", default=DEFAULT_SIZE)
    try:
        interval = parse_duration(get("icmp", "interval", default=DEFAULT_INTERVAL))
    except (ValueError, TypeError) as exc:
        fail(("icmp", "interval"), str(exc))
        return None
    if not isinstance(count, int) or not isinstance(size, int):
        return None  # the schema said why (or a ${VAR} placeholder stands there)
    if interval < MIN_INTERVAL:
        fail(("icmp", "interval"), f"must be at least {format_duration(MIN_INTERVAL)}")
        return None
    if count > 1 and (count - 1) * interval >= timeout:
        blamed = next((keys for keys in (("icmp", "interval"), ("icmp", "count")) if get(*keys) is not None), ("timeout",))
        fail(
            blamed,
            f"{count} requests {format_duration(interval)} apart take {format_duration((count - 1) * interval)} to send, "
            f"not less than the timeout {format_duration(timeout)}: the last would never be answered in time; "
            "lower count or interval, or raise timeout",
        )
        return None
    loss = get("expect", "max_packet_loss")
    if isinstance(loss, str):  # a ${VAR}: unset, a placeholder (validate without secrets); set, not a number
        fail(("expect", "max_packet_loss"), f"{loss!r} is not a percentage from 0 to 100")
        loss = None
    if loss is not None and not 0 <= float(loss) <= 100:  # NaN too: the schema's bounds let it through
        fail(("expect", "max_packet_loss"), f"{loss} is not a percentage from 0 to 100")
        return None
    return IcmpCheck(count, interval, size, None if loss is None else float(loss))
