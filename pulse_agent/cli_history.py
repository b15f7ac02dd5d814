"""The commands over stored history: `report` and `export` (argument handling; the work is in
report.py, report_source.py and store/)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pulse_agent.config import AgentSpec
    from pulse_agent.config.files import Source
    from pulse_agent.config_facts import ConfigFacts
    from pulse_agent.report import ReportRequest

T = TypeVar("T")


def cmd_report(args: argparse.Namespace) -> int:
    """Print a report; exit 1 when the data cannot be reached or the query is refused."""
    import shutil

    from pulse_agent.gc_policy import gc_paused
    from pulse_agent.report import WIDTH

    # A report makes 100,000 rows of containers that all live until it is printed: collections would
    # only rescan them (the process ends after printing).
    with gc_paused():
        code, text = _report(args, shutil.get_terminal_size((WIDTH, 24)).columns)
    if text is not None:
        sys.stdout.write(text)
    return code


def _report(args: argparse.Namespace, width: int) -> tuple[int, str | None]:
    """cmd_report's exit code and its output (None: the error is printed)."""
    import time

    from pulse_agent.report import ReportError, UnknownCheck, answer, render
    from pulse_agent.report_source import from_agent, from_parquet, local_or_agent
    from pulse_agent.store.sandbox import DEFAULT_LIMITS, Limits
    from pulse_agent.store.table import Form

    try:
        facts = _facts(args)
        request = report_request(args, facts, time.time())
        limits = Limits(timeout=facts.query_timeout) if facts is not None else DEFAULT_LIMITS
        form: Form = "lines" if args.format == "json" else "values"  # fetched as the format wants it (either serves every format)
        if args.from_parquet:
            report = from_parquet(args.from_parquet, request, limits, form)
        elif args.agent:
            report = from_agent(args.agent, request)
        else:
            database, listen = _where(args, facts)
            report, _ = local_or_agent(database, listen, partial(answer, request=request, limits=limits, form=form),
                                       lambda url: from_agent(url, request))  # fmt: skip
    except UnknownCheck as exc:
        print(f"pulse-agent report: {exc}", file=sys.stderr)
        return 2, None
    except (ReportError, ValueError) as exc:
        print(f"pulse-agent report: {exc}", file=sys.stderr)
        return 1, None
    return 0, render(report, args.format, width)


def report_request(args: argparse.Namespace, facts: ConfigFacts | None, now: float) -> ReportRequest:
    """The question of `report`, with check names resolved from --check and --label through the config."""
    from pulse_agent.report import ReportRequest

    start, end = window_of(args, now)
    checks = list(args.check)
    if args.label:
        wanted = [tuple(label.split("=", 1)) for label in args.label]
        if any(len(w) != 2 for w in wanted):
            raise ValueError("--label takes KEY=VALUE")
        checks += facts.labelled(wanted) if facts else []
        if not checks:
            raise ValueError(f"no check has the labels {', '.join(args.label)}")
    slos, known = (dict(facts.slos), facts.names) if facts else ({}, ())
    return ReportRequest(start, end, tuple(dict.fromkeys(checks)), args.by, args.incidents, args.sql, slos, known)


def window_of(args: argparse.Namespace, now: float) -> tuple[float, float]:
    """[start, end) from --from/--to (ISO-8601) or --since (a duration back from --to or now)."""
    from pulse_agent.durations import parse_duration
    from pulse_agent.result import from_iso

    end = from_iso(args.end) if args.end else now
    start = from_iso(args.start) if args.start else end - parse_duration(args.since)
    if start >= end:
        raise ValueError("the window is empty: --from must be before --to")
    return start, end


def cmd_export(args: argparse.Namespace) -> int:
    """Export results to Parquet, through the running agent when it holds the database."""
    import socket
    import time

    from pulse_agent.report import ReportError
    from pulse_agent.report_source import ask_agent, export, local_or_agent
    from pulse_agent.store.export import Exported, check_agent_name

    name = args.agent_name or socket.gethostname()
    try:
        check_agent_name(name)
        start, end = window_of(args, time.time())
        database, listen = _where(args, _facts(args))
        out = str(Path(args.out).absolute())
        body = {"out": out, "start": start, "end": end, "agent": name}
        done, via = local_or_agent(
            database,
            listen,
            lambda con: export(con, out, start, end, name),
            lambda url: Exported(**ask_agent(url, "/api/v1/export", body)["exported"]),
            allowed_dirs=[out],  # the one directory this export may write
        )
    except (ReportError, ValueError) as exc:
        print(f"pulse-agent export: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(_plural(n, word) for n, word in ((done.results, "result"), (done.incidents, "incident"),
                                                      (done.config_versions, "config version")))  # fmt: skip
    print(f"exported {counts} in {_plural(done.files, 'file')} to {out} (from {via})")
    if done.kept:
        print(f"kept {done.kept} older files that hold more rows than the database still has (retention deleted some)")
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _config(args: argparse.Namespace) -> AgentSpec | None:
    """The config; None when it cannot be loaded but the data is named explicitly (see _accepted)."""
    return _accepted(args, partial(_load, args))


def _facts(args: argparse.Namespace) -> ConfigFacts | None:
    """What `report` and `export` need of the config (as _config), remembered per accepted config
    (config_facts.py): a large config is loaded once, not by every report."""

    def facts(sources: list[Source]) -> ConfigFacts:
        from pulse_agent.config_facts import accepted_facts
        from pulse_agent.validators import SHELL_VALIDATORS

        return accepted_facts(sources, partial(_load, args, sources), SHELL_VALIDATORS)

    return _accepted(args, facts)


def _load(args: argparse.Namespace, sources: list[Source], env: Mapping[str, str] | None = None, validators: Any = None) -> AgentSpec:
    """The config at -c from its files as read, with the shell's checks of what lies outside the text
    (validators: those, noted by config_facts)."""
    from pulse_agent.config import load_config
    from pulse_agent.validators import SHELL_VALIDATORS

    return load_config(args.config, env, validators=validators or SHELL_VALIDATORS, sources=sources)


def _accepted(args: argparse.Namespace, load: Callable[[list[Source]], T]) -> T | None:
    """load(the config's files as read); None when the config cannot be read or loaded but the data is
    named explicitly (then it only adds labels, SLOs, the database and the agent's address)."""
    explicit = args.db or getattr(args, "agent", None) or getattr(args, "from_parquet", None)
    if explicit and not getattr(args, "label", None) and not os.path.lexists(args.config):
        return None  # what load_config's "no such file" comes to here, without importing the config package
    from pulse_agent.config import ConfigInvalid
    from pulse_agent.config.files import read_sources

    try:
        return load(read_sources(args.config))
    except ConfigInvalid as exc:
        if getattr(args, "label", None) or not explicit:
            raise ValueError(f"{args.config}: {exc.errors[0]}") from None
        return None


def _where(args: argparse.Namespace, facts: ConfigFacts | None) -> tuple[str, str]:
    """The database file and the agent's listen address: --db, else the config's, else the defaults."""
    if facts is not None:
        return args.db or facts.database, facts.listen
    if args.db:
        from pulse_agent.listen import DEFAULT_LISTEN  # AgentSettings' default, without importing the config package

        return args.db, DEFAULT_LISTEN
    from pulse_agent.config.model import AgentSettings

    settings = AgentSettings()
    return settings.database, settings.listen
