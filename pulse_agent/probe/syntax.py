"""What HTTP allows in a request: header names and values (RFC 9110 5.1, 5.5), the request target (RFC 3986)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(r"[\r\n\0]")
# Everything but unreserved, sub-delims, ":@/?" and the IPv6 brackets, and a "%" that starts no %XX escape.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::[0-9]{1,5})?")  # RFC 3986 host [":" port]
_UNSAFE_IN_TARGET = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%\[\]]|%(?![0-9A-Fa-f]{2})")


def header_problem(name: str, value: object) -> str | None:
    """Why a request header cannot be sent as written; None when it can. Never quotes the value (secrets)."""
    if not is_token(name):
        return f"header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)"
    text = str(value)
    if _FORBIDDEN_IN_VALUE.search(text):
        return f"value of header {name} contains a line break (CR or LF) or NUL; a variable read from a file with a trailing newline?"
    if name.lower() == "host" and host_name(text) is None:
        return f"header Host: expected host or host:port, got {text!r}"
    return None


def is_token(name: str) -> bool:
    """Whether name is an HTTP token, as a header name must be."""
    return _TOKEN.fullmatch(name) is not None


def host_name(host_header: str) -> str | None:
    """The host of a Host header value (no port, no brackets, lower case); None when it is not host[:port]."""
    if not _HOST.fullmatch(host_header.strip()):
        return None
    try:
        parts = urlsplit("//" + host_header.strip())
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return parts.hostname


def encode_target(target: str) -> str:
    """A path and query percent-encoded as UTF-8 where HTTP needs it; valid %XX escapes kept as they are."""
    if _UNSAFE_IN_TARGET.search(target) is None:
        return target  # nearly every URL
    return _UNSAFE_IN_TARGET.sub(_escape, target)


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))
