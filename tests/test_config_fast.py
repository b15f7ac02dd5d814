"""The common check's fast path (config/fast.py) builds exactly what the general builder builds, and
leaves every check it cannot vouch for to the general builder, which places the problem."""

import pytest

from pulse_agent.config import ConfigInvalid, Memo, parse_config
from pulse_agent.config.build import _cleanliness
from pulse_agent.config.check import NO_VALIDATORS, CheckBuilder, maintenance_windows
from pulse_agent.config.fast import fast_path
from pulse_agent.config.load import parse_document
from pulse_agent.config.schema import validate_document

ENV = {"HOST": "example.com", "PORT": "8443"}

# (defaults, maintenance, one check as YAML flow mapping): every one of these takes the fast path.
COMMON = [
    ("{}", "[]", "{name: a, url: 'http://127.0.0.1/'}"),
    ("{}", "[]", "{name: a, url: 'http://127.0.0.1:8080/c1', schedule: 60s, timeout: 5s}"),
    ("{}", "[]", "{name: a, url: 'https://api.example.com/health?x=1#f', schedule: every 30 seconds, timeout: 2.5}"),
    ("{}", "[]", "{name: a, url: 'HTTPS://Example.COM:443', timeout: 3}"),
    ("{}", "[]", "{name: a, url: 'http://[::1]:9/x', schedule: '*/5 * * * *', timezone: Europe/Berlin}"),
    ("{}", "[]", "{name: a, url: 'http://u:p@h/', schedule: every day at 9am, timezone: America/New_York, missed: run_once}"),
    ("{}", "[]", "{name: a, url: 'http://h/', schedule: 'at 2030-01-01T00:00:00Z'}"),
    ("{}", "[]", "{name: a, url: 'http://h/', schedule: '0 9 * * MON-FRI', missed: skip, enabled: false}"),
    ("{}", "[]", "{name: a, url: 'http://h/', labels: {team: payments, region: eu-west}}"),
    ("{}", "[]", "{name: a, url: 'https://${HOST}:${PORT}/x', timeout: '${T:-7s}'}"),
    ("{schedule: 30s, timeout: 2s}", "[]", "{name: a, url: 'http://h/'}"),
    ("{schedule: 30s, labels: {env: prod, team: x}}", "[]", "{name: a, url: 'http://h/', schedule: 1m, labels: {team: y}}"),
    ("{timezone: Asia/Tokyo, enabled: false}", "[]", "{name: a, url: 'http://h/', schedule: '@daily'}"),
    ("{dns: {name: example.com}, icmp: {count: 3}}", "[]", "{name: a, url: 'http://h/'}"),  # defaults of other kinds
    ("{}", "[{schedule: '0 2 * * SUN', duration: 1h}]", "{name: a, url: 'http://h/', schedule: 10s}"),
]

# Checks the fast path leaves alone: a key it does not know, another kind, or a value it cannot vouch for.
OTHERS = [
    ("{}", "{name: a, url: 'http://h/', headers: {X-A: b}}"),
    ("{}", "{name: a, url: 'http://h/', expect: {status: 200}}"),
    ("{}", "{name: a, url: 'tcp://h:25'}"),
    ("{}", "{name: a, url: 'dns://1.1.1.1', dns: {name: example.com}}"),
    ("{retries: {attempts: 2}}", "{name: a, url: 'http://h/'}"),
    ("{}", "{name: a, url: 'http://h/', timeout: 0s}"),
    ("{}", "{name: a, url: 'http://h:99999/'}"),
    ("{}", "{name: a, url: 'http:///nohost'}"),
    ("{}", "{name: a, url: 'http://h/', timezone: Mars/Olympus}"),
    ("{}", "{name: a, url: 'http://h/', schedule: every 3 fortnights}"),
    ("{}", "{name: a, url: 'http://h/', labels: {job: x}}"),
]


def _document(defaults, maintenance, check):
    text = f"version: 1\ndefaults: {defaults}\nmaintenance: {maintenance}\nchecks:\n  - {check}\n"
    doc = parse_document(text, "p.yaml", ENV)
    validate_document(doc)
    return doc


