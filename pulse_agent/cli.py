"""Command line: parse arguments, call one function per command. Heavy imports stay lazy."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from pulse_agent import __version__
from pulse_agent.cli_history import cmd_export, cmd_report
from pulse_agent.cli_humans import add_parsers as add_human_parsers
from pulse_agent.cli_humans import cmd_ack, cmd_pause, cmd_silence
from pulse_agent.cli_rules import add_parsers as add_rules_parsers
from pulse_agent.cli_rules import cmd_rules

DEFAULT_CONFIG = "pulse.yaml"


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        default=os.environ.get("PULSE_CONFIG", DEFAULT_CONFIG),
        help="config file, or a directory of *.yaml files (default: $PULSE_CONFIG or pulse.yaml)",
    )


def _window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="24h", help="window back from now (default 24h)")
    p.add_argument("--from", dest="start", help="window start, ISO-8601 (instead of --since)")
    p.add_argument("--to", dest="end", help="window end, ISO-8601 (default now)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every command."""
    parser = argparse.ArgumentParser(prog="pulse-agent", description="Declarative HTTP monitoring agent.")
    parser.add_argument("--version", action="version", version=f"pulse-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the agent (reloads the config when it changes, on SIGHUP and POST /-/reload)")
    _config_arg(run)
    run.add_argument("--db", help="DuckDB file (overrides agent.database)")
    run.add_argument("--listen", help="HOST:PORT of /metrics, /healthz, /readyz (overrides agent.listen)")
    run.add_argument("--log-format", choices=["json", "text"], help="log format (overrides agent.log_format)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="overrides agent.log_level")
    run.add_argument(
        "--shard",
        default=os.environ.get("PULSE_SHARD"),
        help="K/N: run only shard K of N of the checks; ordinal/N: K is the StatefulSet pod's ordinal + 1 "
        "(default: $PULSE_SHARD, agent.shard)",
    )

    validate = sub.add_parser("validate", help="check config files; exit 1 listing every error")
    _config_arg(validate)
    validate.add_argument("files", nargs="*", help="configs to check instead of -c (for pre-commit)")
    validate.add_argument("--show-schedule", action="store_true", help="also list each check's next due time")
    validate.add_argument("--shard", help="K/N: also list the checks shard K of N owns")
    validate.add_argument(
        "--require-env",
        action="store_true",
        help="fail on unset ${VAR}s as run does (default: check the structure and list the variables run needs)",
    )

    schedule = sub.add_parser("schedule", help="print the next due times of a schedule expression")
    schedule.add_argument("expr", help="e.g. '*/5 * * * *', 'every weekday at 08:00', 'at 2026-12-01T09:00:00Z'")
    schedule.add_argument("--timezone", default="UTC", help="IANA time zone the schedule is read in (default UTC)")
    schedule.add_argument("--from", dest="start", help="ISO-8601 instant to start from (default now)")
    schedule.add_argument("-n", type=int, default=5, help="how many due times (default 5)")

    check = sub.add_parser("check", help="run one check now and print the result")
    check.add_argument("name", help="name of the check")
    _config_arg(check)
    check.add_argument("--format", choices=["text", "json"], default="text")

    notify = sub.add_parser("notify", help="send a test notification through a notifier and report each URL")
    notify.add_argument("notifier", help="name of the notifier")
    _config_arg(notify)
    notify.add_argument("--message", default="it works", help="text of the test message")

    report = sub.add_parser("report", help="how did the checks do: uptime, latency, incidents, SLOs; or any read-only SQL")
    _config_arg(report)
    where = report.add_mutually_exclusive_group()
    where.add_argument("--db", help="DuckDB file (default: agent.database of the config)")
    where.add_argument("--agent", help="ask the agent at this URL (default: when the file is locked, the config's agent.listen)")
    where.add_argument("--from-parquet", metavar="GLOB", help="read exported Parquet files, e.g. 'exports/**/*.parquet'")
    _window_args(report)
    report.add_argument("--check", action="append", default=[], help="only this check (repeatable)")
    report.add_argument("--label", action="append", default=[], help="only checks with this label, k=v (repeatable)")
    report.add_argument("--format", choices=["table", "json", "csv", "markdown"], default="table")
    view = report.add_mutually_exclusive_group()
    view.add_argument("--by", choices=["hour", "day"], help="a time series instead of one row per check")
    view.add_argument("--incidents", action="store_true", help="the list of incidents")
    view.add_argument("--sql", help="run one read-only SELECT over results (the window's rows), all_results (every row), incidents, ...")

    export = sub.add_parser("export", help="write results, incidents and config versions as Parquet, whole UTC days (DIR/date=YYYY-MM-DD/)")
    _config_arg(export)
    export.add_argument("--format", choices=["parquet"], default="parquet")
    export.add_argument(
        "--out", required=True, help="directory to write into (a running agent holding the database exports only into its agent.export_dir)"
    )
    export.add_argument("--db", help="DuckDB file (default: agent.database of the config)")
    export.add_argument("--agent-name", help="value of the agent column and part of the file names (default: this host's name)")
    _window_args(export)

    health = sub.add_parser("healthcheck", help="exit 0 when a running agent's /healthz answers 200, else 1")
    _config_arg(health)
    health.add_argument("--url", help="the /healthz URL (default: from agent.listen of the config)")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default 3)")

    add_human_parsers(sub, _config_arg)
    add_rules_parsers(sub, _config_arg)

    schema = sub.add_parser("schema", help="print the JSON Schema of the config file")
    schema.add_argument("--markdown", action="store_true", help="print the config reference (docs/config.md) instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the pulse-agent command."""
    args = build_parser().parse_args(argv)
    commands = {
        "run": cmd_run,
        "validate": cmd_validate,
        "check": cmd_check,
        "notify": cmd_notify,
        "healthcheck": cmd_healthcheck,
        "report": cmd_report,
        "export": cmd_export,
        "schema": cmd_schema,
        "schedule": cmd_schedule,
        "silence": cmd_silence,
        "ack": cmd_ack,
        "pause": cmd_pause,
        "resume": cmd_pause,
        "rules": cmd_rules,
    }
    command = commands[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:
        return 130


def _load(path: str, memo=None, *, placeholders: bool = False, ahead=None):  # -> AgentSpec | None
    from pulse_agent.config import ConfigInvalid, load_config
    from pulse_agent.validators import SHELL_VALIDATORS

    try:
        return load_config(path, memo=memo, placeholders=placeholders, validators=SHELL_VALIDATORS, ahead=ahead)
    except ConfigInvalid as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        n = len(exc.errors)
        print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 with a summary per config when all are valid, else 1 with every error."""
    failed = 0
    for path in args.files or [args.config]:
        spec = _load(path, placeholders=not args.require_env)
        if spec is None:
            failed += 1
            continue
        enabled = sum(c.enabled for c in spec.checks)
        disabled = len(spec.checks) - enabled
        needs = f"; run needs {', '.join(spec.unset_variables)} set (unset here)" if spec.unset_variables else ""
        print(
            f"{path}: valid ({_count(len(spec.checks), 'check')}"
            f"{f', {disabled} disabled' if disabled else ''}, {_count(len(spec.notifiers), 'notifier')}){needs}"
        )
        if args.shard:
            try:
                print_shard(spec, args.shard)
            except ValueError as exc:
                print(f"pulse-agent validate: --shard: {exc}", file=sys.stderr)
                return 1
        if args.show_schedule:
            print_next_due(spec.checks)
    return 1 if failed else 0


def print_shard(spec, text: str) -> None:  # spec: AgentSpec
    """Which checks shard K/N of spec runs."""
    from pulse_agent.shard import Shard, owned, resolve

    shard = Shard.parse(resolve(text, os.environ))
    mine = owned(spec, shard).checks
    print(f"shard {shard} runs {len(mine)} of {_count(len(spec.checks), 'check')}: {', '.join(c.name for c in mine) or '-'}")


def cmd_healthcheck(args: argparse.Namespace) -> int:
    """Exit 0 when the agent's /healthz answers 200, else 1 (for container HEALTHCHECKs: no curl needed)."""
    import urllib.request

    url = args.url or health_url(args.config)
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            ok = answer.status == 200
    except (OSError, ValueError) as exc:
        print(f"pulse-agent healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    print(f"{url}: {'ok' if ok else 'not healthy'}")
    return 0 if ok else 1


def health_url(config: str) -> str:
    """http://HOST:PORT/healthz of agent.listen in config (the default when it cannot be read)."""
    from pulse_agent.config import ConfigInvalid, load_config
    from pulse_agent.config.model import AgentSettings
    from pulse_agent.listen import agent_url

    try:
        listen = load_config(config).agent.listen
    except ConfigInvalid:
        listen = AgentSettings().listen
    return f"{agent_url(listen)}/healthz"


def print_next_due(checks) -> None:  # checks: Sequence[CheckSpec]
    """One line per check: name, next due time (UTC), schedule as written, zone."""
    import time

    from pulse_agent.probe.push import PushState
    from pulse_agent.probe.push import due as push_due
    from pulse_agent.result import iso

    now = time.time()
    width = max((len(c.name) for c in checks), default=0)
    for c in checks:
        # a push check's interval counts from its last ping: shown as for one the agent starts watching now
        due = None if not c.enabled else push_due(c, PushState(since=now)) if c.kind == "push" else c.schedule.next_due(now, c.name)
        when = "disabled" if not c.enabled else (iso(due) if due is not None else "never (its one run is past)")
        zone = f"  [{c.timezone}]" if c.timezone != "UTC" else ""
        print(f"  {c.name:<{width}}  {when:<24}  {c.schedule.text}{zone}")


def cmd_schedule(args: argparse.Namespace) -> int:
    """Print the next N due times: UTC, and local time beside it when a zone is given."""
    from datetime import datetime

    from pulse_agent.result import iso
    from pulse_agent.schedule import ScheduleError, parse_schedule, time_zone

    try:
        zone = time_zone(args.timezone)
        schedule = parse_schedule(args.expr, args.timezone)
        start = datetime.fromisoformat(args.start) if args.start else datetime.now(zone)
    except (ScheduleError, ValueError) as exc:
        print(f"pulse-agent: {exc}", file=sys.stderr)
        return 1
    t: float | None = (start if start.tzinfo else start.replace(tzinfo=zone)).timestamp()
    for _ in range(args.n):
        t = schedule.next_due(t, args.expr) if t is not None else None
        if t is None:
            break
        try:
            local = f"  {datetime.fromtimestamp(t, zone).isoformat()}" if args.timezone != "UTC" else ""
            print(f"{iso(t).replace('.000Z', 'Z')}{local}")
        except (ValueError, OverflowError, OSError):
            print("pulse-agent: the next due time is outside the years 1 .. 9999", file=sys.stderr)
            return 1
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema, or the config reference rendered from it."""
    from pulse_agent.config.schema import schema_text

    if args.markdown:
        from pulse_agent.config.reference import render_reference

        sys.stdout.write(render_reference(json.loads(schema_text())))
    else:
        sys.stdout.write(schema_text())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Run one check once; exit 0 if it passed, 1 if it failed, 2 if it does not exist."""
    import asyncio

    from pulse_agent.probe.kinds import Probes

    spec = _load(args.config)
    if spec is None:
        return 1
    check = spec.check(args.name)
    if check is None:
        return _not_found(args.config, "check", args.name, [c.name for c in spec.checks])
    if check.kind == "push":  # nothing to probe: what the agent knows of its pings
        from pulse_agent.push_status import as_json, describe, push_view

        view = push_view(check, spec.agent.database, spec.agent.listen)
        print(json.dumps(as_json(check, view)) if args.format == "json" else describe(check, view))
        return 0 if view.last_result is None or view.last_result["ok"] else 1

    async def once():  # -> Result
        prober = Probes()
        try:
            return await prober.run(check)
        finally:
            await prober.close()

    result = asyncio.run(once())
    if args.format == "json":
        print(json.dumps({**result.to_json(), **({"transport": check.transport} if check.kind == "http" else {})}))
    else:
        print(format_result(result))
    return 0 if result.ok else 1


def cmd_notify(args: argparse.Namespace) -> int:
    """Send a test message to each URL of a notifier; exit 0 if all arrived, 1 if any failed, 2 if no such notifier."""
    import asyncio

    from pulse_agent.alerts.notify import send_trial

    spec = _load(args.config)
    if spec is None:
        return 1
    notifier = next((n for n in spec.notifiers if n.name == args.notifier), None)
    if notifier is None:
        return _not_found(args.config, "notifier", args.notifier, [n.name for n in spec.notifiers])
    outcomes = asyncio.run(send_trial(notifier, args.message))
    for hint, error in outcomes:
        print(f"ok      {hint}" if error is None else f"FAILED  {hint}: {error}")
    failed = sum(1 for _, error in outcomes if error is not None)
    print(f"{notifier.name}: {len(outcomes) - failed} of {_count(len(outcomes), 'URL')} delivered")
    return 1 if failed else 0


def _not_found(config: str, kind: str, name: str, names: list[str]) -> int:
    print(f"{config}: no {kind} named {name!r} ({kind}s: {', '.join(names) or 'none'})", file=sys.stderr)
    return 2


def format_result(result) -> str:  # result: Result
    """One human line: OK/FAIL, status, time, and why."""
    verdict = ("DEGRADED" if result.degraded else "OK") if result.ok else "FAIL"
    parts = [verdict, result.check]
    if result.status_code is not None:
        parts.append(str(result.status_code))
    if result.response_time_ms is not None:
        parts.append(f"{result.response_time_ms:.1f}ms")
    if result.attempts > 1:
        parts.append(f"after {result.attempts} attempts")
    if result.error:
        parts.append(f"{result.error_kind}: {result.error}")
    phases = ", ".join(f"{name.replace('_', ' ')} {ms:.1f}ms" for name, ms in result.phases().items() if ms is not None and name != "total")
    if phases:
        parts.append(f"({phases})")
    return "  ".join(parts)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the agent until SIGTERM or SIGINT."""
    import asyncio
    import signal

    from pulse_agent.config import Memo, begin_load
    from pulse_agent.gc_policy import GcPolicy, limit_arenas
    from pulse_agent.logs import setup_logging

    if args.listen is not None:
        from pulse_agent.listen import listen_problem

        if (problem := listen_problem(args.listen)) is not None:
            print(f"pulse-agent: --listen: {problem}", file=sys.stderr)
            return 2
        # The config can follow the address: the bundled self-checks probe ${PULSE_LISTEN:-...}.
        os.environ["PULSE_LISTEN"] = args.listen
    memo = Memo()  # the agent's reloads redo only what an edit changed
    # A large config's parse starts first, in its child process (config/child.py), and the agent's own
    # imports (aiohttp, duckdb, apprise: most of a second of CPU) run beside it rather than after it.
    ahead = begin_load(args.config, memo)

    from pulse_agent.agent import Agent, RunOptions
    from pulse_agent.listen import OpenApiRefused
    from pulse_agent.loop import event_loop_factory
    from pulse_agent.shard import Shard, resolve
    from pulse_agent.store import StoreError

    limit_arenas()  # the process is the agent's: before it starts any thread (glibc keeps the limit for good)
    gc_policy = GcPolicy()  # collections pause while loading and starting
    with gc_policy.paused():
        spec = _load(args.config, memo, ahead=ahead)
    del ahead  # it holds the config's text, for as long as the agent runs
    if spec is None:
        return 1
    setup_logging(args.log_format or spec.agent.log_format, args.log_level or spec.agent.log_level)

    try:
        shard = resolve(args.shard or spec.agent.shard, os.environ)  # "ordinal/N": from the StatefulSet pod's name
        Shard.parse(shard)
    except ValueError as exc:
        print(f"pulse-agent: --shard/PULSE_SHARD: {exc}", file=sys.stderr)
        return 1
    options = RunOptions(database=args.db, listen=args.listen, config=args.config, shard=shard)
    agent = Agent(spec, options, memo=memo, gc_policy=gc_policy)

    async def main_task() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task[object]] = set()

        def on_sighup() -> None:
            task = loop.create_task(agent.reload("sighup"))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        return await agent.run(stop)

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(main_task())
    except (StoreError, OpenApiRefused) as exc:
        print(f"pulse-agent: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the listen address is taken
        print(f"pulse-agent: cannot listen on {args.listen or spec.agent.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"
