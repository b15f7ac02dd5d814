"""The commands over stored history: `report` and `export` (argument handling; the work is in
report.py, report_source.py and store/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pulse_agent.listen import agent_url


def cmd_report(args: argparse.Namespace) -> int:
    """Print a report; exit 1 when the data cannot be reached or the query is refused."""
    import time

    from pulse_agent.report import render
    from pulse_agent.report_source import ReportError, from_agent, from_database, from_parquet

    try:
        request, spec = report_request(args, time.time())
        if args.from_parquet:
            report = from_parquet(args.from_parquet, request)
        elif args.agent:
            report = from_agent(args.agent, request)
        else:
            database = args.db or (spec.agent.database if spec else "pulse.duckdb")
            offline = from_database(database, request)
            if offline is None:  # a running agent holds the file: ask it
                from pulse_agent.config.model import AgentSettings

                listen = spec.agent.listen if spec else AgentSettings().listen
                report = from_agent(agent_url(listen), request)
            else:
                report = offline
    except (ReportError, ValueError) as exc:
        print(f"pulse-agent report: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render(report, args.format))
    return 0


def report_request(args: argparse.Namespace, now: float):  # -> tuple[ReportRequest, AgentSpec | None]
    """The question of `report`, with check names resolved from --check and --label through the config."""
    from pulse_agent.config import ConfigInvalid, load_config
    from pulse_agent.report import ReportRequest

    try:
        spec = load_config(args.config)
    except ConfigInvalid as exc:
        if args.label or not (args.db or args.agent or args.from_parquet):
            raise ValueError(f"{args.config}: {exc.errors[0]}") from None
        spec = None  # the data is named explicitly; the config only adds labels and SLOs

    start, end = window_of(args, now)
    checks = list(args.check)
    if args.label:
        wanted = [tuple(label.split("=", 1)) for label in args.label]
        if any(len(w) != 2 for w in wanted):
            raise ValueError("--label takes KEY=VALUE")
        assert spec is not None
        checks += [c.name for c in spec.checks if all((k, v) in c.labels for k, v in wanted)]
        if not checks:
            raise ValueError(f"no check has the labels {', '.join(args.label)}")
    slos = {c.name: c.slo for c in spec.checks if c.slo is not None} if spec else {}
    return ReportRequest(start, end, tuple(dict.fromkeys(checks)), args.by, args.incidents, args.sql, slos), spec


def window_of(args: argparse.Namespace, now: float) -> tuple[float, float]:
    """[start, end) from --from/--to (ISO-8601) or --since (a duration back from --to or now)."""
    from datetime import datetime

    from pulse_agent.durations import parse_duration

    def instant(text: str) -> float:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO-8601 time such as 2026-11-22T10:00:00Z") from None

    end = instant(args.end) if args.end else now
    start = instant(args.start) if args.start else end - parse_duration(args.since)
    if start >= end:
        raise ValueError("the window is empty: --from must be before --to")
    return start, end


def cmd_export(args: argparse.Namespace) -> int:
    """Export results to Parquet, through the running agent when it holds the database."""
    import socket
    import time

    from pulse_agent.config import ConfigInvalid, load_config
    from pulse_agent.config.model import AgentSettings
    from pulse_agent.report_source import ReportError, ask_agent, export_from_database

    name = args.agent_name or socket.gethostname()
    try:
        start, end = window_of(args, time.time())
        try:
            settings = load_config(args.config).agent
        except ConfigInvalid:
            if not args.db:
                raise
            settings = AgentSettings()
        out = str(Path(args.out).absolute())
        rows = export_from_database(args.db or settings.database, out, start, end, name)
        via = "the database file"
        if rows is None:
            url = agent_url(settings.listen)
            rows = int(ask_agent(url, "/api/v1/export", {"out": out, "start": start, "end": end, "agent": name})["rows"])
            via = f"the agent at {url}"
    except (ReportError, ValueError, ConfigInvalid) as exc:
        print(f"pulse-agent export: {exc}", file=sys.stderr)
        return 1
    print(f"exported {rows} results to {out} (from {via})")
    return 0
