"""What a long-running agent remembers between config loads, so a reload redoes only what changed.

Parsing, schema-checking and building 10,000 checks takes seconds; an edit usually touches one.
Only error-free work is remembered, and each load keeps just what it used, so memory stays
bounded by the config itself. It is kept by digests, not texts: a 128-bit digest of each check item's
canonical text (an int: 48 bytes, where the text is 100 or more), and each file by a digest of its text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pulse_agent.config.load import Document
from pulse_agent.config.model import CheckSpec
from pulse_agent.config.reparse import Kept


@dataclass
class Memo:
    """Error-free results of the last load, keyed by their exact inputs."""

    documents: dict[tuple[str, int], Document] = field(default_factory=dict)  # (file, digest of its text) -> parsed, schema-checked
    valid: set[int] = field(default_factory=set)  # digests of the canonical JSON of check items the schema accepted
    specs: dict[tuple[object, ...], CheckSpec] = field(default_factory=dict)  # build inputs -> spec
    # id(check item) -> (the item, its context, its key in specs): an item of a remembered document comes
    # back as the very same object, so its spec is found without writing the item out again
    items: dict[int, tuple[Any, tuple[object, ...], tuple[object, ...]]] = field(default_factory=dict)
    kept: Kept | None = None  # one file's last good text and checks, compressed (config/reparse.py)
    # keys of specs whose build asked this machine (check.MACHINE_CHECKS: files, privileges): built again at each
    # load, so that what was true of the machine then is asked again
    machine: set[tuple[object, ...]] = field(default_factory=set)
    _used: Memo | None = None
    _digests: dict[int, int] = field(default_factory=dict)  # id(item) -> digest of its canonical text, during one load
    _order: list[tuple[object, ...]] = field(default_factory=list)  # the key of each spec this load took, in order
    # the parts of spec keys most checks share (contexts, header name sets): one object each, not one per key
    _shared: dict[object, object] = field(default_factory=dict)
    _context: tuple[object, object] | None = None  # (the context object last given, its shared form): one lookup a load
    _itemless: bool = False  # this load keeps no items (see without_items)

    def begin(self) -> None:
        """Start a load: what it does not use is forgotten when it ends."""
        self._used = Memo()
        self._digests = {}

    def end(self, *, ok: bool) -> None:
        """Finish a load: after a good one keep only what it used; after a failed one keep everything."""
        if self._used is not None and ok:
            self.documents, self.valid, self.specs, self.items = self._used.documents, self._used.valid, self._used.specs, self._used.items
            self.kept, self.machine = self._used.kept, self._used.machine
            self._shared = {part: part for key in self.specs for part in key[1:]}  # only what the kept specs share
        self._used = None
        self._digests = {}
        self._context = None

    def digest(self, item: Any) -> int:
        """digest(canonical(item)), computed once per load (the item stays alive, and unchanged, meanwhile)."""
        key = id(item)
        found = self._digests.get(key)
        if found is None:
            found = self._digests[key] = digest(canonical(item))
        return found

    def forget_items(self) -> None:
        """Forget what this load noted of its items so far: they were dropped (their ids may be reused), and
        the document built next from scratch takes its specs in an order of its own."""
        self._digests = {}
        self._keep()._order.clear()

    def built(self) -> list[tuple[object, ...]]:
        """The key of each spec this load took, in the order it took them (a good load: its checks' order)."""
        return self._keep()._order

    def keep_file(self, kept: Kept | None) -> None:
        """What the next load of the same file may reuse (config/reparse.py), once this load ends well."""
        self._keep().kept = kept

    def document(self, key: tuple[str, int]) -> Document | None:
        """A fresh copy (own error list) of the remembered document for key."""
        doc = self.documents.get(key)
        if doc is None:
            return None
        self._keep().documents[key] = doc
        return Document(doc.source, doc.data, doc.values, doc.keys, [])

    def remember_document(self, key: tuple[str, int], doc: Document) -> None:
        """Keep doc when it has no errors."""
        if not doc.errors:
            self._keep().documents[key] = doc

    def is_valid(self, item: int) -> bool:
        """Whether the schema accepted this check item before."""
        if item in self.valid:
            self._keep().valid.add(item)
            return True
        return False

    def remember_valid(self, item: int) -> None:
        """Note that the schema accepts this check item."""
        self._keep().valid.add(item)

    def spec(self, key: tuple[object, ...], item: Any = None, context: tuple[object, ...] = ()) -> CheckSpec | None:
        """The spec built before from exactly these inputs (item and context: what key was made of)."""
        key = self._compact(key, context)
        spec = self.specs.get(key) if not self.asks_machine(key) else None
        if spec is not None:
            self._remember(key, spec, item, context)
        return spec

    def spec_of(self, item: Any, context: tuple[object, ...]) -> CheckSpec | None:
        """The spec built before from this very item object in this context (see items)."""
        entry = self.items.get(id(item))
        if entry is None or entry[0] is not item or entry[1] != context:
            return None
        spec = self.specs.get(entry[2]) if not self.asks_machine(entry[2]) else None
        if spec is not None:
            self._remember(entry[2], spec, item, context)
        return spec

    def reused(self, key: tuple[object, ...], spec: CheckSpec) -> CheckSpec:
        """spec, which the last load built under key (a key it kept, config/reparse.py), taken again as it is."""
        self._remember(key, spec, None, ())
        return spec

    def asks_machine(self, key: tuple[object, ...] | None) -> bool:
        """Whether the spec kept under key (a compact key) was built asking this machine: build it again."""
        return bool(self.machine) and key in self.machine

    def remember_spec(
        self, key: tuple[object, ...], spec: CheckSpec, item: Any = None, context: tuple[object, ...] = (), *, machine: bool = False
    ) -> None:
        """Keep a spec built without errors (item and context: what key was made of, for spec_of; machine:
        its build asked this machine)."""
        key = self._compact(key, context)
        self._remember(key, spec, item, context)
        if machine:
            self._keep().machine.add(key)

    def _remember(self, key: tuple[object, ...], spec: CheckSpec, item: Any, context: tuple[object, ...]) -> None:
        keep = self._keep()
        keep.specs[key] = spec
        keep._order.append(key)
        if item is not None and not keep._itemless:
            keep.items[id(item)] = (item, context, key)  # holds the item: its id stays its own meanwhile

    @contextmanager
    def without_items(self) -> Iterator[None]:
        """Note no check items meanwhile, and keep none after: their document is not remembered (one file),
        so none comes back as itself, and each would hold its parsed check alive until the next load."""
        keep = self._keep()
        keep._itemless = True
        try:
            yield
        finally:
            keep.items.clear()
            keep._itemless = False

    def _compact(self, key: tuple[object, ...], given: tuple[object, ...] = ()) -> tuple[object, ...]:
        """A spec key, (item digest, header names from ${VAR}s, *context), as (digest, names, context) with
        names and context the one object kept for their value: most checks share them. given: the context
        object key was made of (a load gives the same one for every check: its shared form is looked up once)."""
        shared = self._shared
        names = key[1:2]
        last = self._context
        if given and last is not None and last[0] is given and len(key) == 2 + len(given):
            context = last[1]
        else:
            context = key[2:]
            context = shared.setdefault(context, context)
            if given:
                self._context = (given, context)
        return (key[0], shared.setdefault(names, names), context)

    def _keep(self) -> Memo:
        return self._used if self._used is not None else self


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)  # one encoder: making one cost as much as encoding


def canonical(value: Any) -> str:
    """A stable text of plain config data, usable as a key."""
    try:
        return _CANONICAL.encode(value)
    except TypeError:  # keys of several types (`1:` beside `name:`) cannot be sorted: the schema refuses them,
        return "repr:" + repr(value)  # but the memo still needs a key, distinct from any JSON text


def digest(text: str) -> int:
    """A 128-bit digest of text, as an int (smaller than the bytes object); no collision in any real config."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest(), "big")
