"""Pure: whether the bytes a tcp:// or tls:// check read hold its `expect.receive`, and how bytes are shown
in a message (escaped, cut), so that a failure names what was expected and what came."""

from __future__ import annotations

from pulse_agent.config.expectations import show_value
from pulse_agent.config.stream import receive_regex
from pulse_agent.probe.regex import compile_regex

SHOWN = 120  # characters of received bytes a message or result shows


def holds(expected: str, data: bytes) -> bool:
    """Whether data contains the text expected, or (for /regex/) RE2 finds the regex in it."""
    regex = receive_regex(expected)
    if regex is None:
        return expected.encode("utf-8") in data
    return compile_regex(regex).search(bytes(data)) is not None


def show_bytes(data: bytes | bytearray, limit: int = SHOWN, *, quote: bool = True) -> str:
    """data as a (quoted) string: UTF-8 where it is, every control or undecodable byte escaped (\\r, \\x00),
    cut after `limit` characters with the total size."""
    text = bytes(data[: limit * 4]).decode("utf-8", "backslashreplace")
    shown = "".join(ch if ch.isprintable() and (ch != '"' or not quote) else _escape(ch) for ch in text[:limit])
    more = len(text) > limit or len(data) > limit * 4
    return (f'"{shown}"' if quote else shown) + (f"... ({len(data)} bytes)" if more else "")


def masked(data: bytes, hidden: tuple[bytes, ...]) -> bytes:
    """data with every hidden word (longest first) replaced by ***."""
    for word in hidden:
        data = data.replace(word, b"***")
    return data


def show_expected(expected: str) -> str:
    """expect.receive as a message shows it."""
    return expected if receive_regex(expected) is not None else show_value(expected)


def _escape(ch: str) -> str:
    return '\\"' if ch == '"' else repr(ch)[1:-1]  # a character that is not printable has an escaped repr
