"""Several config files -> one document: lists concatenated, notifiers by unique name, every other
setting from exactly one file. Positions keep pointing into the file each value came from."""

from __future__ import annotations

import copy
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from typing import Any

from pulse_agent.config.errors import ConfigError, KeyPath, Position
from pulse_agent.config.load import Document

CONCATENATED = ("checks", "maintenance")
NAMED = ("notifiers", "modules")
SAME_EVERYWHERE = ("version",)


class Merged(Document):
    """The merged document; its positions are looked up in the file each value came from (never copied:
    a directory of 100,000 checks has a million of them, and a reload merges again)."""

    def __init__(self, source: str) -> None:
        super().__init__(source, data={})
        self.parts: list[tuple[Document, dict[str, int]]] = []  # each file merged so far, with where its list items start
        self.values, self.keys = _MergedPositions(self.parts, "values"), _MergedPositions(self.parts, "keys")

    def local_path(self, path: KeyPath) -> KeyPath:
        """path as the file it came from numbers its list items."""
        return _located(self.parts, path)[1]


def _located(parts: list[tuple[Document, dict[str, int]]], path: KeyPath) -> tuple[Document | None, KeyPath]:
    """The file a concatenated item's path points into and the path there; (None, path) for any other path."""
    if len(path) > 1 and path[0] in CONCATENATED and isinstance(path[1], int):
        key = str(path[0])
        n = bisect_right([offsets[key] for _, offsets in parts], path[1]) - 1
        if n >= 0:
            return parts[n][0], (path[0], path[1] - parts[n][1][key], *path[2:])
    return None, path


class _MergedPositions(Mapping[KeyPath, Position]):
    """The positions of the merged files: a list item's in its own file, anything else's in the first
    file that has it."""

    def __init__(self, parts: list[tuple[Document, dict[str, int]]], which: str) -> None:
        self.parts, self.which = parts, which

    def __getitem__(self, path: KeyPath) -> Position:
        doc, local = _located(self.parts, path)
        for candidate in [doc] if doc is not None else (d for d, _ in self.parts):
            positions: Mapping[KeyPath, Position] = getattr(candidate, self.which)
            if local in positions:
                return positions[local]
        raise KeyError(path)

    def __iter__(self) -> Iterator[KeyPath]:
        seen: set[KeyPath] = set()
        for doc, offsets in self.parts:
            for path in getattr(doc, self.which):
                moved = _moved(path, offsets)
                if moved not in seen:
                    seen.add(moved)
                    yield moved

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _moved(path: KeyPath, offsets: dict[str, int]) -> KeyPath:
    if len(path) > 1 and path[0] in CONCATENATED and isinstance(path[1], int):
        return (path[0], path[1] + offsets[str(path[0])], *path[2:])
    return path


def merge_documents(docs: list[Document], source: str) -> Merged:
    """Merge schema-checked documents in order; conflicts become errors placed in the later file."""
    merged = Merged(source)
    for doc in docs:
        merged.errors.extend(doc.errors)
        if not isinstance(doc.data, dict):
            continue
        offsets = {key: len(merged.data.get(key) or []) for key in CONCATENATED}
        for key, value in doc.data.items():
            if key in CONCATENATED and isinstance(value, list):
                merged.data.setdefault(key, []).extend(value)
            elif key in SAME_EVERYWHERE:
                merged.data.setdefault(key, value)
            else:
                _merge_mapping(merged, doc, (key,), merged.data, key, value)
        merged.parts.append((doc, offsets))  # after its own mappings: a conflict points at an earlier file
        merged.unknown.update(_moved(path, offsets) for path in doc.unknown)  # nothing is reported twice about them
        merged.needs |= doc.needs
    return merged


def _merge_mapping(merged: Merged, doc: Document, path: KeyPath, into: dict[str, Any], key: str, value: Any) -> None:
    if key not in into:
        into[key] = copy.deepcopy(value)  # later files merge into it: never into a file's own data
        return
    current = into[key]
    named_item = len(path) == 2 and path[0] in NAMED
    if isinstance(current, dict) and isinstance(value, dict) and not named_item:
        for k, v in value.items():
            _merge_mapping(merged, doc, (*path, k), current, k, v)
        return
    first = merged.keys.get(path) or merged.values.get(path)
    where = f" (first in {first})" if first else ""
    if named_item:
        message = f"{str(path[0])[:-1]} {key!r} is defined twice{where}; names must be unique across files"
    else:
        message = f"set in two files{where}; set each setting in one file"
    merged.errors.append(ConfigError(doc.keys.get(path) or doc.where(path), path, message))
