"""The transport settings of a check: which client runs it, and whether its certificate and proxy can be used."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pulse_agent.config.model import Transport
from pulse_agent.redact import redact_url


def no_password() -> bytes:
    """Password callback for client keys: an encrypted key fails to load instead of prompting on the terminal."""
    return b""


def transport_of(settings: dict[str, Any]) -> Transport:
    """Which client runs a check: httpx for HTTP/2 and proxies, our HTTP/1.1 client for everything else."""
    if settings.get("http_version") == "2" or settings.get("proxy_url") or settings.get("proxy_from_environment"):
        return "httpx"
    return "fast"


def client_cert_problem(cert_file: str, key_file: str | None) -> str | None:
    """Why ssl cannot load this client certificate (and key), or None when it can."""
    for path in (cert_file, key_file):
        if path is not None and not Path(path).is_file():
            return f"{path!r} is not a readable file"
    try:
        ssl.create_default_context().load_cert_chain(cert_file, key_file, password=no_password)
    except (ssl.SSLError, OSError) as exc:
        return f"cannot load the client certificate and key: {getattr(exc, 'reason', None) or exc}"
    return None


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
