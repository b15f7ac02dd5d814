"""One config file loaded again after an edit: only the check items whose text changed are parsed.

A good load of one file leaves a `Kept`: its text and its list of checks, compressed (a large config repeats
itself, so both shrink many times). The next load cuts the old and the new text into items by
config/split.py's rules; when the text before the list is the same (and, parsed alone, a mapping whose last
key is `checks` with nothing after it, so that the lines after it are the list's items), an item whose text
is byte-identical to an old one takes the old item's data, and the others are parsed, with the head, as one
small text. That is the whole parse's data for the reason a split parse is (config/split.py): no anchors (so
no alias reaches from one item into another, and the alias budget cannot be exceeded), each item parsed as
it stands in the whole text. An item that names a `${VAR}`, or has a backslash (a double-quoted escape may
spell one), is always parsed again (the environment may have changed), and so is the head. Any error, unset
variable or doubt, and the caller loads the whole text: this gives its document sooner, never another one.
The document has no positions: it is used only when nothing in it is wrong (the caller loads the whole text
again to place any error).
"""

from __future__ import annotations

import marshal
import pickle
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pulse_agent.config.load import Document, parse_document
from pulse_agent.config.split import Items, bare_head, items

DIGEST_BYTES = 16  # config/memo.py's digest of an item's canonical text


@dataclass(frozen=True, slots=True)
class Kept:
    """What a good load of one file leaves for the next: its name, and its text, checks and the memo's digest
    of each check (so that the next load need not write unchanged checks out again to look them up)."""

    source: str
    text: bytes  # zlib of the UTF-8 text
    checks: bytes  # zlib of the checks list, marshalled (or pickled: see pack)
    pickled: bool
    digests: bytes  # DIGEST_BYTES per check, in order

    @property
    def size(self) -> int:
        """Bytes held."""
        return len(self.text) + len(self.checks) + len(self.digests)


@dataclass(frozen=True, slots=True)
class Reparsed:
    """A document made by reparsed, the cut of its text, and the digests known of its reused checks (by id)."""

    doc: Document
    cut: Items
    digests: dict[int, int]


def pack(value: Any) -> tuple[bytes, bool]:
    """value marshalled (several times faster than pickle), or pickled when marshal cannot (a header value
    from a ${VAR} is a str subclass, a date is no marshal type); the flag says which."""
    try:
        return marshal.dumps(value), False
    except ValueError:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), True


def unpack(blob: bytes, pickled: bool) -> Any:
    """What pack was given."""
    return pickle.loads(blob) if pickled else marshal.loads(blob)


def keep(text: str | Items, source: str, data: Any, digest: Callable[[Any], int]) -> Kept | None:
    """What the next load of this file may reuse of this good load of text (or its cut; data: its document's
    data; digest: the memo's of a check), or None when its items cannot be told apart safely."""
    cut = items(text) if isinstance(text, str) else text
    checks = data.get("checks") if isinstance(data, dict) else None
    if cut is None or not isinstance(checks, list) or len(checks) != len(cut.items):
        return None  # every item line starts one check of the list, or the items are not the checks
    blob, pickled = pack(checks)
    digests = b"".join(digest(check).to_bytes(DIGEST_BYTES, "big") for check in checks)
    whole = cut.head + "".join(cut.items)
    return Kept(source, zlib.compress(whole.encode("utf-8"), 1), zlib.compress(blob, 1), pickled, digests)


def _fixed(item: str) -> bool:
    """Whether item's data cannot depend on the environment: it names no `${VAR}`, not even through a
    double-quoted escape (`\\x24{VAR}` is one too)."""
    return "$" not in item and "\\" not in item


def reparsed(kept: Kept, text: str, source: str, env: Mapping[str, str]) -> Reparsed | None:
    """The data of text's document (no positions) from kept and a parse of what changed, or None: load
    the whole text (see the module's docstring)."""
    if kept.source != source:
        return None
    new, old = items(text), items(zlib.decompress(kept.text).decode("utf-8"))
    if new is None or old is None or new.head != old.head:
        return None
    head = parse_document(new.head, source, env)
    if not bare_head(head):
        return None
    old_checks = unpack(zlib.decompress(kept.checks), kept.pickled)
    if len(old_checks) != len(old.items) or len(kept.digests) != DIGEST_BYTES * len(old.items):
        return None
    digests = (int.from_bytes(kept.digests[k : k + DIGEST_BYTES], "big") for k in range(0, len(kept.digests), DIGEST_BYTES))
    known = {item: pair for item, pair in zip(old.items, zip(old_checks, digests, strict=True), strict=True) if _fixed(item)}
    changed = [item for item in new.items if item not in known]
    # the head alone, and with the changed items after it (the last item keeps its place: it may lack a newline)
    doc = parse_document(new.head + "".join(changed), source, env) if changed else head
    data = doc.data
    if doc.errors or doc.unknown or doc.needs or not isinstance(data, dict) or list(data)[-1:] != ["checks"]:
        return None
    parsed = data["checks"] if changed else []
    if not isinstance(parsed, list) or len(parsed) != len(changed):
        return None
    fresh = iter(parsed)
    checks: list[Any] = []
    seen: dict[int, int] = {}
    for item in new.items:
        pair = known.get(item)
        if pair is None:
            checks.append(next(fresh))
        else:
            checks.append(pair[0])
            seen[id(pair[0])] = pair[1]
    data["checks"] = checks
    return Reparsed(Document(source, data), new, seen)