def _both(defaults, maintenance, check):
    """The check built by the general builder and by the fast path, over one document, each with its own shared parts."""
    doc = _document(defaults, maintenance, check)
    assert doc.errors == []
    windows = maintenance_windows(doc, ("maintenance",), doc.data["maintenance"])
    raw, defaults_data = doc.data["checks"][0], doc.data["defaults"]
    general = CheckBuilder(doc, ("checks", 0), raw, defaults_data, _cleanliness([]), NO_VALIDATORS, {}).build(set(), windows)
    fast = fast_path(defaults_data, windows, {})
    return general, None if fast is None else fast.spec(raw)


@pytest.mark.parametrize(("defaults", "maintenance", "check"), COMMON)
def test_the_fast_path_builds_what_the_general_builder_builds(defaults, maintenance, check):
    general, fast = _both(defaults, maintenance, check)
    assert general is not None and fast is not None
    assert fast == general
    for field in general.__slots__:  # equal and of the same types: 5 and 5.0 compare equal
        assert type(getattr(fast, field)) is type(getattr(general, field)), field


@pytest.mark.parametrize(("defaults", "check"), OTHERS)
def test_the_fast_path_leaves_other_checks_to_the_general_builder(defaults, check):
    doc = _document(defaults, "[]", check)
    fast = fast_path(doc.data["defaults"], (), {})
    assert fast is None or fast.spec(doc.data["checks"][0]) is None


@pytest.mark.parametrize(
    ("check", "where"),
    [
        ("{name: b, url: 'http://h/', timeout: 0s}", "4:42: checks[1].timeout: must be more than 0"),
        ("{name: b, url: 'http://h:99999/'}", "4:20: checks[1].url: 'http://h:99999/': Port out of range 0-65535"),
        ("{name: b, url: 'http://h/', timezone: Mars/Olympus}", "4:43: checks[1].timezone: unknown time zone 'Mars/Olympus'"),
        ("{name: b, url: 'http://h/', labels: {job: x}}", "4:47: checks[1].labels.job: label name 'job' is reserved"),
        ("{name: a, url: 'http://h/'}", "4:12: checks[1].name: duplicate check name 'a' (first at line 3)"),
    ],
)
def test_errors_among_common_checks_are_still_placed(check, where):
    text = f"version: 1\nchecks:\n  - {{name: a, url: 'http://h/'}}\n  - {check}\n  - {{name: c, url: 'http://h/c'}}\n"
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, "p.yaml", {}, Memo())
    [error] = info.value.errors
    assert str(error).startswith(f"p.yaml:{where}")


def test_a_whole_config_of_common_checks_loads_as_with_the_general_builder():
    """100 common checks with defaults and a memo: the load's specs equal the general builder's, one by one,
    and checks written alike share their schedule, retries and alert objects."""
    lines = ["version: 1", "defaults: {timeout: 4s, labels: {env: prod}}", "checks:"]
    lines += [f"  - {{name: c{i}, url: 'https://h{i}.example.com/', schedule: {30 + i % 3}s}}" for i in range(100)]
    lines.append("  - {name: odd, url: 'http://h/', headers: {X-A: b}}")  # the general builder's, among them
    text = "\n".join(lines) + "\n"
    spec = parse_config(text, "p.yaml", {}, Memo())
    doc = _document("{timeout: 4s, labels: {env: prod}}", "[]", "{name: x, url: 'http://h/'}")
    parsed: dict = {}
    for i, check in enumerate(spec.checks):
        raw = parse_document(text, "p.yaml", {}).data["checks"][i] if i in (0, 57, 100) else None
        if raw is not None:
            general = CheckBuilder(doc, ("checks", i), raw, {"timeout": "4s", "labels": {"env": "prod"}}, _cleanliness([]),
                                   NO_VALIDATORS, parsed).build(set(), ())  # fmt: skip
            assert check == general
    assert len(spec.checks) == 101
    assert spec.checks[0].schedule is spec.checks[3].schedule
    assert spec.checks[0].retries is spec.checks[1].retries is spec.checks[100].retries
    assert spec.checks[0].alert is spec.checks[100].alert
    assert spec.checks[5].labels == (("env", "prod"),) and spec.checks[5].timeout == 4.0
