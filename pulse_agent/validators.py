"""Shell: the config checks that look outside the config text, given to config building by its callers:
a ca_file must be a readable file now; a notifier URL must be one Apprise can use (imported on first use)."""

from __future__ import annotations

from pathlib import Path

from pulse_agent.config import Validators


def readable_file(path: str) -> str | None:
    """Why path is not a readable file, or None."""
    return None if Path(path).is_file() else f"{path!r} is not a readable file"


def apprise_url(url: str) -> str | None:
    """Why Apprise cannot use url, or None; Apprise is imported only by configs with notifiers."""
    from pulse_agent.alerts.notify import url_problem

    return url_problem(url)


SHELL_VALIDATORS = Validators(file=readable_file, notifier_url=apprise_url)
