"""Pure assertions: the facts of a response -> the expectations it failed."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pulse_agent.config.model import Expect
from pulse_agent.durations import format_duration

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Response:
    """What came back from one HTTP exchange."""

    status_code: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    elapsed: float  # seconds, request start to body read
    charset: str = "utf-8"
    cert_not_after: float | None = None  # epoch seconds, https only

    def text(self) -> str:
        """The body decoded by its charset; undecodable bytes replaced."""
        try:
            return self.body.decode(self.charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed expectation: a stable kind and what was expected and what came."""

    kind: str
    message: str


@lru_cache(maxsize=4096)
def compile_jsonpath(expr: str) -> Any:
    """Compiled JSONPath expression (cached; the same few are evaluated on every run)."""
    from jsonpath_ng.ext import parse

    return parse(expr)


def evaluate(expect: Expect, response: Response, now: float) -> tuple[list[Failure], bool]:
    """Every failed expectation, and whether the response was slow enough to be degraded."""
    failures: list[Failure] = []
    code = response.status_code
    if not any(rule.matches(code) for rule in expect.status):
        allowed = ", ".join(rule.text for rule in expect.status)
        failures.append(Failure("status", f"status {code} not in [{allowed}]"))
    limit = expect.max_response_time
    if limit is not None and response.elapsed > limit:
        failures.append(Failure("latency", f"response time {_ms(response.elapsed)} over max_response_time {_ms(limit)}"))
    failures.extend(_body_failures(expect, response))
    failures.extend(_header_failures(expect.headers, response.headers))
    failures.extend(_certificate_failures(expect.certificate_valid_for, response.cert_not_after, now))
    slow = expect.degraded_response_time
    return failures, slow is not None and response.elapsed > slow


def _body_failures(expect: Expect, response: Response) -> list[Failure]:
    if expect.body_contains is None and expect.body_matches is None and not expect.json:
        return []
    text = response.text()
    out = []
    if expect.body_contains is not None and expect.body_contains not in text:
        out.append(Failure("body", f"body does not contain {_show(expect.body_contains)}"))
    if expect.body_matches is not None and re.search(expect.body_matches, text) is None:
        out.append(Failure("body", f"body does not match /{expect.body_matches}/"))
    if expect.json:
        try:
            document = json.loads(text)
        except ValueError as exc:
            return [*out, Failure("json", f"body is not valid JSON ({exc})")]
        for expr, wanted in expect.json:
            found = [m.value for m in compile_jsonpath(expr).find(document)]
            got = found[0] if len(found) == 1 else (found if found else _MISSING)
            if got is _MISSING:
                out.append(Failure("json", f"{expr}: expected {_show(wanted)}, not found"))
            elif not _same(got, wanted):
                out.append(Failure("json", f"{expr}: expected {_show(wanted)}, got {_show(got)}"))
    return out


def _same(got: Any, wanted: Any) -> bool:
    """JSON equality: true is not 1, and 1 is 1.0."""
    return got == wanted and isinstance(got, bool) == isinstance(wanted, bool)


def _header_failures(rules: tuple[tuple[str, str], ...], headers: Mapping[str, str]) -> list[Failure]:
    out = []
    for name, pattern in rules:
        value = headers.get(name)
        if value is None:
            out.append(Failure("header", f"header {name}: expected {_show(pattern)}, missing"))
        elif not fnmatch.fnmatchcase(value.lower(), pattern.lower()):
            out.append(Failure("header", f"header {name}: expected {_show(pattern)}, got {_show(value)}"))
    return out


def _certificate_failures(valid_for: float | None, not_after: float | None, now: float) -> list[Failure]:
    if valid_for is None or not_after is None:
        return []
    left = not_after - now
    if left >= valid_for:
        return []
    when = datetime.fromtimestamp(not_after, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    remaining = "already expired" if left <= 0 else f"in {format_duration(round(left))}"
    return [Failure("certificate", f"certificate expires {when} ({remaining}); expected at least {format_duration(valid_for)}")]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
