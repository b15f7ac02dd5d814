"""The quick schema validator shipped as generated code (config/quick_code.py): it is the code the current
schema makes, it judges as the schema file does, and a schema it was not made from gets its own validator."""

from __future__ import annotations

import json
from pathlib import Path

import fastjsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator

from pulse_agent.config import quick_code
from pulse_agent.config.quick import quick_code as generated_code
from pulse_agent.config.quick import quick_validator
from pulse_agent.config.schema import _compiled, _inlined, inline_refs, schema_text

ROOT = Path(__file__).resolve().parent.parent

DOCS = [
    {"version": 1},
    {"version": 2},
    {"version": 1, "agent": {"max_concurrency": 1.5}},
    {"version": 1, "agent": {"max_concurrency": 8}},
    {"version": 1, "checks": [{"name": "a", "url": "http://x/", "timeout": 5}]},
    {"version": 1, "checks": [{"name": "a", "url": "http://x/", "timeout": -1}]},
    {"version": 1, "checks": [{"name": "a", "url": "http://x/", "timeout": 2.5}]},
    {"version": 1, "checks": [{"name": "a", "url": "http://x/", "timeout": "5 parsecs"}]},
    {"version": 1, "checks": [{"name": "a", "url": "http://x/", "missed": "run_once"}]},
    {"version": 1, "checks": [{"name": "a", "url": "http://x/", "missed": "sometimes"}]},
    {"version": 1, "checks": [{"name": "bad name!", "url": "http://x/"}]},
    {"version": 1, "checks": [{"name": "a", "url": "http://x/", "unknown": 1}]},
    *[yaml.safe_load((ROOT / f).read_text()) for f in ("pulse.yaml", "examples/full.yaml", "examples/minimal.yaml")],
]


def test_the_shipped_code_is_what_the_current_schema_makes():
    expected = generated_code(schema_text(), _inlined())
    shipped = (ROOT / "pulse_agent" / "config" / "quick_code.py").read_text(encoding="utf-8")
    assert shipped == expected, "run: python -m pulse_agent.config.quick > pulse_agent/config/quick_code.py"


def test_loading_a_config_uses_the_shipped_code_for_the_shipped_schema():
    assert _compiled() is quick_code.validate


@pytest.mark.parametrize("doc", DOCS)
def test_shipped_and_generated_now_judge_as_the_schema_file_does(doc):
    verdict = Draft202012Validator(json.loads(schema_text())).is_valid(doc)
    assert Draft202012Validator(inline_refs(json.loads(schema_text()))).is_valid(doc) == verdict
    # Another text of the same schema (a blank line more): not the shipped code's, so generated now.
    for validate in (quick_code.validate, quick_validator(schema_text() + "\n", _inlined)):
        try:
            validate(doc)
            judged = True
        except fastjsonschema.JsonSchemaException:
            judged = False
        assert judged == verdict, doc


def test_a_schema_the_code_was_not_made_from_gets_its_own_validator():
    edited = json.loads(schema_text())
    edited["properties"]["version"] = {"enum": [1, 2]}  # version 2 becomes valid
    text = json.dumps(edited)
    validate = quick_validator(text, lambda: inline_refs(json.loads(text)))
    assert validate is not quick_code.validate
    validate({"version": 2})
    with pytest.raises(fastjsonschema.JsonSchemaException):
        quick_code.validate({"version": 2})
