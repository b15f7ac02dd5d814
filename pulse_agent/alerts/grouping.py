"""Grouping per notifier (group_by, group_wait, group_interval): which group an event joins, when
a group's message is due, and what that message says. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from pulse_agent.config.model import NotifierSpec

# How a group's title counts its members, by event, in this order.
EVENT_WORDS = {
    "failure": "down", "reminder": "still down", "resolved": "up again", "degraded": "degraded", "recovered": "fast again",
    "slo_burn": "burning error budget", "slo_recovered": "stopped burning",
    "rule_firing": "rules firing", "rule_resolved": "rules resolved",
}  # fmt: skip
GROUP_EVENT = "group"


def group_key(notifier: NotifierSpec, check: str, labels: Mapping[str, str]) -> str | None:
    """'team=payments' for group_by [team]; None when the notifier does not group."""
    if not notifier.group_by:
        return None
    return ", ".join(f"{name}={check if name == 'check' else labels.get(name, '')}" for name in notifier.group_by)


def group_due(first_created: float, last_sent: float | None, notifier: NotifierSpec) -> float:
    """When a group whose oldest waiting event is first_created sends: group_wait after it, and
    not before group_interval after the group's last message."""
    due = first_created + notifier.group_wait
    return due if last_sent is None else max(due, last_sent + notifier.group_interval)


def compose_group(key: str, members: Sequence[tuple[str, str]]) -> tuple[str, str, str]:
    """Title, body and Apprise type of one message for the (event, line) members of group key."""
    counts = Counter(event for event, _ in members)
    tally = ", ".join(f"{counts[e]} {word}" for e, word in EVENT_WORDS.items() if counts[e])
    title = f"[pulse] {key}: {tally}"
    body = "\n".join([f"{key}: {tally}", *(f"- {line}" for _, line in members)])
    bad = counts["failure"] + counts["reminder"] + counts["slo_burn"] + counts["rule_firing"]
    kind = "failure" if bad else "warning" if counts["degraded"] else "success"
    return title, body, kind
