"""What a long-running agent remembers between config loads, so a reload redoes only what changed.

Parsing, schema-checking and building 10,000 checks takes seconds; an edit usually touches one.
Only error-free work is remembered, and each load keeps just what it used, so memory stays
bounded by the config itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pulse_agent.config.load import Document
from pulse_agent.config.model import CheckSpec


@dataclass
class Memo:
    """Error-free results of the last load, keyed by their exact inputs."""

    documents: dict[tuple[str, str], Document] = field(default_factory=dict)  # (file, text) -> parsed, schema-checked
    valid: set[str] = field(default_factory=set)  # canonical JSON of check items the schema accepted
    specs: dict[tuple[object, ...], CheckSpec] = field(default_factory=dict)  # build inputs -> spec
    _used: Memo | None = None
    _texts: dict[int, str] = field(default_factory=dict)  # id(item) -> canonical text, during one load

    def begin(self) -> None:
        """Start a load: what it does not use is forgotten when it ends."""
        self._used = Memo()
        self._texts = {}

    def end(self, *, ok: bool) -> None:
        """Finish a load: after a good one keep only what it used; after a failed one keep everything."""
        if self._used is not None and ok:
            self.documents, self.valid, self.specs = self._used.documents, self._used.valid, self._used.specs
        self._used = None
        self._texts = {}

    def text(self, item: Any) -> str:
        """canonical(item), computed once per load (the item stays alive, and unchanged, meanwhile)."""
        key = id(item)
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = canonical(item)
        return text

    def document(self, key: tuple[str, str]) -> Document | None:
        """A fresh copy (own error list) of the remembered document for key."""
        doc = self.documents.get(key)
        if doc is None:
            return None
        self._keep().documents[key] = doc
        return Document(doc.source, doc.data, doc.values, doc.keys, [])

    def remember_document(self, key: tuple[str, str], doc: Document) -> None:
        """Keep doc when it has no errors."""
        if not doc.errors:
            self._keep().documents[key] = doc

    def is_valid(self, item: str) -> bool:
        """Whether the schema accepted this check item before."""
        if item in self.valid:
            self._keep().valid.add(item)
            return True
        return False

    def remember_valid(self, item: str) -> None:
        """Note that the schema accepts this check item."""
        self._keep().valid.add(item)

    def spec(self, key: tuple[object, ...]) -> CheckSpec | None:
        """The spec built before from exactly these inputs."""
        spec = self.specs.get(key)
        if spec is not None:
            self._keep().specs[key] = spec
        return spec

    def remember_spec(self, key: tuple[object, ...], spec: CheckSpec) -> None:
        """Keep a spec built without errors."""
        self._keep().specs[key] = spec

    def _keep(self) -> Memo:
        return self._used if self._used is not None else self


def canonical(value: Any) -> str:
    """A stable text of plain config data, usable as a key."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
