"""Pure: the settings of tcp:// and tls:// checks (host:port, send, expect.receive, starttls), each problem
reported at its place through the builder's callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pulse_agent.config.expectations import header_regex, show_value
from pulse_agent.config.load import FromEnv
from pulse_agent.config.model import CheckKind, Starttls
from pulse_agent.probe.regex import regex_problem
from pulse_agent.redact import redact_url

STREAM_KINDS: frozenset[CheckKind] = frozenset(("tcp", "tls"))
MIN_HIDDEN = 4  # shorter words of a send are not masked in what is shown: "OK", "+", "\r\n" would blank every answer


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What a tcp:// or tls:// check adds to a CheckSpec."""

    send: bytes | None = None
    starttls: Starttls | None = None
    send_hidden: tuple[bytes, ...] = ()


NO_STREAM = StreamSettings()


def receive_regex(expected: str) -> str | None:
    """The regex of a /regex/ expect.receive (the convention of expect.headers); None for a substring."""
    return header_regex(expected)


def endpoint_problem(url: str) -> str | None:
    """Why a tcp:// or tls:// URL is not scheme://host:port; None when it is."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None  # the builder reports an unreadable URL already
    scheme = parts.scheme.lower()
    if not parts.hostname:
        return None  # reported as "has no host"
    if parts.username is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"{redact_url(url)!r}: a {scheme}:// URL is {scheme}://host:port only (no user, path or query)"
    if not port:
        return f"{redact_url(url)!r} needs a port: {scheme}://{parts.hostname}:PORT (there is no default port)"
    return None


def stream_settings(kind: CheckKind, url: str, get: Callable[..., Any], fail: Callable[[tuple[str, ...], str], None]) -> StreamSettings:
    """The send/starttls of a tcp or tls check; problems go to fail(key path, message)."""
    if kind not in STREAM_KINDS:
        return NO_STREAM
    if url and (problem := endpoint_problem(url)) is not None:
        fail(("url",), problem)
    expected = get("expect", "receive")
    regex = receive_regex(expected) if isinstance(expected, str) else None
    if regex is not None and (problem := regex_problem(regex)) is not None:
        fail(("expect", "receive"), f"{problem} in {show_value(expected)}")
    send = get("send")
    data = send.encode("utf-8") if isinstance(send, str) else None
    return StreamSettings(send=data, starttls=get("starttls"), send_hidden=hidden_words(data) if isinstance(send, FromEnv) else ())


def hidden_words(send: bytes | None) -> tuple[bytes, ...]:
    """The words of a send that took text from ${VAR}s (a password, perhaps), longest first: a server echoing
    them back (`-ERR unknown command 'AUTH s3cret'`) must not put them in results or messages."""
    words = {word for word in (send or b"").split() if len(word) >= MIN_HIDDEN}
    return tuple(sorted(words, key=lambda w: (-len(w), w)))
