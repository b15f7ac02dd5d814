"""`pulse-agent rules test`: evaluate the config's SQL rules against the stored history now and print what would fire."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parsers(sub: Any, config_arg: Any) -> None:
    """The `rules` command and its `test` verb."""
    rules = sub.add_parser("rules", help="SQL alert rules: `rules test` shows what would fire now")
    verbs = rules.add_subparsers(dest="verb", required=True)
    test = verbs.add_parser("test", help="run every rule (or --rule NAME) now and print each row that would fire")
    config_arg(test)
    test.add_argument("--db", help="DuckDB file (default: agent.database of the config; a running agent holding it is asked)")
    test.add_argument("--rule", action="append", default=[], help="only this rule (repeatable)")
    test.add_argument("--format", choices=["table", "json"], default="table")


def cmd_rules(args: argparse.Namespace) -> int:
    """Print each rule's instances now; exit 1 when a rule's query fails or nothing can be read."""
    import time

    from pulse_agent.alerts.condition import rule_actives
    from pulse_agent.cli_history import _config, _where
    from pulse_agent.config_facts import facts_of
    from pulse_agent.report import Report, ReportError, ReportRequest, answer
    from pulse_agent.report_source import from_agent, local_or_agent

    try:
        spec = _config(args)
        if spec is None:
            raise ValueError(f"{args.config}: the config is needed for its rules")
        unknown = sorted(set(args.rule) - {r.name for r in spec.rules})
        if unknown:
            raise ValueError(f"no rule called {', '.join(unknown)} (rules: {', '.join(r.name for r in spec.rules) or 'none'})")
        chosen = [r for r in spec.rules if not args.rule or r.name in args.rule]
        database, listen = _where(args, facts_of(spec, checks=False))
    except (ReportError, ValueError) as exc:
        print(f"pulse-agent rules: {exc}", file=sys.stderr)
        return 1
    now, failed = time.time(), 0
    out: list[dict[str, Any]] = []
    for rule in chosen:
        request = ReportRequest(now - rule.window, now, sql=rule.sql)

        def local(con: Any, q: ReportRequest = request) -> Report:
            return answer(con, q)

        def remote(url: str, q: ReportRequest = request) -> Report:
            return from_agent(url, q)

        try:
            report, _ = local_or_agent(database, listen, local, remote)
        except ReportError as exc:
            failed += 1
            out.append({"rule": rule.name, "error": str(exc), "instances": []})
            continue
        actives = rule_actives(rule.name, report.columns, report.rows)
        waits = f"after {rule.hold:g}s" if rule.hold else "at once"
        out.append({"rule": rule.name, "fires": waits, "notify": list(rule.notify),
                    "instances": [{"labels": dict(a.labels), "detail": a.detail} for a in actives]})  # fmt: skip
    if args.format == "json":
        print(json.dumps(out, indent=2))
    else:
        for r in out:
            if "error" in r:
                print(f"{r['rule']}: FAILED: {r['error']}")
                continue
            print(f"{r['rule']}: {len(r['instances'])} firing ({r['fires']}, to {', '.join(r['notify'])})")
            for i in r["instances"]:
                labels = ", ".join(f"{k}={v}" for k, v in i["labels"].items()) or "(no labels)"
                print(f"  {labels}" + (f": {i['detail']}" if i["detail"] else ""))
    return 1 if failed else 0
