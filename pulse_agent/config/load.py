"""YAML text -> plain data with the position of every key and value, ${ENV} expanded."""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import yaml

from pulse_agent.config.errors import ConfigError, KeyPath, Position

_ENV_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")  # the last: an unclosed ${
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


MAX_DEPTH = 64  # a config needs about 8 levels; deeper nesting only serves to exhaust the stack
MIN_NODE_BUDGET = 100_000  # values aliases may expand to beyond the text's own (billion laughs)
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null", "merge", "timestamp")}


class FromEnv(str):
    """A header value that took text from an environment variable (so it is not sent to other origins)."""

    __slots__ = ()


class Positions(Mapping[KeyPath, Position]):
    """Where each value (or key) of one file stands, kept as one packed number per path: a Position is
    made only when asked for (errors are few, and a large config has a million values).

    When the paths were noted in the order of a walk of the data (no `<<` merge), another process is sent only
    the packed numbers, and the paths are walked again from the data on the first lookup (config/child.py).
    """

    __slots__ = ("_at", "_in_walk_order", "_root", "file", "kind")

    def __init__(self, file: str, kind: Literal["values", "keys"] = "values") -> None:
        self.file = file
        self.kind = kind
        self._at: dict[KeyPath, int] | None = {}  # None: not walked yet (see _root)
        self._root: tuple[Any, array[int]] | None = None  # (data, packed numbers in walk order), until first needed
        self._in_walk_order = False  # whether the paths were noted in the order walk() gives them

    def note(self, path: KeyPath, mark: Any, *, first: bool = True) -> None:
        """Record the place of yaml's mark at path (first: unless one is recorded there already)."""
        packed = mark.line << 32 | mark.column
        if first:
            self._at.setdefault(path, packed)  # type: ignore[union-attr]  # noted while parsing: never walked
        else:
            self._at[path] = packed  # type: ignore[index]

    def walked(self) -> None:
        """Say that the paths were noted in the order walk(data, kind) gives them (state() may omit them)."""
        self._in_walk_order = True

    def state(self) -> dict[KeyPath, int] | array[int]:
        """What another process needs to rebuild these positions with restored(): the packed numbers alone
        when walk(data) gives the paths (no `<<` merge: far smaller and faster to send), else the paths too."""
        if self._at is None:  # restored and not looked up yet: the numbers it came as
            return self._root[1]  # type: ignore[index]
        return array("q", self._at.values()) if self._in_walk_order else self._at

    @classmethod
    def restored(cls, file: str, kind: Literal["values", "keys"], state: dict[KeyPath, int] | array[int], data: Any) -> Positions:
        """Positions from state() and the document's data (whose paths are walked again only when first needed)."""
        positions = cls(file, kind)
        if isinstance(state, dict):
            positions._at = state
        else:
            positions._at, positions._root = None, (data, state)
        return positions

    def _index(self) -> dict[KeyPath, int]:
        at = self._at
        if at is None:
            data, packed = self._root  # type: ignore[misc]
            at = self._at = dict(zip(walk(data, self.kind), packed, strict=True))
            self._root = None
        return at

    def __getitem__(self, path: KeyPath) -> Position:
        packed = self._index()[path]
        return Position(self.file, (packed >> 32) + 1, (packed & 0xFFFFFFFF) + 1)

    def get(self, path: KeyPath, default: Any = None) -> Any:  # type: ignore[override]
        """The Position at path, or default."""
        return self[path] if path in self._index() else default

    def __contains__(self, path: object) -> bool:
        return path in self._index()

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self._at) if self._at is not None else len(self._root[1])  # type: ignore[index]


def walk(data: Any, kind: Literal["values", "keys"]) -> list[KeyPath]:
    """The path of every value (kind "values": data itself first) or of every mapping key, depth first,
    in the order _Builder notes them."""
    out: list[KeyPath] = []
    values = kind == "values"

    def visit(value: Any, path: KeyPath) -> None:
        if values:
            out.append(path)
        if isinstance(value, dict):
            for key, item in value.items():
                child = (*path, key)
                if not values:
                    out.append(child)
                visit(item, child)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, (*path, i))

    visit(data, ())
    return out


