"""Pure: parsing the values of `expect` that need more than the schema (JSON rules, header regexes, JSONPath),
shared by config building (to refuse bad ones with their place) and the probe (to evaluate them)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pulse_agent.config.model import JsonRule
from pulse_agent.probe.regex import RegexError, compile_regex

_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_ORDERING = ("<", "<=", ">", ">=")


def parse_json_rule(expected: object) -> JsonRule:
    """An expect.json value: a plain value (equality), or '< 100', '!= null', 'exists', 'not exists'."""
    if isinstance(expected, str):
        text = expected.strip()
        if text in ("exists", "not exists"):
            return JsonRule(text, None, text)
        for op in _OPERATORS:
            if text.startswith(op):
                operand = text[len(op) :].strip()
                try:
                    value = json.loads(operand)
                except ValueError:
                    value = operand  # a bare word: != DOWN
                if op in _ORDERING and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise ValueError(f"{expected!r}: {op} compares numbers; write e.g. '{op} 100'")
                return JsonRule(op, value, text)
    return JsonRule("==", expected, show_value(expected))


def header_regex(pattern: str) -> str | None:
    """The regex of a /regex/ header expectation; None for a glob."""
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        return pattern[1:-1]
    return None


def header_rule_problem(pattern: str) -> str | None:
    """Why a header expectation cannot be used, or None (a glob always can: * and ? are literal-safe)."""
    regex = header_regex(pattern)
    if regex is None:
        return None
    try:
        compile_regex(regex, ignore_case=True)
    except RegexError as exc:
        return f"{exc} in {show_value(pattern)}"
    return None


@lru_cache(maxsize=4096)
def compile_jsonpath(expr: str) -> Any:
    """Compiled JSONPath expression (cached; the same few are evaluated on every run)."""
    from jsonpath_ng.ext import parse

    return parse(expr)


def show_value(value: Any) -> str:
    """A value as a failure message shows it: JSON, cut at 80 characters."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
