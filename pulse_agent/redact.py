"""What may be shown of a secret-bearing value. Pure.

One place decides how a URL is shown (API answers, notification fields, logs, config errors)
and which config keys hold secrets whose values an error message must never echo.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# Config keys whose values are secrets (or may carry them): an error about them, or about
# anything under them, names the key and the expected type, never the value.
SECRET_KEYS = frozenset({"api_token", "basic_auth", "bearer_token", "headers", "password", "push", "send", "token", "urls", "username"})
# Keys whose values are URLs: shown through redact_url.
URL_KEYS = frozenset({"url", "proxy_url"})


def redact_url(url: str) -> str:
    """url with its user info and every query value masked, and no fragment.

    `https://user:pw@host:8443/p?api_key=k&x=1#f` -> `https://***@host:8443/p?api_key=***&x=***`.
    The scheme, host, port, path and query keys stay, so the URL is still recognisable. Text
    that does not parse as a URL at all is masked whole.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in the host
        return MASK
    netloc = parts.netloc
    at = netloc.rfind("@")
    if at >= 0:
        netloc = f"{MASK}@{netloc[at + 1 :]}"
    query = "&".join(_mask_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _mask_pair(pair: str) -> str:
    key, eq, _ = pair.partition("=")
    return f"{key}={MASK}" if eq else MASK if key else ""


def is_secret_path(path: tuple[str | int, ...]) -> bool:
    """Whether a config key path is (or lies under) a key holding secrets."""
    return any(isinstance(part, str) and part in SECRET_KEYS for part in path)


def shown(path: tuple[str | int, ...], value: object) -> object:
    """value as a message about config key path may show it: HIDDEN for secrets, a redacted URL
    for URL keys, else value itself."""
    if is_secret_path(path):
        return HIDDEN
    if path and path[-1] in URL_KEYS and isinstance(value, str):
        return redact_url(value)
    if _holds_secret(value):  # a misplaced block with a notifier's urls or a check's url inside: only its shape
        return _Shape(value)  # type: ignore[arg-type]
    return value


def _holds_secret(value: object, depth: int = 0) -> bool:
    """Whether a mapping or list has a secret or URL key at any depth (bounded: YAML nests finitely)."""
    if depth > 50:
        return True
    if isinstance(value, dict):
        return any(k in SECRET_KEYS or k in URL_KEYS or _holds_secret(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_secret(v, depth + 1) for v in value)
    return False


class _Hidden:
    """Stands for a secret value in messages."""

    def __repr__(self) -> str:
        return "(value hidden: secret)"


HIDDEN = _Hidden()


class _Shape:
    """Stands for a mapping or list in messages: what it is, not what it holds."""

    def __init__(self, value: dict[object, object] | list[object]) -> None:
        self.text = (f"(a mapping of {', '.join(map(str, list(value)[:5]))}{', ...' if len(value) > 5 else ''})"
                     if isinstance(value, dict) else f"(a list of {len(value)} item{'s' if len(value) != 1 else ''})")  # fmt: skip

    def __repr__(self) -> str:
        return self.text