@dataclass
class Document:
    """Parsed config data plus where each value and key stands in its file."""

    source: str
    data: Any = None
    values: Mapping[KeyPath, Position] = field(default_factory=dict)
    keys: Mapping[KeyPath, Position] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)
    unknown: set[KeyPath] = field(default_factory=set)  # values with an unset ${VAR} or a refused tag
    needs: set[str] = field(default_factory=set)  # variables left as placeholders (validate without secrets)

    def where(self, path: KeyPath, *, key: bool = False) -> Position | None:
        """Position of the value (or key) at path, else of its nearest parent."""
        if key and path in self.keys:
            return self.keys[path]
        for n in range(len(path), -1, -1):
            pos = self.values.get(path[:n])
            if pos is not None:
                return pos
        return None

    def error(self, path: KeyPath, message: str, *, key: bool = False) -> bool:
        """Record an error placed at path; False when the value there is unknown (an unset variable or
        a refused tag, already reported once or a placeholder), so that nothing cascades from it."""
        if self.unknown and any(path[:n] in self.unknown for n in range(len(path) + 1)):
            return False
        self.errors.append(ConfigError(self.where(path, key=key), path, message))
        return True


def parse_document(text: str, source: str, env: Mapping[str, str], *, placeholders: bool = False) -> Document:
    """Parse YAML text; errors (syntax, duplicate keys, unset variables) land in .errors.

    placeholders: an unset ${VAR} is no error but a placeholder (its name goes to .needs, its value
    to .unknown), so that structure can be checked where secrets are absent.
    """
    doc = Document(source)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except RecursionError:
        doc.errors.append(ConfigError(Position(source, 1, 1), (), f"invalid YAML: nested too deeply (at most {MAX_DEPTH} levels)"))
        return doc
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
    builder = _Builder(doc, env, placeholders, budget=MIN_NODE_BUDGET + 4 * len(text))
    try:
        doc.data = builder.build(node, ())
    except _TooBig as exc:
        doc.data = None
        doc.errors.append(ConfigError(exc.position, exc.path, exc.message))
    else:
        if not builder.merged:  # a merge notes paths out of walk order (merged keys come after the rest)
            builder.values.walked()
            builder.keys.walked()
    return doc


class _TooBig(Exception):
    """The document would be built far beyond its text (alias bombs) or nests too deep: stop building."""

    def __init__(self, position: Position, path: KeyPath, message: str) -> None:
        super().__init__(message)
        self.position, self.path, self.message = position, path, message


