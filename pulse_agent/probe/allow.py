"""Which targets a /probe module may reach: URL globs and address CIDRs. Pure."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pulse_agent.probe.target import Target

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_DEFAULT_PORT = {"http": ":80", "https": ":443"}


def url_of(target: Target) -> str:
    """The canonical URL of a parsed target: lower-case scheme and host, no default port, no user:password."""
    return ("https" if target.tls else "http") + "://" + target.host_header + target.path


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A URL glob as a regex over canonical URLs: * in scheme://host:port never crosses '/', ':' or '@'
    (so *.example.com cannot be satisfied by evil.com/x.example.com), * in the path matches anything."""
    scheme, sep, rest = glob.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORT:
        raise ValueError(f"{glob!r} is neither a CIDR nor a URL glob starting with http:// or https://")
    authority, _, path = rest.partition("/")
    authority = authority.lower().removesuffix(_DEFAULT_PORT[scheme])
    if not authority:
        raise ValueError(f"{glob!r} has no host (write * for any host)")
    host = "[^/:@]*".join(re.escape(part) for part in authority.split("*"))
    return re.compile(f"{scheme}://{host}/" + ".*".join(re.escape(part) for part in path.split("*")))


def network_of(entry: str) -> Network | None:
    """A CIDR or single address as a network; None when the entry is not one."""
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def entry_problem(entry: str) -> str | None:
    """Why an allowed_targets entry is neither a CIDR nor a URL glob; None when it is one."""
    if network_of(entry) is not None:
        return None
    try:
        glob_pattern(entry)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True, slots=True)
class AllowedTargets:
    """A module's allowed_targets, compiled."""

    globs: tuple[re.Pattern[str], ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowedTargets:
        """Compile entries (each already accepted by entry_problem)."""
        globs, networks = [], []
        for entry in entries:
            network = network_of(entry)
            if network is not None:
                networks.append(network)
            else:
                globs.append(glob_pattern(entry))
        return cls(tuple(globs), tuple(networks))

    def url_allowed(self, url: str) -> bool:
        """Whether a canonical URL matches one of the globs."""
        return any(g.fullmatch(url) for g in self.globs)

    def addresses_allowed(self, addresses: Sequence[str]) -> bool:
        """Whether there are addresses and every one of them falls in one of the networks."""
        if not addresses or not self.networks:
            return False
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address.partition("%")[0])  # drop an IPv6 zone
            except ValueError:
                return False
            if not any(ip in n for n in self.networks):
                return False
        return True

    def allows(self, target: Target, addresses: Sequence[str]) -> bool:
        """Whether a connection to target at these addresses is allowed."""
        return self.url_allowed(url_of(target)) or self.addresses_allowed(addresses)
