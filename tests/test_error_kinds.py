"""The error_kind set is closed: every kind the code can produce is documented, and every documented kind exists."""

import re
from pathlib import Path

from pulse_agent.result import ERROR_KINDS

ROOT = Path(__file__).resolve().parent.parent


def test_every_produced_kind_is_in_the_closed_set_and_documented():
    source = "".join(p.read_text() for p in (ROOT / "pulse_agent" / "probe").rglob("*.py"))  # every Failure is made there
    produced = set(re.findall(r'(?:Failure|fail)\(\s*"([a-z_]+)"', source))
    assert produced <= set(ERROR_KINDS), produced - set(ERROR_KINDS)
    assert set(ERROR_KINDS) - produced == set(), "a documented kind nothing produces"
    doc = (ROOT / "docs" / "probes.md").read_text()
    for kind in ERROR_KINDS:
        assert f"| `{kind}` |" in doc, kind
