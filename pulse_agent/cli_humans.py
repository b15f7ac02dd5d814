"""The commands that talk to a running agent for people in the loop: `silence add|list|expire`,
`ack`, `pause`, `resume` (argument handling; the work is the agent's, over its API)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any
from urllib.parse import quote


def add_parsers(sub: Any, config_arg: Any) -> None:
    """The subcommands of this module, on the parser tree of cli.py."""

    def common(p: argparse.ArgumentParser) -> None:
        config_arg(p)
        p.add_argument("--agent", help="URL of the running agent (default: agent.listen of the config); token from $PULSE_API_TOKEN")

    silence = sub.add_parser("silence", help="silence checks for a while: their notifications are recorded, not sent")
    verbs = silence.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser("add", help="add a silence")
    add.add_argument(
        "-m",
        "--match",
        action="append",
        required=True,
        help="check=NAME or LABEL=VALUE; also !=, =~REGEX, !~REGEX (repeatable: all must hold)",
    )
    span = add.add_mutually_exclusive_group(required=True)
    span.add_argument("--duration", help="how long, e.g. 2h")
    span.add_argument("--until", help="end, ISO-8601")
    add.add_argument("--from", dest="start", help="start, ISO-8601 (default now)")
    add.add_argument("--reason", required=True, help="why")
    add.add_argument("--author", default=_user(), help="who (default: the login name)")
    common(add)
    listing = verbs.add_parser("list", help="list silences (pending, active, recently expired)")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    common(listing)
    expire = verbs.add_parser("expire", help="end a silence now")
    expire.add_argument("id", help="silence id (from silence list)")
    common(expire)

    ack = sub.add_parser("ack", help="acknowledge an open incident: no more reminders until it resolves")
    ack.add_argument("incident", help="incident id, e.g. api@1795341600000 (report --incidents, GET /api/v1/incidents)")
    ack.add_argument("--author", default=_user(), help="who (default: the login name)")
    common(ack)

    for verb, text in (
        ("pause", "stop running a check until resumed (kept across reloads and restarts)"),
        ("resume", "run a paused check again"),
    ):
        p = sub.add_parser(verb, help=text)
        p.add_argument("name", help="check name")
        if verb == "pause":
            p.add_argument("--reason", help="why")
            p.add_argument("--author", default=_user(), help="who (default: the login name)")
        common(p)


def cmd_silence(args: argparse.Namespace) -> int:
    """silence add|list|expire: exit 0 done, 1 with the agent's or the connection's reason."""
    if args.verb == "add":
        body: dict[str, Any] = {"matchers": args.match, "reason": args.reason, "author": args.author}
        body.update({k: v for k, v in (("duration", args.duration), ("ends_at", args.until), ("starts_at", args.start)) if v})
        return _call(
            args,
            "POST",
            "/api/v1/silences",
            body,
            lambda s: f"silence {s['id']} {s['state']} until {s['ends_at']}: {' '.join(s['matchers'])}",
        )
    if args.verb == "expire":
        return _call(
            args, "DELETE", f"/api/v1/silences/{quote(args.id, safe='')}", None, lambda s: f"silence {s['id']} expired at {s['ends_at']}"
        )
    return _call(args, "GET", "/api/v1/silences", None, lambda answer: _silence_table(answer["silences"], args.format))


def cmd_ack(args: argparse.Namespace) -> int:
    """ack INCIDENT: exit 0 acknowledged, 1 otherwise (no open incident with that id, say)."""
    path = f"/api/v1/incidents/{quote(args.incident, safe='')}/ack"
    return _call(
        args, "POST", path, {"author": args.author}, lambda a: f"incident {a['id']} of {a['check']} acknowledged by {a['acked_by']}"
    )


def cmd_pause(args: argparse.Namespace) -> int:
    """pause NAME / resume NAME: exit 0 done, 1 otherwise."""
    path = f"/api/v1/checks/{quote(args.name, safe='')}/{args.command}"
    body = {"author": args.author, "reason": args.reason} if args.command == "pause" else None
    return _call(args, "POST", path, body, lambda a: f"check {a['check']} {'paused' if a['paused'] else 'resumed'}")


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None, say: Any) -> int:
    from pulse_agent.report import ReportError
    from pulse_agent.report_source import call_agent

    try:
        answer = call_agent(_agent_url(args), method, path, body)
    except ReportError as exc:
        print(f"pulse-agent {args.command}: {exc}", file=sys.stderr)
        return 1
    print(say(answer))
    return 0


def _agent_url(args: argparse.Namespace) -> str:
    from pulse_agent.config import ConfigInvalid, load_config
    from pulse_agent.config.model import AgentSettings
    from pulse_agent.listen import agent_url

    if args.agent:
        return str(args.agent)
    try:
        listen = load_config(args.config).agent.listen
    except (ConfigInvalid, OSError):
        listen = AgentSettings().listen
    return agent_url(listen)


def _silence_table(silences: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(silences, indent=2)
    if not silences:
        return "no silences"
    rows = [["id", "state", "ends", "author", "matchers", "reason"]]
    rows += [[s["id"], s["state"], s["ends_at"], s["author"], " ".join(s["matchers"]), s["reason"]] for s in silences]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
