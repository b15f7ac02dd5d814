"""Whole-config validation: every error with file:line:col and key path, all at once."""

import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from pulse_agent.config import ConfigInvalid, load_config, parse_config
from pulse_agent.config.model import StatusRange
from pulse_agent.validators import SHELL_VALIDATORS

ROOT = Path(__file__).resolve().parent.parent


def errors(text: str, env=None) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        parse_config(textwrap.dedent(text), "p.yaml", env or {}, validators=SHELL_VALIDATORS)  # files and Apprise URLs too
    return [str(e) for e in info.value.errors]


def one_check(lines: str) -> str:
    return "version: 1\nchecks:\n  - name: a\n    url: http://127.0.0.1/\n" + textwrap.indent(textwrap.dedent(lines), "    ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 2\n", "p.yaml:1:10: version: 2 is not allowed; must be 1"),
        ("checks: []\n", "p.yaml:1:1: missing required key 'version'"),
        ("version: 1\nchek: []\n", "p.yaml:2:1: chek: unknown key 'chek'; did you mean 'checks'?"),
        (
            "version: 1\nagent: {listen: nope}\n",
            'p.yaml:2:17: agent.listen: "nope" is not a valid listen address (e.g. 127.0.0.1:9108, 0.0.0.0:9108)',
        ),
        (one_check("timeout: 5x\n"), 'p.yaml:5:14: checks[0].timeout: "5x" is not a valid duration (e.g. 250ms, 30s, 5m, 1h30m, 7d, 10)'),
        (one_check("timeout: 0\n"), "p.yaml:5:14: checks[0].timeout: must be more than 0"),
        (
            one_check("method: FETCH\n"),
            'p.yaml:5:13: checks[0].method: "FETCH" is not one of: "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"',
        ),
        (one_check("retries: {attempts: 0}\n"), "p.yaml:5:25: checks[0].retries.attempts: 0 is out of range; must be at least 1"),
        (
            one_check("expect: {status: [200, 2yy]}\n"),
            'p.yaml:5:28: checks[0].expect.status[1]: "2yy" is not a valid status code (e.g. 200, 2xx, 200-299)',
        ),
        (
            one_check("expect: {body_matches: '('}\n"),
            "p.yaml:5:28: checks[0].expect.body_matches: invalid regular expression: missing ): (",
        ),
        (
            one_check("expect: {json: {status: UP}}\n"),
            'p.yaml:5:21: checks[0].expect.json.status: key "status" is not a valid JSONPath expression (e.g. $.status)',
        ),
        (one_check("expect: {json: {'$.[': 1}}\n"), None),
        (
            one_check("schedule: every fortnight\n"),
            "p.yaml:5:15: checks[0].schedule: cannot read 'every fortnight' at 'fortnight': 'fortnight' is not a day; ",
        ),
        (
            one_check("schedule: 500ms\n"),
            "p.yaml:5:15: checks[0].schedule: interval '500ms' is out of range; it must be between 1s and 24h",
        ),
        (
            one_check("timezone: Mars/Base\n"),
            "p.yaml:5:15: checks[0].timezone: unknown time zone 'Mars/Base'; use an IANA name such as Europe/Berlin or UTC",
        ),
        (
            one_check("alert: {notify: [ops]}\n"),
            "p.yaml:5:22: checks[0].alert.notify[0]: unknown notifier 'ops' (notifiers: none are defined)",
        ),
        (one_check("labels: {a-b: x}\n"), 'p.yaml:5:14: checks[0].labels.a-b: key "a-b" is not a valid label name (e.g. team)'),
        (one_check("header: {}\n"), "p.yaml:5:5: checks[0].header: unknown key 'header'; did you mean 'headers'?"),
        (one_check("headers: {X-Count: 5}\n"), "p.yaml:5:24: checks[0].headers.X-Count: expected string, got integer (value hidden: secret)"),
        (
            "version: 1\nchecks:\n  - name: a\n    url: ftp://x\n",
            "p.yaml:4:10: checks[0].url: ftp:// is not a kind of check: the URL's scheme must be one of http://, https://",
        ),
        (
            "version: 1\nchecks:\n  - name: a b\n    url: http://x\n",
            'p.yaml:3:11: checks[0].name: "a b" is not a valid name (e.g. api-health)',
        ),
        ("version: 1\nchecks:\n  - url: http://x\n", "p.yaml:3:5: checks[0]: missing required key 'name'"),
        ("version: 1\nchecks: {a: 1}\n", "p.yaml:2:9: checks: expected list, got mapping {'a': 1}"),
        (
            "version: 1\ndefaults: {name: x}\n",
            "p.yaml:2:12: defaults.name: unknown key 'name'; allowed: alert, basic_auth, bearer_token, body, ca_file, delivery, ",
        ),
        ("version: 1\nnotifiers: {ops: {urls: []}}\n", "p.yaml:2:25: notifiers.ops.urls: needs at least 1 item, has 0"),
        (
            "version: 1\nnotifiers: {ops: {urls: ['json://127.0.0.1/x', 'slak://token']}}\n",
            "p.yaml:2:48: notifiers.ops.urls[1]: not a usable Apprise URL (scheme slak)",
        ),
        (
            "version: 1\nnotifiers:\n  ops:\n    urls: ['json://127.0.0.1/x']\n    body: 'down since {since}'\n",
            "p.yaml:5:11: notifiers.ops.body: unknown template field {since}; fields: check, url, event, summary,",
        ),
        (
            "version: 1\nnotifiers: {ops: {urls: ['json://127.0.0.1/x'], title: '{check'}}\n",
            "p.yaml:2:56: notifiers.ops.title: invalid template:",
        ),
        (
            "version: 1\nmaintenance: [{schedule: every 2h, duration: 1h}]\n",
            "p.yaml:2:26: maintenance[0].schedule: 'every 2h' is an interval; a window opens at times",
        ),
        ("version: 1\nmaintenance: [{schedule: 'at noon', duration: 1h}]\n", "p.yaml:2:26: maintenance[0].schedule: "),
        ("version: 1\nmaintenance: [{schedule: '@daily'}]\n", "p.yaml:2:15: maintenance[0]: missing required key 'duration'"),
        (
            one_check("maintenance: [{schedule: '@daily', duration: 1h, timezone: Moon/Base}]\n"),
            "p.yaml:5:64: checks[0].maintenance[0].timezone: unknown time zone 'Moon/Base'",
        ),
        (
            one_check("maintenance: [{schedule: '@daily', duration: 0}]\n"),
            "p.yaml:5:50: checks[0].maintenance[0].duration: must be more than 0",
        ),
        (
            "version: 1\nchecks:\n  - {name: a, url: 'http://u:p@127.0.0.1/', bearer_token: t}\n",
            "p.yaml:3:20: checks[0].url: the URL carries user:password and basic_auth or bearer_token is set too; keep one",
        ),
        (one_check("alert: {notify_on_degraded: maybe}\n"), "p.yaml:5:33: checks[0].alert.notify_on_degraded: "),
    ],
)
def test_each_bad_config_gets_one_placed_error(text, expected):
    found = errors(text)
    assert len(found) == 1, found
    if expected is not None:
        assert found[0].startswith(expected), found  # long messages end with the accepted forms


