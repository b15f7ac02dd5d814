"""Libraries only some checks need are imported by the first of them: an agent or a probe worker whose checks
are all intervals without regexes never loads croniter, dateutil or re2 (their memory, in every process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_croniter_and_re2_are_imported_by_the_first_cron_schedule_and_pattern(tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text("version: 1\nchecks:\n  - {name: a, url: 'http://127.0.0.1:1/a', schedule: 30s, expect: {body_contains: ok}}\n")
    code = textwrap.dedent(f"""
        import sys
        import pulse_agent.agent, pulse_agent.workers
        from pulse_agent.config import load_config
        spec = load_config({str(cfg)!r}).checks[0]
        spec.schedule.next_due(1e9, spec.name)
        print(sorted(m for m in ("croniter", "dateutil", "re2") if m in sys.modules))
        from pulse_agent.schedule import parse_schedule
        print(parse_schedule("0 9 * * MON-FRI", "Europe/Berlin").next_due(946_684_800.0), "croniter" in sys.modules)
        from pulse_agent.probe.regex import regex_problem, regex_search
        print(regex_search("v[0-9]+", "is v12"), regex_problem("(?=x)") is not None, "re2" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", f"{946_684_800.0 + 2 * 86400 + 8 * 3600} True", "True True True"]  # Monday 2000-01-03, 09:00 CET
