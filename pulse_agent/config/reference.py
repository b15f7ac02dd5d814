"""The config reference (docs/config.md), rendered from the schema's titles, descriptions,
defaults and examples, so the documentation cannot drift from what the agent accepts. Pure."""

from __future__ import annotations

import json
from typing import Any

# (heading, key path shown to readers, where in the schema)
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("Top level", "", "#"),
    ("agent", "agent.", "#/$defs/agent"),
    ("checks[]", "checks[].", "#/$defs/check"),
    ("check settings", "", "#/$defs/checkSettings"),
    ("retries", "retries.", "#/$defs/retries"),
    ("push", "checks[].push.", "#/$defs/push"),
    ("expect", "expect.", "#/$defs/expect"),
    ("alert", "alert.", "#/$defs/alert"),
    ("notifiers.NAME", "notifiers.NAME.", "#/$defs/notifier"),
    ("maintenance[]", "maintenance[].", "#/$defs/maintenance/items"),
    ("modules.NAME", "modules.NAME.", "#/$defs/module"),
    ("status_page", "status_page.", "#/$defs/statusPage"),
)
_SECTION_OF = {ref: f"*{heading}*" for heading, _, ref in SECTIONS} | {"#/$defs/maintenance": "list of *maintenance[]*"}


def render_reference(schema: dict[str, Any]) -> str:
    """Markdown: one table per section, one row per key."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from schemas/pulse.schema.json by `pulse-agent schema --markdown`; do not edit. -->",
        "",
        str(schema.get("description", "")),
        "",
        "Durations: `250ms`, `30s`, `5m`, `1h30m`, `7d`, or a number of seconds. Sizes: `512KiB`, `1MiB`, or bytes.",
        "`${VAR}` and `${VAR:-default}` are expanded from the environment; `$${` is a literal `${`.",
    ]
    for heading, prefix, ref in SECTIONS:
        node = _at(schema, ref)
        out += ["", f"## {heading}", ""]
        if node.get("description") and ref != "#":
            out += [str(node["description"]), ""]
        out += ["| key | type | default | description | example |", "|---|---|---|---|---|"]
        required = set(node.get("required", ()))
        for key, prop in node.get("properties", {}).items():
            name = f"`{prefix}{key}`" + (" (required)" if key in required else "")
            out.append(
                f"| {name} | {_type(schema, prop)} | {_default(prop)} | {_cell(_describe(schema, prop))} | {_example(schema, prop)} |"
            )
    return "\n".join(out) + "\n"


def _at(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = schema
    for part in ref.lstrip("#/").split("/"):
        if part:
            node = node[part]
    return dict(node)


def _target(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    """The property with what its $ref points to filled in underneath."""
    if "$ref" not in prop:
        return prop
    return {**_at(schema, prop["$ref"]), **{k: v for k, v in prop.items() if k != "$ref"}}


def _type(schema: dict[str, Any], prop: dict[str, Any]) -> str:
    ref = str(prop.get("$ref") or "")
    if ref in _SECTION_OF:
        return _SECTION_OF[ref]
    if ref:
        return ref.rsplit("/", 1)[-1]
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    kinds = prop.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = []
    for kind in kinds:
        if kind == "array":
            item = prop.get("items", {})
            words.append(f"list of {_type(schema, item)}" if item else "list")
        elif kind == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
            words.append(f"mapping to {_type(schema, prop['additionalProperties'])}")
        else:
            words.append("mapping" if kind == "object" else str(kind))
    return " or ".join(words)


def _describe(schema: dict[str, Any], prop: dict[str, Any]) -> str:
    full = _target(schema, prop)
    title, text = full.get("title", ""), full.get("description", "")
    return f"**{title}.** {text}" if title and text else title or text


def _default(prop: dict[str, Any]) -> str:
    return f"`{json.dumps(prop['default'])}`" if "default" in prop else ""


def _example(schema: dict[str, Any], prop: dict[str, Any]) -> str:
    examples = _target(schema, prop).get("examples") or []
    return _cell(", ".join(f"`{json.dumps(e)}`" for e in examples[:2]))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