def test_alerting_settings_and_maintenance_windows_reach_the_spec():
    spec = parse_config(
        textwrap.dedent("""\
            version: 1
            maintenance: [{schedule: every sunday at 02:00, duration: 2h, timezone: Europe/Berlin}]
            notifiers:
              ops: {urls: ['json://127.0.0.1:9/x'], title: '[{event}] {check}', backoff: 1s, max_backoff: 1m, give_up_after: 2h}
            checks:
              - name: a
                url: http://127.0.0.1/
                alert: {notify: [ops], notify_on_degraded: true, remind_every: 30m}
                maintenance: [{schedule: 'at 2026-12-01T22:00:00Z', duration: 30m}]
              - {name: b, url: http://127.0.0.1/}
        """),
        "p.yaml",
        {},
    )
    (ops,) = spec.notifiers
    assert (ops.backoff, ops.max_backoff, ops.give_up_after, ops.timeout, ops.title) == (1, 60, 7200, 10, "[{event}] {check}")
    a, b = spec.checks
    assert a.alert.notify_on_degraded and a.alert.remind_every == 1800
    assert len(a.maintenance) == 2 and len(b.maintenance) == 1  # the top-level window, plus a's own
    assert b.in_maintenance(datetime.fromisoformat("2026-11-22T01:30:00+00:00").timestamp())  # Sunday 02:30 in Berlin
    assert not b.in_maintenance(datetime.fromisoformat("2026-12-01T22:10:00+00:00").timestamp())
    assert a.in_maintenance(datetime.fromisoformat("2026-12-01T22:10:00+00:00").timestamp())