class _Builder:
    """Walks composed YAML nodes, building values and recording positions."""

    def __init__(self, doc: Document, env: Mapping[str, str], placeholders: bool = False, budget: int = MIN_NODE_BUDGET) -> None:
        self.doc = doc
        self.values, self.keys = Positions(doc.source, "values"), Positions(doc.source, "keys")
        doc.values, doc.keys = self.values, self.keys
        self.env = env
        self.placeholders = placeholders
        self.budget = budget  # values left to build: aliases may not blow a small text up into gigabytes
        self.building: set[int] = set()  # ids of the nodes being built, to catch an alias inside itself
        self.merged = False  # whether a << merge key was met
        self.constructor = yaml.SafeLoader("")
        self.resolver = yaml.resolver.Resolver()

    def pos(self, node: yaml.Node) -> Position:
        return Position(self.doc.source, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.values.note(path, node.start_mark)
        self.budget -= 1
        if self.budget < 0:
            raise _TooBig(self.pos(node), path, "YAML aliases expand this file to too many values (an alias bomb?); repeat less")
        if len(path) > MAX_DEPTH:
            raise _TooBig(self.pos(node), path, f"nested deeper than {MAX_DEPTH} levels")
        if node.tag not in _PLAIN_TAGS:
            self.doc.errors.append(ConfigError(self.pos(node), path, f"unsupported YAML tag {node.tag!r}; plain values only"))
            self.doc.unknown.add(path)
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.building:
            self.doc.errors.append(ConfigError(self.pos(node), path, "a YAML alias refers to a value that contains it"))
            self.doc.unknown.add(path)
            return None
        self.building.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.building.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.merged = True
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode) or id(source) in self.building:
                        looped = id(source) in self.building
                        what = "a YAML alias refers to a value that contains it" if looped else "<< merges mappings only"
                        self.doc.errors.append(ConfigError(self.pos(value_node), path, what))
                        continue
                    merged.append(source)
                continue
            key = self.scalar(key_node, path, expand=False)
            plain = isinstance(key_node, yaml.ScalarNode)  # not a list or mapping
            try:
                hash(key)
            except TypeError:
                plain = False
            if not plain:
                self.doc.errors.append(ConfigError(self.pos(key_node), path, "a key must be a plain value"))
                continue
            if key in out:
                first = self.keys[(*path, key)]
                message = f"duplicate key {str(key)[:60]!r} (first at line {first.line})"
                self.doc.errors.append(ConfigError(self.pos(key_node), (*path, key), message))
                continue
            self.keys.note((*path, key), key_node.start_mark, first=False)
            out[key] = self.build(value_node, (*path, key))
        for source in merged:
            self.building.add(id(source))
            try:
                for key, value in self.mapping(source, path).items():
                    out.setdefault(key, value)
            finally:
                self.building.discard(id(source))
        return out

    def scalar(self, node: yaml.Node, path: KeyPath, *, expand: bool = True) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        value = node.value
        from_env = False
        if expand and "$" in value:
            # only header values (kept on their origin) and a tcp/tls send (kept out of what is shown of the
            # answer) are marked; everything else stays plain str
            marked = (len(path) >= 2 and path[-2] == "headers") or path[-1:] == ("send",)
            from_env = marked and any(m.group(1) is not None for m in _ENV_REF.finditer(value))
            value = self.expand(value, node, path)
            if not node.style and value != node.value:  # plain (libyaml says "", PyYAML None): typed after expansion
                node = yaml.ScalarNode(self.resolver.resolve(yaml.ScalarNode, value, (True, False)), value)
            else:
                node = yaml.ScalarNode(node.tag, value, style=node.style)
        if node.tag == _STR_TAG:
            return FromEnv(value) if from_env else value  # most scalars: no constructor needed
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:  # ValueError: an integer of over 4,300 digits
            self.doc.errors.append(ConfigError(self.pos(node) if node.start_mark else self.doc.where(path), path, _first_line(exc)))
            self.doc.unknown.add(path)
            return None

    def expand(self, text: str, node: yaml.Node, path: KeyPath) -> str:
        def replace(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            ref = m.group(1)
            if ref is None:
                self.unknown(node, path, "unclosed ${ in this value; write ${NAME}, or $${ for a literal ${")
                return m.group(0)
            name, sep, default = ref.partition(":-")
            if not _ENV_NAME.fullmatch(name):
                self.unknown(node, path, f"bad variable reference ${{{ref[:40]}}}; write ${{NAME}} or ${{NAME:-default}}")
                return m.group(0)
            if name in self.env:
                return self.env[name]
            if sep:
                return default
            if self.placeholders:
                self.doc.needs.add(name)
                self.doc.unknown.add(path)
                return m.group(0)
            self.unknown(node, path, f"environment variable {name} is not set; set it or write ${{{name}:-default}}")
            return ""

        return _ENV_REF.sub(replace, text)

    def unknown(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        """An error that leaves the value at path unknown: nothing else is reported about it."""
        self.doc.errors.append(ConfigError(self.pos(node), path, message))
        self.doc.unknown.add(path)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
