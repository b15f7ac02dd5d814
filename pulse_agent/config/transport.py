"""The transport settings of a check: which client runs it, and whether its certificate and proxy can be used."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pulse_agent.config.model import Transport
from pulse_agent.redact import redact_url


def transport_of(settings: dict[str, Any]) -> Transport:
    """Which client runs a check: httpx for HTTP/2 and proxies, our HTTP/1.1 client for everything else."""
    if settings.get("http_version") == "2" or settings.get("proxy_url") or settings.get("proxy_from_environment"):
        return "httpx"
    return "fast"


def proxy_url_problem(url: str) -> str | None:
    """Why url cannot be a forward proxy, or None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"{redact_url(url)!r} is not a URL: {exc}"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"{redact_url(url)!r}: a proxy URL is http://host:port or https://host:port"
    if parts.path not in ("", "/") or parts.query:
        return f"{redact_url(url)!r}: a proxy URL has no path or query"
    return None
