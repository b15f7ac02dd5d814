"""Several config files -> one document: lists concatenated, notifiers by unique name, every other
setting from exactly one file. Positions keep pointing into the file each value came from."""

from __future__ import annotations

import copy
from typing import Any

from pulse_agent.config.errors import ConfigError, KeyPath
from pulse_agent.config.load import Document

CONCATENATED = ("checks", "maintenance")
NAMED = ("notifiers", "modules")
SAME_EVERYWHERE = ("version",)


class Merged(Document):
    """The merged document; `local` maps a concatenated item's index back to its index in its file."""

    def __init__(self, source: str) -> None:
        super().__init__(source, data={})
        self.local: dict[tuple[str, int], int] = {}

    def local_path(self, path: KeyPath) -> KeyPath:
        """path as the file it came from numbers its list items."""
        if len(path) > 1 and path[0] in CONCATENATED and isinstance(path[1], int):
            return (path[0], self.local.get((str(path[0]), path[1]), path[1]), *path[2:])
        return path


def merge_documents(docs: list[Document], source: str) -> Merged:
    """Merge schema-checked documents in order; conflicts become errors placed in the later file."""
    merged = Merged(source)
    for doc in docs:
        merged.errors.extend(doc.errors)
        if not isinstance(doc.data, dict):
            continue
        offsets = {key: len(merged.data.get(key) or []) for key in CONCATENATED}

        def moved(path: KeyPath, offsets: dict[str, int] = offsets) -> KeyPath:
            if len(path) > 1 and path[0] in CONCATENATED and isinstance(path[1], int):
                return (path[0], path[1] + offsets[str(path[0])], *path[2:])
            return path

        for key, value in doc.data.items():
            if key in CONCATENATED and isinstance(value, list):
                for i in range(len(value)):
                    merged.local[(key, offsets[key] + i)] = i
                merged.data.setdefault(key, []).extend(value)
            elif key in SAME_EVERYWHERE:
                merged.data.setdefault(key, value)
            else:
                _merge_mapping(merged, doc, (key,), merged.data, key, value)
        for path, pos in doc.values.items():
            merged.values.setdefault(moved(path), pos)
        for path, pos in doc.keys.items():
            merged.keys.setdefault(moved(path), pos)
        merged.unknown.update(moved(path) for path in doc.unknown)  # nothing is reported twice about them
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
