"""Validate config data against schemas/pulse.schema.json and place each error."""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulse_agent.config.load import Document
from pulse_agent.config.memo import Memo
from pulse_agent.redact import HIDDEN, shown

if TYPE_CHECKING:  # jsonschema is imported when a document needs it: a valid config never does (0.06 s)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_SCHEMA_NAME = "pulse.schema.json"
_TYPE_NAMES = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def schema_path() -> Path:
    """Where the one schema file is: inside the wheel, or schemas/ of a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / _SCHEMA_NAME, here.parent / "schemas" / _SCHEMA_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{_SCHEMA_NAME} is missing from the installation (looked in {here} and {here.parent / 'schemas'})")


def schema_text() -> str:
    """The JSON Schema, as shipped."""
    return schema_path().read_text(encoding="utf-8")


@cache
def _inlined() -> dict[str, Any]:
    return inline_refs(json.loads(schema_text()))


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_inlined())


@cache
def _compiled() -> Callable[[Any], Any]:
    from pulse_agent.config.quick import quick_validator

    return quick_validator(schema_text(), _inlined)


_NAMED_SCHEMAS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")  # name -> schema maps
_VALUES = ("const", "enum", "default", "examples")  # data, not schemas


def without_const(node: Any) -> Any:
    """The same schema with each `const: X` written as `allOf: [{enum: [X]}]` (the same test)."""
    if isinstance(node, list):
        return [without_const(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            out[key] = {name: without_const(schema) for name, schema in value.items()}
        else:
            out[key] = value if key in _VALUES else without_const(value)
    if "const" in out:
        out["allOf"] = [*out.get("allOf", []), {"enum": [out.pop("const")]}]
    return out


def quickly_valid(data: Any) -> bool:
    """Whether data is valid, by a validator compiled to Python: about 15x faster than jsonschema
    (10,000 checks: 0.04 s against 0.6 s). Only a yes is trusted: on no, jsonschema finds and places
    the errors."""
    import fastjsonschema

    try:
        _compiled()(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The same schema with every local $ref replaced by what it names, and `$ref` +
    `unevaluatedProperties: false` turned into one `additionalProperties: false` over the union of
    properties. It accepts exactly what the file accepts, but jsonschema judges it about twice as
    fast: no reference lookups, no tracking of evaluated keys (10,000 checks: seconds at start-up)."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = {k: resolve(v) for k, v in node.items() if k != "$defs"}
        ref = node.pop("$ref", None)
        if ref is None:
            return node
        target = resolve(defs[ref.removeprefix("#/$defs/")])
        merged = {**target, **{k: v for k, v in node.items() if k != "properties"}}
        if "title" in target:
            merged["x-kind"] = target["title"]  # what the value is ("duration"), for messages
        if "properties" in target or "properties" in node:
            merged["properties"] = {**target.get("properties", {}), **node.get("properties", {})}
        if merged.pop("unevaluatedProperties", True) is False:
            merged["additionalProperties"] = False
        return merged

    out = resolve(schema)
    out["$schema"] = schema["$schema"]
    return dict(out)


@cache
def _split_validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    """The schema without check items, and the schema of one check: together they say what the whole
    schema says (checks is an array of check), but a check can be judged alone and remembered."""
    from jsonschema import Draft202012Validator

    outer = copy.deepcopy(_inlined())
    one = {"$schema": outer["$schema"], **outer["properties"]["checks"].pop("items")}
    return Draft202012Validator(outer), Draft202012Validator(one)


def validate_document(doc: Document, memo: Memo | None = None, keys: Sequence[tuple[Any, ...] | None] = ()) -> None:
    """Append every schema violation of doc.data to doc.errors, placed at its key; with a memo,
    checks the schema accepted before are not judged again. keys: the memo's spec key of each check the last
    load built, by index (None: not known), which holds the digest of the check."""
    raw = doc.data.get("checks") if isinstance(doc.data, dict) else None
    checks = raw if isinstance(raw, list) else []
    if memo is None or not memo.valid:
        # No memo, or nothing known yet (the first load): one pass over the whole document is fastest.
        errors = [] if quickly_valid(doc.data) else list(_validator().iter_errors(doc.data))
        for error in errors:
            _place(doc, error)
        if memo is not None and not errors:
            for item in checks:
                memo.remember_valid(memo.digest(item))
        return
    outer, one = _split_validators()
    for error in outer.iter_errors(doc.data):
        _place(doc, error)
    for i, item in enumerate(checks):
        key = keys[i] if i < len(keys) else None
        known = memo.digest(item) if key is None else key[0]
        if memo.is_valid(known):
            continue
        errors = list(one.iter_errors(item))
        for error in errors:
            error.path.extendleft((i, "checks"))  # place it in the whole document
            _place(doc, error)
        if not errors:
            memo.remember_valid(known)


def _place(doc: Document, error: ValidationError) -> None:
    path = tuple(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        allowed = sorted(_property_names(error.schema))
        for key in error.instance:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                advice = f"did you mean {hint[0]!r}?" if hint else f"allowed: {', '.join(allowed)}"
                doc.error((*path, key), f"unknown key {str(key)[:60]!r}; {advice}", key=True)
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        _place(doc, _closest(error.context))
        return
    if "propertyNames" in error.schema_path:
        doc.error((*path, error.instance), f"key {_message(error)}", key=True)
        return
    doc.error(path, _message(error, path))


def _closest(errors: list[ValidationError]) -> ValidationError:
    """The alternative that got furthest: deepest path, and a wrong value before a wrong type."""
    return max(errors, key=lambda e: (len(e.absolute_path), e.validator != "type"))


def _message(error: ValidationError, path: tuple[Any, ...] = ()) -> str:
    schema, kind = error.schema, error.validator
    value = shown(path, error.instance)  # a secret's value never reaches a message
    title = (schema.get("x-kind") or schema.get("title", "value")) if isinstance(schema, dict) else "value"
    examples = schema.get("examples") if isinstance(schema, dict) else None
    example = f" (e.g. {', '.join(str(e) for e in examples)})" if examples else ""
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        rule = schema.get("x-rule") if isinstance(schema, dict) else None  # what to write instead, where there is a choice
        return (f"missing required key {missing[0]!r}" + (f"; {rule}" if rule else "")) if missing else error.message
    if kind == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        raw = error.instance
        got = _TYPE_NAMES.get(type(raw), type(raw).__name__)
        hint = "; YAML reads yes/no/on/off/true/false as booleans, so quote it" if isinstance(raw, bool) and "string" in wanted else ""
        display = "" if raw is None else f" {_show(value)}"  # not "got null null"
        return f"expected {' or '.join(_json_type(t) for t in wanted)}, got {got}{display}{hint}"
    if kind == "pattern":
        rule = schema.get("x-rule") if isinstance(schema, dict) else None  # the pattern in words, where a title is not enough
        return f"{_show(value)} is not a valid {title}{f': {rule}' if rule else ''}{example}"
    if kind == "const":
        return f"{_show(value)} is not allowed; must be {_show(error.validator_value)}"
    if kind == "enum":
        return f"{_show(value)} is not one of: {', '.join(_show(o) for o in error.validator_value)}"
    if kind in ("minimum", "maximum"):
        word = "at least" if kind == "minimum" else "at most"
        return f"{_show(value)} is out of range; must be {word} {error.validator_value}"
    if kind in ("exclusiveMinimum", "exclusiveMaximum"):
        word = "more than" if kind == "exclusiveMinimum" else "less than"
        return f"{_show(value)} is out of range; must be {word} {error.validator_value}"
    if kind in ("minItems", "maxItems"):
        n = error.validator_value
        return f"needs {'at least' if kind == 'minItems' else 'at most'} {n} item{'s' if n != 1 else ''}, has {len(error.instance)}"
    if kind in ("minLength", "maxLength"):  # no length shown: the value may be a secret
        n = error.validator_value
        bound = f"{'at least' if kind == 'minLength' else 'at most'} {n} character{'s' if n != 1 else ''}"
        return "must not be empty" if n == 1 else f"must be {bound}"
    return error.message if value is error.instance else f"{_show(value)} breaks the schema's {kind!r} rule"


def _property_names(schema: dict[str, Any]) -> set[str]:
    """Keys a mapping schema allows, following allOf."""
    names = set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        names |= _property_names(sub)
    return names


def _json_type(name: str) -> str:
    return {"object": "mapping", "array": "list"}.get(name, name)


def _show(value: Any) -> str:
    if value is HIDDEN:
        return repr(value)
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
