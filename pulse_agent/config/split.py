"""One large config parsed as several parts at once: the list of checks cut between items, each part
parsed (by its own child process, config/child.py) with the text before the list, and the parts' documents
joined into the one a parse of the whole text gives.

YAML cannot be parsed from the middle, so a text is cut only where that is safe to prove: the list is the
value of a top-level `checks:` written last in the file, in block style, each item starting on a line of
its own (`  - ...`) and every other line of it indented deeper (no comment, key or `---` at the list's
indentation or left of it). A part is the text before the list, blank lines standing for the lines of
the parts before it (so every line and column is the whole text's), and its own items. A block scalar
ends at the next item's line as it does in the whole text; a quote or flow collection left open at a cut
ends its part's parse in an error. A list with an anchor in it is not cut (the whole text refuses an anchor
defined twice, which no part alone sees; what looks like one inside a quoted text counts too); its items
may use the head's anchors. Any error, unset variable or `<<` merge in a part, or more values than the
whole text's alias budget, and the caller parses the whole text instead (join gives None): the document is
always the whole parse's, only sooner. The same cut, before every item (items), lets a reload parse only
the items an edit changed (config/reparse.py).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulse_agent.config.load import MIN_NODE_BUDGET, Document, Positions, parse_document

_AMPERSAND = re.compile(r"&[^\s\[\]{},]")  # `&name`: an anchor when a node can start before it (see _anchored)
_NODE_START = re.compile(r"[\s\[{,]")


@dataclass(frozen=True, slots=True)
class Plan:
    """A text cut into parts: the text before the list (ending with its `checks:` line) and each part's text."""

    head: str
    parts: list[str]


def plan(text: str, parts: int) -> Plan | None:
    """The text cut into up to parts parts of about equal size, or None when it cannot be cut safely."""
    found = _scan(text) if parts >= 2 else None
    if found is None or len(found[2]) < parts:
        return None
    head, body, starts, _ = found
    cuts = [0] + [starts[len(starts) * k // parts] for k in range(1, parts)] + [len(body)]
    texts = [
        head + "\n" * cuts[k] + "\n".join(body[cuts[k] : cuts[k + 1]]) + ("\n" if k < parts - 1 else "")
        for k in range(parts)
    ]  # fmt: skip
    return Plan(head, texts)


@dataclass(frozen=True, slots=True)
class Items:
    """A text cut before each item of its list: the text before the list (ending with its `checks:` line)
    and each item's text (its lines, with the blank and deeper lines after it, each ending with its newline
    but the text's last one when the text has none), so that head + "".join(items) is the text."""

    head: str
    items: list[str]
    indent: int = 0  # the spaces before each item's `-`

    @property
    def marker(self) -> str:
        """What starts each item's line, with the newline before it (every such line starts an item)."""
        return "\n" + " " * self.indent + "-"


def items(text: str) -> Items | None:
    """The text cut before each item by plan's rules, or None when it cannot be cut safely (or the head
    defines an anchor: an item's alias to it would have to be counted against the alias budget)."""
    found = _scan(text)
    if found is None or _anchored(found[0], 0):
        return None
    head, body, starts, indent = found
    begins, ends = [0, *starts[1:]], [*starts[1:], len(body)]  # blank lines before the first item are the first's
    cut = ["\n".join(body[b:e]) + ("\n" if e < len(body) else "") for b, e in zip(begins, ends, strict=True)]
    return Items(head, cut, indent)


def _anchored(text: str, start: int) -> bool:
    """Whether an anchor `&name` stands where a node can start (a URL's `?a=1&b=2` is none) in text from start on
    (start: the beginning of a line)."""
    for m in _AMPERSAND.finditer(text, start):
        at = m.start()
        if at == start or _NODE_START.match(text, at - 1):
            return True
    return False


def _scan(text: str) -> tuple[str, list[str], list[int], int] | None:
    """(the head, the list's lines, the indexes of those that start an item, their indentation), or None when the text
    cannot be cut safely (see the module's docstring)."""
    if any(c in text for c in "\r\x85\u2028\u2029"):  # line breaks other than \n: count no lines
        return None
    lines = text.split("\n")
    at = [i for i, line in enumerate(lines) if line.startswith("checks:")]
    if len(at) != 1 or lines[at[0]].rstrip(" ") != "checks:":
        return None
    head, body = "\n".join(lines[: at[0] + 1]) + "\n", lines[at[0] + 1 :]
    if _anchored(text, len(head)):  # an anchor defined twice is an error a part alone cannot see
        return None
    first = next((i for i, line in enumerate(body) if line.strip()), None)
    if first is None:
        return None
    indent = len(body[first]) - len(body[first].lstrip(" "))
    item = " " * indent + "-"
    starts: list[int] = []  # the lines that start an item
    for i, line in enumerate(body):
        if not line.strip():
            continue
        if line.startswith(item) and line[indent + 1 : indent + 2] in (" ", ""):
            starts.append(i)
        elif len(line) - len(line.lstrip(" ")) <= indent:
            return None  # a comment, key, tab or document marker at the list's indentation or left of it
    if not starts or starts[0] != first:
        return None
    return head, body, starts, indent


def bare_head(head: Document) -> bool:
    """Whether head (a text's lines up to its `checks:` line, parsed alone) is a good mapping whose last key is
    `checks` with nothing after it: only then are the lines after it the list's items (not, say, lines of a
    quoted string that a `checks :` key's flow list opened)."""
    data = head.data
    return not head.errors and isinstance(data, dict) and list(data)[-1:] == ["checks"] and data["checks"] is None


def join(text: str, source: str, head: Document, docs: list[Document]) -> Document | None:
    """The document of the whole text from the documents of its parts (head: the parse of plan's head alone),
    or None when any part says that the parts may not be the whole (see the module's docstring)."""
    if not bare_head(head):
        return None
    n_values, n_keys = len(head.values), len(head.keys)
    data: dict[str, Any] | None = None
    values: array[int] = array("q")
    keys: array[int] = array("q")
    for doc in docs:
        if doc.errors or doc.unknown or doc.needs or not isinstance(doc.data, dict) or not isinstance(doc.data.get("checks"), list):
            return None
        v, k = _packed(doc.values), _packed(doc.keys)
        if v is None or k is None:  # a << merge: positions out of walk order
            return None
        if data is None:
            data, values, keys = doc.data, v, k
        else:
            data["checks"].extend(doc.data["checks"])
            values.extend(v[n_values:])
            keys.extend(k[n_keys:])
    if data is None or len(values) > MIN_NODE_BUDGET + 4 * len(text):  # the whole parse would refuse it (alias bomb)
        return None
    restore = Positions.restored
    return Document(source, data, restore(source, "values", values, data), restore(source, "keys", keys, data))


def _packed(positions: Any) -> array[int] | None:
    state = positions.state() if isinstance(positions, Positions) else None
    return state if isinstance(state, array) else None


def parse_head(split: Plan, source: str, env: Mapping[str, str]) -> Document:
    """plan's head parsed alone (a few lines: in process), for join."""
    return parse_document(split.head, source, env)
