"""YAML text -> plain data with the position of every key and value, ${ENV} expanded."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from pulse_agent.config.errors import ConfigError, KeyPath, Position

_ENV_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml when PyYAML has it (composing 10,000 checks: ~0.7 s instead of ~3 s), with plain
    scalars' implicit types memoised: configs repeat the same keys and values thousands of times."""

    _tags: ClassVar[dict[str, str]] = {}  # shared by every parse: tags depend on the text only

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode or implicit != (True, False):
            return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]
        tag = self._tags.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._tags) < 65536:
                self._tags[value] = tag
        return tag  # type: ignore[no-any-return]


_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null", "merge", "timestamp")}


class FromEnv(str):
    """A header value that took text from an environment variable (so it is not sent to other origins)."""

    __slots__ = ()


@dataclass
class Document:
    """Parsed config data plus where each value and key stands in its file."""

    source: str
    data: Any = None
    values: dict[KeyPath, Position] = field(default_factory=dict)
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)

    def where(self, path: KeyPath, *, key: bool = False) -> Position | None:
        """Position of the value (or key) at path, else of its nearest parent."""
        if key and path in self.keys:
            return self.keys[path]
        for n in range(len(path), -1, -1):
            pos = self.values.get(path[:n])
            if pos is not None:
                return pos
        return None

    def error(self, path: KeyPath, message: str, *, key: bool = False) -> None:
        """Record an error placed at path."""
        self.errors.append(ConfigError(self.where(path, key=key), path, message))


def parse_document(text: str, source: str, env: Mapping[str, str]) -> Document:
    """Parse YAML text; errors (syntax, duplicate keys, unset variables) land in .errors."""
    doc = Document(source)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = Position(source, mark.line + 1, mark.column + 1) if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        msg = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        doc.errors.append(ConfigError(pos, (), msg))
        return doc
    if node is None:
        doc.errors.append(ConfigError(Position(source, 1, 1), (), "file is empty; start with 'version: 1'"))
        return doc
    doc.data = _Builder(doc, env).build(node, ())
    return doc


class _Builder:
    """Walks composed YAML nodes, building values and recording positions."""

    def __init__(self, doc: Document, env: Mapping[str, str]) -> None:
        self.doc = doc
        self.env = env
        self.constructor = yaml.SafeLoader("")
        self.resolver = yaml.resolver.Resolver()

    def pos(self, node: yaml.Node) -> Position:
        return Position(self.doc.source, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.doc.values.setdefault(path, self.pos(node))
        if node.tag not in _PLAIN_TAGS:
            self.doc.errors.append(ConfigError(self.pos(node), path, f"unsupported YAML tag {node.tag!r}; plain values only"))
            return None
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                merged.extend(s for s in sources if isinstance(s, yaml.MappingNode))
                continue
            key = self.scalar(key_node, path, expand=False)
            try:
                hash(key)
            except TypeError:
                self.doc.errors.append(ConfigError(self.pos(key_node), path, "a key must be a plain value"))
                continue
            if key in out:
                first = self.doc.keys[(*path, key)]
                self.doc.errors.append(ConfigError(self.pos(key_node), (*path, key), f"duplicate key {key!r} (first at line {first.line})"))
                continue
            self.doc.keys[(*path, key)] = self.pos(key_node)
            out[key] = self.build(value_node, (*path, key))
        for source in merged:
            for key, value in self.mapping(source, path).items():
                out.setdefault(key, value)
        return out

    def scalar(self, node: yaml.Node, path: KeyPath, *, expand: bool = True) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        value = node.value
        from_env = False
        if expand and "$" in value:
            # only header values are marked: the prober keeps those on their origin; everything else stays plain str
            from_env = len(path) >= 2 and path[-2] == "headers" and any(m.group(1) is not None for m in _ENV_REF.finditer(value))
            value = self.expand(value, node, path)
            if not node.style and value != node.value:  # plain (libyaml says "", PyYAML None): typed after expansion
                node = yaml.ScalarNode(self.resolver.resolve(yaml.ScalarNode, value, (True, False)), value)
            else:
                node = yaml.ScalarNode(node.tag, value, style=node.style)
        if node.tag == _STR_TAG:
            return FromEnv(value) if from_env else value  # most scalars: no constructor needed
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.doc.errors.append(ConfigError(self.pos(node) if node.start_mark else self.doc.where(path), path, str(exc)))
            return None

    def expand(self, text: str, node: yaml.Node, path: KeyPath) -> str:
        def replace(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            ref = m.group(1)
            name, sep, default = ref.partition(":-")
            if not _ENV_NAME.fullmatch(name):
                message = f"bad variable reference ${{{ref}}}; write ${{NAME}} or ${{NAME:-default}}"
                self.doc.errors.append(ConfigError(self.pos(node), path, message))
                return m.group(0)
            if name in self.env:
                return self.env[name]
            if sep:
                return default
            self.doc.errors.append(
                ConfigError(self.pos(node), path, f"environment variable {name} is not set; set it or write ${{{name}:-default}}")
            )
            return ""

        return _ENV_REF.sub(replace, text)