def test_all_errors_are_reported_at_once_in_file_order():
    text = """\
    version: 1
    agent: {max_concurrency: 0}
    checks:
      - name: a
        url: http://127.0.0.1/
        timeout: soon
      - name: a
        url: http://127.0.0.1/
      - name: c
        url: http://127.0.0.1/
        schedule: whenever
        surprise: true
    """
    found = errors(text)
    assert [e.split(": ")[1] for e in found] == [
        "agent.max_concurrency",
        "checks[0].timeout",
        "checks[1].name",
        "checks[2].schedule",
        "checks[2].surprise",
    ]
    assert "duplicate check name 'a' (first at line 4)" in found[2]


def test_defaults_merge_into_checks():
    spec = parse_config(
        textwrap.dedent(
            """\
            version: 1
            defaults:
              timeout: 3s
              schedule: every 2 minutes
              headers: {User-Agent: probe, Accept: text/plain}
              expect: {status: [200, "3xx"], max_response_time: 1s}
              labels: {team: core}
            checks:
              - name: a
                url: http://127.0.0.1/
                headers: {Accept: application/json}
                expect: {body_contains: ok}
              - name: b
                url: http://127.0.0.1/
                timeout: 1s
                labels: {team: web, tier: "1"}
            """
        ),
        "p.yaml",
        {},
    )
    a, b = spec.checks
    assert a.timeout == 3 and b.timeout == 1
    assert a.schedule.seconds == 120
    assert dict(a.headers) == {"User-Agent": "probe", "Accept": "application/json"}
    assert a.expect.status == (StatusRange(200, 200, "200"), StatusRange(300, 399, "3xx"))
    assert a.expect.max_response_time == 1 and a.expect.body_contains == "ok"
    assert dict(b.labels) == {"team": "web", "tier": "1"}


def test_minimal_check_gets_documented_defaults():
    spec = parse_config("version: 1\nchecks: [{name: a, url: 'http://127.0.0.1/'}]\n", "p.yaml", {})
    [c] = spec.checks
    assert (c.method, c.timeout, c.schedule.seconds, c.retries.attempts, c.enabled) == ("GET", 10, 60, 1, True)
    assert c.expect.status == (StatusRange(200, 299, "2xx"),)
    assert spec.agent.listen == "127.0.0.1:9108" and spec.agent.database == "pulse.duckdb"


def test_mapping_body_is_sent_as_json():
    spec = parse_config(one_check("method: POST\nbody: {ping: true, n: [1, 2]}\n"), "p.yaml", {})
    [c] = spec.checks
    assert c.body == b'{"ping":true,"n":[1,2]}'
    assert ("Content-Type", "application/json") in c.headers


def test_env_secrets_in_config():
    spec = parse_config(one_check("headers: {Authorization: 'Bearer ${TOKEN}'}\n"), "p.yaml", {"TOKEN": "s3cret"})
    assert dict(spec.checks[0].headers)["Authorization"] == "Bearer s3cret"


def test_missing_file(tmp_path):
    with pytest.raises(ConfigInvalid, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("value", "low", "high"), [(204, 204, 204), ("2xx", 200, 299), ("200-204", 200, 204), ("5xx", 500, 599)])
def test_status_ranges(value, low, high):
    rule = StatusRange.parse(value)
    assert (rule.low, rule.high) == (low, high)


def test_status_range_backwards_is_refused():
    with pytest.raises(ValueError, match="ends before"):
        StatusRange.parse("299-200")


def test_bad_default_is_blamed_on_defaults_once():
    text = "version: 1\ndefaults: {schedule: whenever}\nchecks:\n  - {name: a, url: 'http://h/'}\n  - {name: b, url: 'http://h/'}\n"
    [found] = errors(text)
    assert found.startswith("p.yaml:2:22: defaults.schedule: cannot read 'whenever'")


def test_probe_settings(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    spec = parse_config(
        one_check(f"tls_verify: false\nca_file: {ca}\nmax_body_size: 512KiB\nfollow_redirects: false\nmax_redirects: 3\n"
                  "retries: {attempts: 3, backoff: 200ms, max_backoff: 2s}\nidempotency_key: true\n"
                  "expect: {json: {'$.n': '< 10'}, headers: {etag: '/^W/'}}\n"),
        "p.yaml", {},
    )  # fmt: skip
    c = spec.checks[0]
    assert (c.tls_verify, c.ca_file, c.max_body_size, c.follow_redirects, c.max_redirects) == (False, str(ca), 512 * 1024, False, 3)
    assert (c.retries.attempts, c.retries.backoff, c.retries.max_backoff, c.idempotency_key) == (3, 0.2, 2, True)
    assert c.expect.json[0][1].op == "<"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("ca_file: /no/such/ca.pem\n", "checks[0].ca_file: '/no/such/ca.pem' is not a readable file"),
        ("basic_auth: {username: u, password: p}\nbearer_token: t\n", "checks[0].bearer_token: set basic_auth or bearer_token, not both"),
        ("max_body_size: 1 parsec\n", 'checks[0].max_body_size: "1 parsec" is not a valid size'),
        ("expect: {json: {'$.n': '< many'}}\n", "checks[0].expect.json: '< many': < compares numbers"),
        ("expect: {headers: {etag: '/(/'}}\n", "checks[0].expect.headers: etag: invalid regular expression: missing ): ( in \"/(/\""),
        ("delivery: exactly_once\n", 'checks[0].delivery: "exactly_once" is not one of: "at_least_once", "at_most_once"'),
    ],
)
def test_bad_probe_settings(lines, message):
    [found] = errors(one_check(lines))
    assert message in found


