"""Pure assertions: the facts of a response -> the expectations it failed."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pulse_agent.config.expectations import compile_jsonpath, header_regex, show_value
from pulse_agent.config.model import Expect, JsonRule
from pulse_agent.durations import format_duration
from pulse_agent.probe.regex import regex_search
from pulse_agent.result import Failure


@dataclass(frozen=True, slots=True)
class Response:
    """What came back from one HTTP exchange."""

    status_code: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    elapsed: float  # seconds, request start to body read
    charset: str = "utf-8"
    cert_not_after: float | None = None  # epoch seconds, https only
    http_version: str = "1.1"  # "1.0", "1.1" or "2"
    tls_version: str | None = None  # "1.2", "1.3", ...; None over http

    def text(self) -> str:
        """The body decoded by its charset; undecodable bytes replaced."""
        try:
            return self.body.decode(self.charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


_ORDERING = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


def evaluate(expect: Expect, response: Response, now: float) -> tuple[list[Failure], bool]:
    """Every failed expectation, and whether the response was slow enough to be degraded."""
    try:
        return _evaluate(expect, response, now)
    except Exception as exc:  # a bug of ours fails this run (stored, alerted), never the agent
        return [Failure("internal", f"internal error evaluating the response: {type(exc).__name__}: {str(exc)[:200]}")], False


def _evaluate(expect: Expect, response: Response, now: float) -> tuple[list[Failure], bool]:
    failures: list[Failure] = []
    code = response.status_code
    if not any(rule.matches(code) for rule in expect.status):
        allowed = ", ".join(rule.text for rule in expect.status)
        failures.append(Failure("status", f"status {code} not in [{allowed}]"))
    latency, degraded = response_time_failures(expect, response.elapsed)
    failures.extend(latency)
    failures.extend(_body_failures(expect, response))
    failures.extend(_header_failures(expect.headers, response.headers))
    failures.extend(certificate_failures(expect.certificate_valid_for, response.cert_not_after, now))
    failures.extend(_version_failures(expect, response))
    return failures, degraded


def response_time_failures(expect: Expect, elapsed: float, what: str = "response time") -> tuple[list[Failure], bool]:
    """max_response_time's failure, if elapsed (seconds) is over it, and whether elapsed is over degraded_response_time."""
    limit, slow = expect.max_response_time, expect.degraded_response_time
    failures = []
    if limit is not None and elapsed > limit:
        failures.append(Failure("latency", f"{what} {_ms(elapsed)} over max_response_time {_ms(limit)}"))
    return failures, slow is not None and elapsed > slow


def _body_failures(expect: Expect, response: Response) -> list[Failure]:
    if expect.body_contains is None and expect.body_not_contains is None and expect.body_matches is None and not expect.json:
        return []
    text = response.text()
    out = []
    if expect.body_contains is not None and expect.body_contains not in text:
        out.append(Failure("body", f"body does not contain {show_value(expect.body_contains)}"))
    if expect.body_not_contains is not None and expect.body_not_contains in text:
        out.append(Failure("body", f"body contains {show_value(expect.body_not_contains)}"))
    if expect.body_matches is not None and not regex_search(expect.body_matches, text):
        out.append(Failure("body", f"body does not match /{expect.body_matches}/"))
    if expect.json:
        try:
            document = json.loads(text)
            found = [(expr, rule, [m.value for m in compile_jsonpath(expr).find(document)]) for expr, rule in expect.json]
        except ValueError as exc:
            return [*out, Failure("json", f"body is not valid JSON ({exc})")]
        except RecursionError:  # json and JSONPath recurse per level: the interpreter's limit bounds the depth
            return [*out, Failure("json", "body is JSON nested too deeply to evaluate (about 900 levels at most)")]
        for expr, rule, values in found:
            problem = _json_problem(rule, values)
            if problem is not None:
                out.append(Failure("json", f"{expr}: expected {rule.text}, {problem}"))
    return out


def _json_problem(rule: JsonRule, found: list[Any]) -> str | None:
    """What is wrong with the values a JSONPath found, or None when the rule holds."""
    if rule.op == "exists":
        return None if found else "not found"
    if rule.op == "not exists":
        return None if not found else f"got {show_value(found[0] if len(found) == 1 else found)}"
    if not found:
        return "not found"
    got = found[0] if len(found) == 1 else found
    if rule.op == "==":
        ok = _same(got, rule.value)
    elif rule.op == "!=":
        ok = not _same(got, rule.value)
    else:
        ok = isinstance(got, (int, float)) and not isinstance(got, bool) and _ORDERING[rule.op](float(got), float(rule.value))  # type: ignore[arg-type]
    return None if ok else f"got {show_value(got)}"


def _same(got: Any, wanted: Any) -> bool:
    """JSON equality: true is not 1, and 1 is 1.0."""
    return got == wanted and isinstance(got, bool) == isinstance(wanted, bool)


def _header_failures(rules: tuple[tuple[str, str], ...], headers: Mapping[str, str]) -> list[Failure]:
    out = []
    for name, pattern in rules:
        value = headers.get(name)
        if value is None:
            out.append(Failure("header", f"header {name}: expected {show_value(pattern)}, missing"))
        elif not _header_matches(value, pattern):
            out.append(Failure("header", f"header {name}: expected {show_value(pattern)}, got {show_value(value)}"))
    return out


def _header_matches(value: str, pattern: str) -> bool:
    regex = header_regex(pattern)
    if regex is not None:
        return regex_search(regex, value, ignore_case=True)
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def certificate_failures(valid_for: float | None, not_after: float | None, now: float) -> list[Failure]:
    """A peer certificate that expires sooner than valid_for seconds from now (or none to check)."""
    if valid_for is None:
        return []
    if not_after is None:  # e.g. redirected to plain http: what was asked cannot be checked, so it fails
        return [Failure("certificate", f"no peer certificate to check; expected one valid for at least {format_duration(valid_for)}")]
    left = not_after - now
    if left >= valid_for:
        return []
    when = datetime.fromtimestamp(not_after, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    remaining = "already expired" if left <= 0 else f"in {format_duration(round(left))}"
    return [Failure("certificate", f"certificate expires {when} ({remaining}); expected at least {format_duration(valid_for)}")]


def _version_failures(expect: Expect, response: Response) -> list[Failure]:
    out = []
    if expect.http_version is not None and response.http_version != expect.http_version:
        out.append(Failure("version", f"expected HTTP/{expect.http_version}, got HTTP/{response.http_version}"))
    if expect.tls_version is not None and response.tls_version != expect.tls_version:
        got = f"TLS {response.tls_version}" if response.tls_version else "no TLS (the final response came over http)"
        out.append(Failure("version", f"expected TLS {expect.tls_version}, got {got}"))
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"
