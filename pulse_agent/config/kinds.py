"""Which kind of check a check is, and which of its settings mean something for that kind.

The URL's scheme chooses the kind (as in Gatus); a check with a `push:` block and no URL is a push
check. A setting written on a check of a kind it means nothing for is refused by `validate`, so that
no check passes with a setting it never looked at; one inherited from `defaults:` is left out.
"""

from __future__ import annotations

from typing import Any

from pulse_agent.config.model import CheckKind

# One entry per probe module (probe/kinds.py PROBES): a scheme missing here is refused with the list.
KIND_OF_SCHEME: dict[str, CheckKind] = {
    "http": "http",
    "https": "http",
    "tcp": "tcp",
    "tls": "tls",
    "dns": "dns",
    "icmp": "icmp",
}

# What every kind of check takes: identity, when it runs, how it alerts.
_COMMON = frozenset(
    ("name", "url", "schedule", "timezone", "missed", "timeout", "retries", "alert", "labels", "enabled", "slo",
     "maintenance", "expect", "depends_on")
)  # fmt: skip
_HTTP = frozenset(
    ("method", "headers", "body", "delivery", "idempotency_key", "max_body_size", "follow_redirects", "reuse_connections",
     "max_redirects", "tls_verify", "ca_file", "tls", "http_version", "proxy_url", "proxy_from_environment", "basic_auth",
     "bearer_token")
)  # fmt: skip
_TIMES = frozenset(("max_response_time", "degraded_response_time"))

SETTINGS: dict[CheckKind, frozenset[str]] = {
    "http": _COMMON | _HTTP,
    "tcp": _COMMON | {"send"},
    "tls": _COMMON | {"tls_verify", "ca_file", "tls", "starttls", "send"},
    "dns": _COMMON | {"dns"},
    "icmp": _COMMON | {"icmp"},
    "push": (_COMMON - {"url", "timeout", "retries", "missed"}) | {"push"},  # missed: a restart reports the latest missed due itself
}
EXPECT: dict[CheckKind, frozenset[str]] = {
    "http": _TIMES | {"status", "body_contains", "body_not_contains", "body_matches", "json", "headers",
                      "certificate_valid_for", "http_version", "tls_version"},
    "tcp": _TIMES | {"receive"},
    "tls": _TIMES | {"certificate_valid_for", "tls_version", "receive"},
    "dns": _TIMES | {"rcode", "answer", "answer_count", "authoritative"},
    "icmp": _TIMES | {"max_packet_loss"},
    "push": frozenset(("max_duration",)),
}  # fmt: skip


def kind_of(raw: dict[str, Any]) -> CheckKind | None:
    """The kind a check's own settings choose: push: makes a push check, else by the URL's scheme; None if unknown."""
    url = raw.get("url")
    if "push" in raw:  # with a url too, the url is the misplaced key: a push check has none
        return "push"
    if not url:
        return "push" if "push" in raw else "http"
    if not isinstance(url, str):
        return None
    return KIND_OF_SCHEME.get(url.split("://", 1)[0].lower()) if "://" in url else None


def scheme_problem(url: str) -> str | None:
    """Why url's scheme names no kind of check; None when it does."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in KIND_OF_SCHEME:
        return None
    have = ", ".join(f"{s}://" for s in KIND_OF_SCHEME)
    return f"{scheme + '://' if scheme else 'a URL without a scheme'} is not a kind of check: the URL's scheme must be one of {have}"


def misplaced(kind: CheckKind, raw: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """(key path, reason) for each setting a check writes that its kind never evaluates."""
    out: list[tuple[tuple[str, ...], str]] = []
    for key in raw:
        if key not in SETTINGS[kind] and any(key in keys for keys in SETTINGS.values()):
            out.append(((key,), f"{key!r} does not apply to a {kind} check; it is a setting of {_kinds_with(SETTINGS, key)} checks"))
    expect = raw.get("expect")
    for key in expect if isinstance(expect, dict) else ():
        if key not in EXPECT[kind] and any(key in keys for keys in EXPECT.values()):
            reason = f"a {kind} check cannot evaluate {key!r}; it is an expectation of {_kinds_with(EXPECT, key)} checks"
            out.append((("expect", key), reason))
    return out


def for_kind(kind: CheckKind, defaults: dict[str, Any]) -> dict[str, Any]:
    """The part of defaults: that applies to checks of kind (an HTTP default never reaches a DNS check)."""
    out = {k: v for k, v in defaults.items() if k in SETTINGS[kind]}
    if isinstance(expect := out.get("expect"), dict):
        out["expect"] = {k: v for k, v in expect.items() if k in EXPECT[kind]}
    return out


def _kinds_with(table: dict[CheckKind, frozenset[str]], key: str) -> str:
    return " and ".join(kind for kind, keys in table.items() if key in keys)
