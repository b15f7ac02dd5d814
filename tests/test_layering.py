"""Import layering, read from the source (AST, lazy and TYPE_CHECKING imports included): the pure core
imports no shell module, config imports nothing of the probes, alerts or sharding above it, the
transport judges no responses, web/ never imports the agent, nothing imports the CLI. The rules are
also run on the arrows issue #18 found, each of which they must refuse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "pulse_agent"

# Pure: plain values in, plain values out; no I/O, no process-wide state.
BASICS = {
    "pulse_agent",  # the package itself: __version__
    "pulse_agent.durations", "pulse_agent.sizes", "pulse_agent.names", "pulse_agent.phrases", "pulse_agent.schedule",
    "pulse_agent.result", "pulse_agent.backoff", "pulse_agent.listen", "pulse_agent.redact",
    "pulse_agent.probe", "pulse_agent.probe.syntax", "pulse_agent.probe.target", "pulse_agent.probe.allow", "pulse_agent.probe.regex",
    "pulse_agent.alerts", "pulse_agent.alerts.template", "pulse_agent.alerts.machine",
}  # fmt: skip
CONFIG = "pulse_agent.config"
DOMAIN = {
    "pulse_agent.probe.expect", "pulse_agent.probe.retry", "pulse_agent.probe.blackbox", "pulse_agent.live",
    "pulse_agent.live.diff", "pulse_agent.shard", "pulse_agent.capacity", "pulse_agent.store.queries", "pulse_agent.store.sketch",
    "pulse_agent.store.prefix", "pulse_agent.probe.push", "pulse_agent.store.table", "pulse_agent.compact",
}  # fmt: skip  # report.py is not: it runs user SQL in store/sandbox.py (threads, timers)
TRANSPORT = {"pulse_agent.probe.wire", "pulse_agent.probe.connect", "pulse_agent.probe.phases", "pulse_agent.probe.cert"}
JUDGING = {"pulse_agent.probe.expect", "pulse_agent.config.expectations"}


def is_pure(module: str) -> bool:
    return module in BASICS or module in DOMAIN or module == CONFIG or module.startswith(CONFIG + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports_of(module: str) -> set[str]:
    """Every pulse_agent module the source of module imports, anywhere in it."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from pkg import sub` imports the module pkg.sub
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m == "pulse_agent" or m.startswith("pulse_agent.")}


def violations(edges: set[tuple[str, str]]) -> list[str]:
    """The arrows (importer, imported) that break a layering rule, each with the rule."""
    out = []
    for source, target in sorted(edges):
        if target == "pulse_agent.cli" and source != "pulse_agent.__main__":
            out.append(f"{source} -> {target}: nothing imports the CLI")
        if source.startswith("pulse_agent.web") and target == "pulse_agent.agent":
            out.append(f"{source} -> {target}: web/ sees the agent only through view.AgentView")
        if is_pure(source) and not is_pure(target):
            out.append(f"{source} -> {target}: the pure core imports no shell module")
        if (source == CONFIG or source.startswith(CONFIG + ".")) and target in DOMAIN:
            out.append(f"{source} -> {target}: config is below the probes, alerts and sharding that read it")
        if source in TRANSPORT and target in JUDGING:
            out.append(f"{source} -> {target}: the transport carries responses, it does not judge them")
    return out


def test_the_package_keeps_its_layers():
    edges = {(m, t) for m in MODULES for t in imports_of(m)}
    assert violations(edges) == []


def test_the_pure_core_is_what_the_readme_calls_pure():
    for module in ["pulse_agent.config.build", "pulse_agent.schedule", "pulse_agent.phrases", "pulse_agent.durations",
                   "pulse_agent.probe.expect", "pulse_agent.alerts.machine", "pulse_agent.live.diff", "pulse_agent.store.queries"]:  # fmt: skip
        assert module in MODULES and is_pure(module), module


@pytest.mark.parametrize(
    "arrow",
    [
        ("pulse_agent.workers", "pulse_agent.cli"),  # the event loop choice came from cli.py
        ("pulse_agent.config.build", "pulse_agent.probe.expect"),  # expectation parsers
        ("pulse_agent.config.build", "pulse_agent.alerts.notify"),  # Apprise URL checks
        ("pulse_agent.config.build", "pulse_agent.shard"),  # and shard.py imported config.model back
        ("pulse_agent.probe.wire", "pulse_agent.probe.expect"),  # a value type (Failure)
        ("pulse_agent.web.api", "pulse_agent.agent"),  # behind TYPE_CHECKING
        ("pulse_agent.probe.allow", "pulse_agent.probe.connect"),  # pure allowed_targets needed the prober's Target
        ("pulse_agent.store.queries", "pulse_agent.store.db"),  # report queries needed the writer's module for utc()
        ("pulse_agent.config", "pulse_agent.gc_policy"),  # loading switched the process-wide GC
    ],
)
def test_each_arrow_issue_18_found_is_refused(arrow):
    assert violations({arrow}), arrow
