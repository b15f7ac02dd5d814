"""One config file loaded again after an edit: only the check items whose text changed are parsed.

A good load of one file leaves a `Kept`: its text and its list of checks, compressed (a large config repeats
itself, so both shrink many times), and each check's spec and memo key. The next load finds where the old
and the new text differ (their common prefix and suffix, widened to whole items): the items before and after
that region are byte-identical and take the old checks' data and specs by position. The region of each text
is cut into items by config/split.py's rules; when the text before the list is the same (and, parsed alone,
a mapping whose last key is `checks` with nothing after it, so that the lines after it are the list's items),
an item of the region whose text is byte-identical to an old one takes that one's, and the others are
parsed, with the head, as one small text. That is the whole parse's data for the reason a split parse is (config/split.py): no anchors (so
no alias reaches from one item into another, and the alias budget cannot be exceeded), each item parsed as
it stands in the whole text. An item that names a `${VAR}`, or has a backslash (a double-quoted escape may
spell one), is always parsed again (the environment may have changed: the region is widened to it), and so
is the head. Any error, unset
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
from pulse_agent.config.model import CheckSpec
from pulse_agent.config.split import bare_head, items

Key = tuple[object, ...]  # config/memo.py's key of a built spec: (digest of the check, header names, context)


@dataclass(frozen=True, slots=True)
class Kept:
    """What a good load of one file leaves for the next: its name and text, its checks, and the memo's key and
    the spec of each check (so that the next load need not write unchanged checks out again, nor build them)."""

    source: str
    text: bytes  # zlib of the UTF-8 text
    head: int  # characters before the list (its `checks:` line included)
    marker: str  # a newline, the list's indentation and `-`: what starts each item's line (split.Items.marker)
    checks: bytes  # zlib of the checks list, marshalled (or pickled: see pack)
    pickled: bool
    keys: tuple[Key, ...]  # of each check, in order
    specs: tuple[CheckSpec, ...]  # of each check, in order (the load's own: no copies)

    @property
    def size(self) -> int:
        """Bytes held (the keys and specs are the memo's and the spec's: a reference each)."""
        return len(self.text) + len(self.checks) + 16 * len(self.keys)


@dataclass(frozen=True, slots=True)
class Reuse:
    """What the last good load built of the checks an edit left as they were, by index in the new list (None: a
    check parsed again), valid in the context they were built in (config/build.py's spec context)."""

    context: object
    keys: list[Key | None]
    specs: list[CheckSpec | None]


@dataclass(frozen=True, slots=True)
class Reparsed:
    """A document made by reparsed, and what its checks reuse of the last load."""

    doc: Document
    reuse: Reuse


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


def keep(
    text: str, source: str, data: Any, keys: list[Key], specs: tuple[CheckSpec, ...], shape: tuple[int, str] | None = None
) -> Kept | None:
    """What the next load of this file may reuse of this good load of text (data: its document's data; keys and
    specs: the memo's key and the spec of each check; shape: (head, marker) of text when known to cut as the
    last one did), or None when its items cannot be told apart safely."""
    if shape is None:
        cut = items(text)
        if cut is None:
            return None
        shape, count = (len(cut.head), cut.marker), len(cut.items)
    else:
        count = text.count(shape[1], shape[0] - 1)
    checks = data.get("checks") if isinstance(data, dict) else None
    if not isinstance(checks, list) or not len(checks) == count == len(keys) == len(specs):
        return None  # every item line starts one check of the list, or the items are not the checks
    blob, pickled = pack(checks)
    return Kept(source, zlib.compress(text.encode("utf-8"), 1), *shape, zlib.compress(blob, 1), pickled, tuple(keys), specs)


def _fixed(item: str) -> bool:
    """Whether item's data cannot depend on the environment: it names no `${VAR}`, not even through a
    double-quoted escape (`\\x24{VAR}` is one too)."""
    return "$" not in item and "\\" not in item


def _common(old: str, new: str) -> tuple[int, int]:
    """The lengths of the longest common prefix and (in what is left after it) suffix of old and new."""
    short = min(len(old), len(new))
    prefix = _agree(lambda lo, hi: old[lo:hi] == new[lo:hi], short)
    suffix = _agree(lambda lo, hi: old[len(old) - hi : len(old) - lo] == new[len(new) - hi : len(new) - lo], short - prefix)
    return prefix, suffix


def _agree(same: Callable[[int, int], bool], most: int) -> int:
    """The largest n <= most such that same(lo, hi) for every lo < hi <= n (the texts agree on [lo, hi)): steps of
    64 KiB, then halving within the step that disagrees (each compares only its own slice)."""
    low, step = 0, 1 << 16
    while low < most and same(low, min(low + step, most)):
        low = min(low + step, most)
    high = min(low + step, most + 1)  # [low, high) disagrees somewhere, or high is past most
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if same(low, mid) else (low, mid)
    return low


def _region(kept: Kept, old: str, new: str) -> tuple[int, int, int] | None:
    """(a, b_old, b_new): the new text differs from the old only in the items from a to b_old (old) or b_new
    (new), each a line start; items before a and from b on are byte-identical, with no `${VAR}` or backslash.
    None: the head changed."""
    h, marker = kept.head, kept.marker
    prefix, suffix = _common(old, new)
    if prefix < h:
        return None
    # the item holding the first change starts at a (the first item: at the head's end, its blank lines are its own)
    a = old.rfind(marker, h - 1, prefix + len(marker) - 1) + 1
    first = old.find(marker, h - 1) + 1
    # the first item after the last change: its newline is after the change too
    end = old.find(marker, len(old) - suffix)
    b_old = len(old) if end < 0 else end + 1
    shift = len(new) - len(old)
    # an item naming a ${VAR} (or with a backslash) is parsed again: the environment may have changed
    for c in "$\\":
        if (at := new.find(c, h, a)) >= 0:
            a = old.rfind(marker, h - 1, at + len(marker) - 1) + 1
        if (at := new.rfind(c, b_old + shift)) >= 0:
            end = new.find(marker, at)
            b_old = len(old) if end < 0 else end + 1 - shift
    return (h if a <= first else a), b_old, b_old + shift


def reparsed(kept: Kept, text: str, source: str, env: Mapping[str, str]) -> Reparsed | None:
    """The data of text's document (no positions) from kept and a parse of what changed, or None: load
    the whole text (see the module's docstring)."""
    if kept.source != source:
        return None
    old = zlib.decompress(kept.text).decode("utf-8")
    region = _region(kept, old, text)
    if region is None:
        return None
    a, b_old, b_new = region
    h, marker = kept.head, kept.marker
    head_text = text[:h]
    was, now = items(head_text + old[a:b_old]), items(head_text + text[a:b_new]) if b_new > a else None
    if was is None or was.marker != marker or (b_new > a and (now is None or now.marker != marker)):
        return None
    if h < a < b_new and not text.startswith(marker[1:], a):  # the line at a starts an item (or the item before reaches into it)
        return None
    head = parse_document(head_text, source, env)
    if not bare_head(head):
        return None
    old_checks = unpack(zlib.decompress(kept.checks), kept.pickled)
    n = len(old_checks)
    i = 0 if a == h else old.count(marker, h - 1, a - 2 + len(marker))  # items before a
    j = n - old.count(marker, b_old - 1)  # the first item from b_old on
    if n != len(kept.keys) or j - i != len(was.items):
        return None
    old_items = list(zip(was.items, old_checks[i:j], kept.keys[i:j], kept.specs[i:j], strict=True))
    known = {item: (check, key, spec) for item, check, key, spec in old_items if _fixed(item)}
    new_items = now.items if now is not None else []
    changed = [item for item in new_items if item not in known]
    # the head alone, and with the changed items after it (the last item keeps its place: it may lack a newline)
    doc = parse_document(head_text + "".join(changed), source, env) if changed else head
    data = doc.data
    if doc.errors or doc.unknown or doc.needs or not isinstance(data, dict) or list(data)[-1:] != ["checks"]:
        return None
    parsed = data["checks"] if changed else []
    if not isinstance(parsed, list) or len(parsed) != len(changed) or i + len(new_items) + n - j == 0:
        return None
    fresh = iter(parsed)
    middle = [known.get(item) or (next(fresh), None, None) for item in new_items]
    data["checks"] = [*old_checks[:i], *(m[0] for m in middle), *old_checks[j:]]
    keys = [*kept.keys[:i], *(m[1] for m in middle), *kept.keys[j:]]
    specs = [*kept.specs[:i], *(m[2] for m in middle), *kept.specs[j:]]
    return Reparsed(Document(source, data), Reuse(kept.keys[0][2], keys, specs))
