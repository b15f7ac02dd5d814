"""Pure: the parts of a URL a request needs (parsed by probe/connect.py's target_of)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Target:
    """The parts of a URL a request needs."""

    tls: bool
    host: str  # for DNS and TLS server name (IDNA-encoded)
    port: int
    host_header: str
    path: str  # request target: path and query
    ip: bool  # host is an IP address: nothing to resolve
    authorization: str | None  # from user:password in the URL

    @property
    def origin(self) -> tuple[bool, str, int]:
        """Scheme, host and port: what a redirect must keep for credentials to follow it."""
        return (self.tls, self.host, self.port)
