"""Shell: the config checks that look outside the config text, given to config building by its callers:
a ca_file must be a readable file now; a client certificate must load; a notifier URL must be one Apprise
can use (imported on first use)."""

from __future__ import annotations

import ssl
from pathlib import Path

from pulse_agent.config import Validators
from pulse_agent.probe.tlsconf import no_password


def readable_file(path: str) -> str | None:
    """Why path is not a readable file, or None."""
    return None if Path(path).is_file() else f"{path!r} is not a readable file"


def client_cert(cert_file: str, key_file: str | None) -> str | None:
    """Why ssl cannot load this client certificate (and key), or None when it can."""
    for path in (cert_file, key_file):
        if path is not None and (problem := readable_file(path)) is not None:
            return problem
    try:
        ssl.create_default_context().load_cert_chain(cert_file, key_file, password=no_password)
    except (ssl.SSLError, OSError) as exc:
        return f"cannot load the client certificate and key: {getattr(exc, 'reason', None) or exc}"
    return None


def apprise_url(url: str) -> str | None:
    """Why Apprise cannot use url, or None; Apprise is imported only by configs with notifiers."""
    from pulse_agent.alerts.notify import url_problem

    return url_problem(url)


def icmp_socket(url: str) -> str | None:
    """Why this process cannot ping for an icmp:// check of url (no raw or ping socket), or None."""
    from pulse_agent.probe.icmp import socket_problem

    return socket_problem(url)


SHELL_VALIDATORS = Validators(file=readable_file, notifier_url=apprise_url, client_cert=client_cert, icmp=icmp_socket)
