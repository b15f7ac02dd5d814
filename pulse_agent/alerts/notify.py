"""Apprise: check that a URL parses, hint at it without secrets, and deliver one message to it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import apprise

from pulse_agent.alerts.sender import DELIVERY
from pulse_agent.alerts.template import NOTIFY_TYPE, compose, trial_fields
from pulse_agent.config.model import NotifierSpec
from pulse_agent.redact import redact_url

_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
log = logging.getLogger("pulse_agent.alerts")
# Apprise logs each problem itself, with no check or notifier named; every delivery captures
# them (log_callback) and folds them into our own lines, so its logger stays quiet.
logging.getLogger("apprise").propagate = False
logging.getLogger("apprise").addHandler(logging.NullHandler())


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use url (nothing is sent), or None."""
    logging.getLogger("apprise").disabled = True  # it logs every rejected URL itself
    try:
        plugin = apprise.Apprise.instantiate(url)
    finally:
        logging.getLogger("apprise").disabled = False
    if plugin is None:
        scheme = url.partition("://")[0][:20] if "://" in url else "(none)"  # urlsplit raises on some URLs
        return f"not a usable Apprise URL (scheme {scheme}); see https://github.com/caronc/apprise/wiki for the syntax"
    return None


def url_hint(url: str) -> str:
    """url with its secrets masked as Apprise prints it (it knows where each service keeps its
    tokens), then without user info: for logs, tables and CLI output."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return f"{urlsplit(url).scheme}://..."
    return redact_url(str(plugin.url(privacy=True)).partition("?")[0])


async def deliver(url: str, title: str, body: str, kind: str, timeout: float) -> str | None:
    """Send one message to url; None when delivered, else why not."""
    sender = apprise.Apprise()
    problems: list[str] = []
    with _captured(problems):  # what Apprise says while parsing the URL (an unknown option, ...)
        added = sender.add(url)
    if not added:
        return url_problem(url) or "not a usable Apprise URL"

    def collect(entry: object, *_: object) -> None:
        level = getattr(entry, "level", "")
        if str(getattr(level, "name", level)) in _LEVELS:
            problems.append(str(getattr(entry, "message", entry)))

    try:
        outcome = await sender.async_notify(body=body, title=title, notify_type=kind, timeout=timeout, log_callback=collect)
    except Exception as exc:  # a plugin's bug must not reach the agent
        return f"{type(exc).__name__}: {exc}"
    said = list(dict.fromkeys(problems))  # Apprise may say one thing twice
    if outcome:
        if said:
            fields = {"url": url_hint(url), **DELIVERY.get(), "warnings": said}
            log.warning("notification delivered with warnings from Apprise", extra=fields)
        return None
    status = outcome.results[0].status.name.lower() if outcome.results else "failure"
    return "; ".join(said) if said else f"delivery {status}"


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@contextmanager
def _captured(into: list[str]) -> Iterator[None]:
    """Apprise's warnings while the block runs (synchronous: no other delivery interleaves)."""
    handler = _Collect(into)
    logger = logging.getLogger("apprise")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


async def send_trial(notifier: NotifierSpec, message: str) -> list[tuple[str, str | None]]:
    """Send a test message to every URL of notifier at once; (masked URL, error or None) for each."""
    fields = trial_fields(notifier.name, message)
    title, body = compose(notifier, fields)
    DELIVERY.set({"notifier": notifier.name, "event": "test"})
    outcomes = await asyncio.gather(*(deliver(url, title, body, NOTIFY_TYPE["test"], notifier.timeout) for url in notifier.urls))
    return [(url_hint(url), error) for url, error in zip(notifier.urls, outcomes, strict=True)]