@pytest.mark.parametrize(
    "doc",
    [
        {"version": 1},
        {"version": 1, "checks": [{"name": "a", "url": "http://x/", "timeout": "5s", "expect": {"status": ["2xx", 301]}}]},
        {"version": 1, "checks": [{"name": "a", "url": "http://x/", "tiemout": "5s"}]},
        {"version": 1, "checks": [{"name": "a", "url": "http://x/", "timeout": "5x"}]},
        {"version": 1, "checks": [{"name": "a"}]},
        {"version": 1, "defaults": {"name": "x"}},
        {"version": 1, "defaults": {"timeout": "1s", "alert": {"failure_threshold": 2}}},
        {"version": 1, "defaults": {"alert": {"failure_threshold": 0}}},
        {"version": 1, "agent": {"listen": "${L}", "retention": "30d", "shard": "2/4"}},
        {"version": 1, "agent": {"shard": "x"}},
        {"version": 1, "notifiers": {"ops": {"urls": ["json://x"], "backoff": "1s"}}},
        {"version": 1, "notifiers": {"ops": {"urls": []}}},
        {"version": 1, "maintenance": [{"schedule": "@daily", "duration": "1h", "timezone": "UTC"}]},
        {"version": 1, "maintenance": [{"schedule": "@daily", "duration": "1h", "extra": 1}]},
        {
            "version": 1,
            "checks": [
                {"name": "a", "url": "http://x/", "slo": {"objective": 99.9}, "maintenance": [{"schedule": "@daily", "duration": 60}]}
            ],
        },
        {"version": 1, "checks": [{"name": "a", "url": "http://x/", "slo": {"objective": 120}}]},
        {"version": 1, "checks": [{"name": "a", "url": "http://x/", "basic_auth": {"username": "u"}}]},
        {"version": True},
        {"version": 2},
        {"version": 1.0},
        {"version": "1"},
        {"version": 1, "agent": {"workers": True}},
        {"version": 1, "agent": {"workers": "auto"}},
        {"version": 1, "agent": {"workers": "Auto"}},
        {"version": 1, "agent": {"workers": 2, "max_concurrency": 1.5}},
        {"version": 1, "checks": [{"name": "bad name!", "url": "http://x/"}]},
        {"version": 1, "checks": [{"name": "a", "url": "http://x/", "headers": {"X": 1}}]},
        {"version": 1, "checks": [{"name": "a", "url": "http://x/", "expect": {"json": {"$.a": [1, {"b": None}]}}}]},
        {"version": 1, "checks": [{"name": "a", "url": "http://x/", "retries": {"attempts": 0}}]},
        *[yaml.safe_load((ROOT / f).read_text()) for f in ("pulse.yaml", "examples/full.yaml", "examples/minimal.yaml")],
    ],
)
def test_the_inlined_and_compiled_schemas_judge_like_the_file(doc):
    import json

    from jsonschema import Draft202012Validator

    from pulse_agent.config.schema import inline_refs, quickly_valid, schema_text

    original = json.loads(schema_text())
    verdict = Draft202012Validator(original).is_valid(doc)
    assert verdict == Draft202012Validator(inline_refs(original)).is_valid(doc)
    assert quickly_valid(doc) == verdict  # the compiled fast path agrees (it is trusted only on yes)


def test_const_is_asked_as_a_one_value_enum_only_where_it_is_a_keyword():
    from pulse_agent.config.schema import without_const

    schema = {
        "properties": {"const": {"const": 1, "allOf": [{"type": "integer"}]}, "enum": {"type": "string"}},
        "default": {"const": 2},
        "items": [{"const": None}],
    }
    assert without_const(schema) == {
        "properties": {"const": {"allOf": [{"type": "integer"}, {"enum": [1]}]}, "enum": {"type": "string"}},
        "default": {"const": 2},
        "items": [{"allOf": [{"enum": [None]}]}],
    }
