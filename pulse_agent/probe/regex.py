"""Regular expressions of expectations, on RE2: matching takes time linear in the body whatever the
pattern, so a pattern like ^(a+)+$ cannot freeze the agent on a hostile body. Pure."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# Python's \Z (end of text) is RE2's \z: accept the Python spelling (an escaped backslash before Z is left alone).
_PY_END = re.compile(r"(?<!\\)((?:\\\\)*)\\Z")
MAX_PROGRAM_BYTES = 8 << 20  # RE2's memory for one compiled pattern (its default); bigger ones are refused


class RegexError(ValueError):
    """A pattern RE2 cannot compile; the message says why."""


@lru_cache(maxsize=4096)
def compile_regex(pattern: str, *, ignore_case: bool = False) -> Any:
    """The compiled pattern, matched against UTF-8 bytes; RegexError when RE2 refuses it."""
    # re2 imported by the first pattern: a worker or an agent whose checks have none never loads it
    # (2.5 MB a process; docs/performance.md, "Memory at 100,000 checks: origins, last results, lazy imports")
    import re2

    options = re2.Options()
    options.log_errors = False  # the reason goes into our error, not to stderr
    options.max_mem = MAX_PROGRAM_BYTES
    options.case_sensitive = not ignore_case
    try:
        return re2.compile(_PY_END.sub(r"\1\\z", pattern).encode("utf-8", "surrogatepass"), options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = "; RE2 syntax has no backreferences or lookaround" if "perl operator" in reason or "escape sequence" in reason else ""
        raise RegexError(f"invalid regular expression: {reason}{hint}") from None


def regex_problem(pattern: str) -> str | None:
    """Why pattern cannot be used, or None."""
    try:
        compile_regex(pattern)
    except RegexError as exc:
        return str(exc)
    return None


def regex_search(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """Whether pattern matches somewhere in text, in time linear in len(text)."""
    return compile_regex(pattern, ignore_case=ignore_case).search(text.encode("utf-8", "surrogatepass")) is not None
