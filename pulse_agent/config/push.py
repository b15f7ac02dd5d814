"""Pure: the push: block of a push check (grace, token), checked and typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulse_agent.config.model import PushSpec
from pulse_agent.durations import parse_duration

DEFAULT_GRACE = 3600.0  # healthchecks.io's default grace time
MIN_TOKEN = 16  # characters: a shorter secret can be guessed by trying


def push_settings(get: Callable[..., Any], fail: Callable[[tuple[str, ...], str], None]) -> PushSpec:
    """The push: block read through a check builder's get (merged, schema-clean values) and fail (placed)."""
    grace = DEFAULT_GRACE
    raw_grace = get("push", "grace")
    if raw_grace is not None:
        try:
            grace = parse_duration(raw_grace)
        except ValueError as exc:
            fail(("push", "grace"), str(exc))
    token = get("push", "token")
    if not isinstance(token, str):  # missing or of another type: the schema said so
        token = ""
    elif len(token) < MIN_TOKEN:  # no length shown: it is a secret
        fail(("push", "token"), f"must be at least {MIN_TOKEN} characters (e.g. from `openssl rand -hex 16`)")
    elif any(not (33 <= ord(c) <= 126) for c in token):
        fail(("push", "token"), "must be printable ASCII without spaces (it travels in a URL and a header)")
    return PushSpec(grace=grace, token=token)
