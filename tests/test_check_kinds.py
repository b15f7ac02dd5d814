"""Which kind a check is, and which settings each kind refuses (config/kinds.py)."""

import pytest

from pulse_agent.config.kinds import EXPECT, KIND_OF_SCHEME, SETTINGS, for_kind, kind_of, misplaced, scheme_problem


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"url": "http://x"}, "http"),
        ({"url": "HTTPS://x"}, "http"),
        ({"push": {"grace": "5m"}}, "push"),
        ({}, "http"),
        ({"url": "gopher://x"}, None),
        ({"url": "x/health"}, None),
    ],
)
def test_the_scheme_or_a_push_block_chooses_the_kind(raw, kind):
    assert kind_of(raw) == kind


def test_an_unknown_scheme_is_refused_with_the_schemes_there_are():
    problem = scheme_problem("gopher://x")
    assert problem is not None and "gopher://" in problem
    assert all(f"{scheme}://" in problem for scheme in KIND_OF_SCHEME)
    assert scheme_problem("https://x") is None


def test_a_setting_of_another_kind_is_refused_naming_where_it_belongs():
    found = dict(misplaced("push", {"name": "a", "method": "POST", "expect": {"status": 200, "max_duration": "1h"}}))
    assert set(found) == {("method",), ("expect", "status")}
    assert "http" in found[("method",)] and "push" in found[("method",)]


def test_defaults_reach_only_the_kinds_they_apply_to():
    defaults = {"timeout": "5s", "method": "POST", "expect": {"status": 204, "max_response_time": "1s"}}
    assert for_kind("http", defaults) == defaults
    assert for_kind("icmp", defaults) == {"timeout": "5s", "expect": {"max_response_time": "1s"}}


def test_every_kind_has_its_settings_and_expectations():
    assert set(SETTINGS) == set(EXPECT) and {"http", "push"} <= set(SETTINGS)
    assert all(kind in SETTINGS for kind in KIND_OF_SCHEME.values())
