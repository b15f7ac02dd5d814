"""Validated plain data -> AgentSpec: defaults merged, cross-references and values checked."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pulse_agent.alerts.template import template_problem
from pulse_agent.config import slo_rules
from pulse_agent.config.check import NO_VALIDATORS, CheckBuilder, Validators, converted_value, env_headers, maintenance_windows, noting
from pulse_agent.config.depends import dependency_problems
from pulse_agent.config.errors import ConfigError, KeyPath
from pulse_agent.config.fast import fast_path
from pulse_agent.config.load import Document
from pulse_agent.config.memo import Memo, canonical
from pulse_agent.config.model import (
    AgentSettings,
    AgentSpec,
    CheckSpec,
    ModuleSpec,
    NotifierSpec,
    Shard,
    StatusPageSpec,
)
from pulse_agent.config.reparse import Reuse
from pulse_agent.config.transport import transport_of
from pulse_agent.durations import parse_duration
from pulse_agent.listen import listen_problem
from pulse_agent.probe.allow import entry_problem
from pulse_agent.sizes import parse_size


def build_spec(doc: Document, memo: Memo | None = None, validators: Validators = NO_VALIDATORS, again: Reuse | None = None) -> AgentSpec:
    """Typed spec of a schema-checked document; semantic problems are appended to doc.errors.

    A value with a schema error is not checked again, but everything else is, so that all
    errors come out at once. The spec is only used when doc.errors stays empty.
    again: the specs the last load built of the checks an edit left as they were (config/reparse.py).
    """
    clean = _cleanliness([e.path for e in doc.errors])

    data: dict[str, Any] = doc.data if isinstance(doc.data, dict) else {}
    raw_notifiers: dict[str, Any] = _of_type(data, "notifiers", dict)
    built = (
        _guarded(doc, ("notifiers", n), lambda n=n, raw=raw: _notifier(doc, n, raw, validators))
        for n, raw in raw_notifiers.items()
        if clean(("notifiers", n))
    )
    notifiers = tuple(n for n in built if n is not None)
    windows = maintenance_windows(doc, ("maintenance",), data.get("maintenance")) if clean(("maintenance",)) else ()
    raw_checks: list[Any] = _of_type(data, "checks", list)
    defaults: dict[str, Any] = _of_type(data, "defaults", dict)
    checks: list[CheckSpec] = []
    first_seen: dict[str, int] = {}
    notifier_names = set(raw_notifiers)
    parsed: dict[tuple[Any, ...], Any] = {}  # parts made for one check serve the next (CheckBuilder.shared)
    # A check's spec depends only on these (and itself): reuse it when none changed and nothing is wrong.
    reuse = memo if memo is not None and not doc.errors else None
    # The common check straight to its spec (config/fast.py), when no error anywhere could need placing.
    fast = fast_path(defaults, windows, parsed) if clean(()) else None
    context = (canonical(defaults), env_headers(defaults), tuple(sorted(notifier_names)), windows) if reuse is not None else ()
    # built in this very context (the head's defaults, notifiers and windows): each its spec again, as is
    known = again.specs if again is not None and reuse is not None and again.context == context else None
    asked: list[object] = []  # the checks of this machine the builds below made (their specs are built again next load)
    checked = noting(validators, lambda *call: asked.append(call)) if reuse is not None else validators
    for i, raw in enumerate(raw_checks):
        if not isinstance(raw, dict):
            continue
        name = raw.get("name")
        if isinstance(name, str) and name in first_seen:
            first, here = doc.where(("checks", first_seen[name], "name")), doc.where(("checks", i, "name"))
            at = "" if first is None else f" (first at line {first.line})" if here and here.file == first.file else f" (first at {first})"
            doc.error(("checks", i, "name"), f"duplicate check name {name!r}{at}")
        elif isinstance(name, str):
            first_seen[name] = i
        if known is not None and (spec := known[i]) is not None and not reuse.asks_machine(again.keys[i]):  # type: ignore[union-attr,index]
            spec = reuse.reused(again.keys[i], spec)  # type: ignore[union-attr,arg-type]
        else:
            spec = reuse.spec_of(raw, context) if reuse is not None else None
        if spec is None:
            was = again.keys[i] if again is not None else None  # an unchanged item's digest: no need to write it out
            key = (reuse.digest(raw) if was is None else was[0], env_headers(raw), *context) if reuse is not None else ()
            spec = reuse.spec(key, raw, context) if reuse is not None else None
        if spec is None and fast is not None:
            spec = fast.spec(raw)
            if spec is not None and reuse is not None:
                reuse.remember_spec(key, spec, raw, context)
        if spec is None:
            errors, asks = len(doc.errors), len(asked)
            builder = CheckBuilder(doc, ("checks", i), raw, defaults, clean, checked, parsed)
            spec = _guarded(doc, ("checks", i), lambda builder=builder: builder.build(notifier_names, windows))
            if reuse is not None and spec is not None and len(doc.errors) == errors:
                reuse.remember_spec(key, spec, raw, context, machine=len(asked) > asks)
        if spec is not None:
            checks.append(spec)
    _check_dependencies(doc, raw_checks, first_seen)
    agent = AgentSettings(**_agent_settings(doc, data.get("agent") or {})) if clean(("agent",)) else AgentSettings()
    if (problem := listen_problem(agent.listen)) is not None:
        doc.error(("agent", "listen"), problem)
    try:
        Shard.parse(agent.shard)
    except ValueError as exc:
        doc.error(("agent", "shard"), str(exc))
    if agent.rollup < agent.retention:
        doc.error(("agent", "rollup"), "must be at least agent.retention: reports count old windows from the hourly rollups")
    modules = _modules(doc, _of_type(data, "modules", dict), clean, validators)
    page = _status_page(doc, data.get("status_page"), set(first_seen)) if clean(("status_page",)) else None
    rules = slo_rules.rules(data.get("rules"), notifier_names, doc.error, validators.rule_sql) if clean(("rules",)) else ()
    return AgentSpec(
        source=doc.source, agent=agent, checks=tuple(checks), notifiers=notifiers, modules=modules, status_page=page, rules=rules
    )


def _status_page(doc: Document, raw: Any, check_names: set[str]) -> StatusPageSpec | None:
    """status_page: as a StatusPageSpec; a public name for no check is an error (a typo would show the config name)."""
    if not isinstance(raw, dict):
        return None
    names = raw.get("names") or {}
    for name in names:
        if name not in check_names:
            doc.error(("status_page", "names", name), f"no check named {name!r}")
    listen = raw.get("listen")
    if isinstance(listen, str) and (problem := listen_problem(listen)):
        doc.error(("status_page", "listen"), problem)
    selector = raw.get("checks", "all")
    return StatusPageSpec(
        enabled=raw.get("enabled", True),
        title=raw.get("title", "Status"),
        description=raw.get("description", ""),
        logo_url=raw.get("logo_url"),
        labels=tuple(sorted(selector["labels"].items())) if isinstance(selector, dict) else (),
        group_by=raw.get("group_by"),
        listen=raw.get("listen"),
        names=tuple(sorted(names.items())),
    )


_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _check_dependencies(doc: Document, raw_checks: list[Any], first_seen: dict[str, int]) -> None:
    """Every depends_on names a check, and no cycle: errors placed at the offending entry."""
    if not any(isinstance(raw, dict) and raw.get("depends_on") for raw in raw_checks):
        return  # nothing depends on anything: no name to look up, no cycle
    deps = {
        # names the schema refused are reported once, there
        name: [t for t in raw.get("depends_on") or () if isinstance(t, str) and _NAME.fullmatch(t)]
        if isinstance(raw.get("depends_on"), list)
        else []
        for name, i in first_seen.items()
        if isinstance(raw := raw_checks[i], dict)
    }
    for check, j, message in dependency_problems(deps):
        doc.error(("checks", first_seen[check], "depends_on", j), message)


# Check keys that mean nothing for a /probe module: Prometheus' scrape decides when, and alerting is Prometheus'.
NOT_IN_MODULES = ("schedule", "timezone", "missed", "alert", "labels", "enabled", "slo", "maintenance", "depends_on")


def _modules(doc: Document, raw_modules: dict[str, Any], clean: Any, validators: Validators) -> tuple[ModuleSpec, ...]:
    """modules: as ModuleSpecs; problems go to doc.errors."""
    modules = []
    for name, raw in raw_modules.items():
        path: KeyPath = ("modules", name)
        if not isinstance(raw, dict):
            continue
        failed = not clean(path)
        for key in NOT_IN_MODULES:
            if key in raw:
                doc.error(
                    (*path, key),
                    f"{key!r} is not a module setting: a module is a probe template, and Prometheus' scrape decides when it runs",
                )
                failed = True
        for key in ("http_version", "proxy_url", "proxy_from_environment"):
            if key in raw and transport_of({key: raw[key]}) != "fast":
                doc.error(
                    (*path, key),
                    f"{key!r} is not a module setting: allowed_targets are judged on the addresses "
                    "our HTTP/1.1 client connects to, and httpx (HTTP/2, proxies) resolves and connects on its own",
                )
                failed = True
        targets = raw.get("allowed_targets")
        for j, entry in enumerate(targets if isinstance(targets, list) and clean((*path, "allowed_targets")) else []):
            if (problem := entry_problem(entry)) is not None:
                doc.error((*path, "allowed_targets", j), problem)
                failed = True
        settings = {k: v for k, v in raw.items() if k != "allowed_targets" and k not in NOT_IN_MODULES}
        template = CheckBuilder(doc, path, {**settings, "name": name, "url": ""}, {}, clean, validators).build(set(), ())
        if template is not None and not failed:
            modules.append(ModuleSpec(name, template, tuple(targets or ())))
    return tuple(modules)


def _agent_settings(doc: Document, raw: dict[str, Any]) -> dict[str, Any]:
    """agent: as AgentSettings takes it (durations in seconds)."""
    converters: dict[str, Callable[[Any], Any]] = {
        "retention": parse_duration, "rollup": parse_duration, "query_timeout": parse_duration, "query_memory_limit": parse_size,
    }  # fmt: skip
    out = dict(raw)
    for key, parse in converters.items():
        if key in raw:
            out[key] = converted_value(parse, raw[key], lambda msg, key=key: doc.error(("agent", key), msg), None)
            if out[key] is None:
                del out[key]
    if out.get("api_token") == "":  # ${PULSE_API_TOKEN:-} with the variable unset
        del out["api_token"]
    return out


def _guarded(doc: Document, path: KeyPath, build: Any) -> Any:
    """build(), or None after one error at path: a value the checks missed is a line, never a traceback."""
    try:
        return build()
    except Exception as exc:
        doc.error(path, f"cannot be used ({type(exc).__name__}: {str(exc)[:200]})")
        return None


def _cleanliness(error_paths: list[KeyPath]) -> Any:
    """clean(path): whether no error lies at, under or above path. Sets, so that thousands of errors
    cost no more per value than one."""
    at = set(error_paths)
    above = {p[:n] for p in at for n in range(len(p))}

    def clean(path: KeyPath) -> bool:
        return not at or (path not in above and not any(path[:n] in at for n in range(len(path) + 1)))

    return clean


def _of_type(data: dict[str, Any], key: str, kind: type) -> Any:
    """data[key] when it has the expected kind (else the schema already complained), or an empty one."""
    value = data.get(key)
    return value if isinstance(value, kind) else kind()


def _notifier(doc: Document, name: str, raw: dict[str, Any], validators: Validators) -> NotifierSpec:
    for j, url in enumerate(raw["urls"]):
        if (problem := validators.notifier_url(url)) is not None:
            doc.error(("notifiers", name, "urls", j), problem)
    for key in ("title", "body"):
        if key in raw and (problem := template_problem(raw[key])) is not None:
            doc.error(("notifiers", name, key), problem)

    def seconds(key: str, default: float) -> float:
        return converted_value(parse_duration, raw.get(key, default), lambda msg: doc.error(("notifiers", name, key), msg), default)  # type: ignore[no-any-return]

    return NotifierSpec(
        name=name,
        urls=tuple(raw["urls"]),
        title=raw.get("title"),
        body=raw.get("body"),
        backoff=seconds("backoff", 5),
        max_backoff=seconds("max_backoff", 300),
        give_up_after=seconds("give_up_after", 86400),
        timeout=seconds("timeout", 10),
        group_by=tuple(raw.get("group_by", ())),
        group_wait=seconds("group_wait", 30),
        group_interval=seconds("group_interval", 300),
    )


def errors_of(doc: Document) -> list[ConfigError]:
    """Errors found so far, each once."""
    return list(dict.fromkeys(doc.errors))
