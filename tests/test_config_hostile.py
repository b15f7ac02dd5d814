"""No config input reaches a user as a traceback (issue 14, items 2, 4, 5, 6): each case gets one
placed line, through the real CLI (`main`, in process) or as a subprocess where the process matters."""

from __future__ import annotations

import os
import textwrap
import time

import pytest

from pulse_agent.cli import main
from tests.conftest import run_cli

BASE = "version: 1\nchecks:\n  - name: a\n    url: http://127.0.0.1:1/\n"
DNS = "version: 1\nchecks:\n  - name: a\n    url: dns://127.0.0.1:1\n"


def check(line: str) -> str:
    return BASE + textwrap.indent(line, "    ")


LAUGHS = "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9 if p else ['lol'] * 9)}]\n" for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)

# (case, config text, what the one error line must say). The first eight are the fuzz's tracebacks of issue 14.
ROWS = [
    ("top-level null", "null\n", ":1:1: expected mapping, got null"),
    ("top-level tilde", "~\n", ":1:1: expected mapping, got null"),
    ("alias inside itself", "version: 1\nchecks: &a [*a]\n", "checks[0]: a YAML alias refers to a value that contains it"),
    ("mapping alias inside itself", "version: 1\nagent: &a {x: *a}\n", "agent.x: a YAML alias refers to a value that contains it"),
    ("merge of itself", "version: 1\nagent: &a {<<: *a}\n", "agent: a YAML alias refers to a value that contains it"),
    ("4,300-digit integer", check("timeout: " + "9" * 4300 + "\n"), "checks[0].timeout: " + "9" * 20 + " is not a duration of at most 100 years"),
    ("5,000-digit integer", "version: " + "9" * 5000 + "\n", "version: Exceeds the limit (4300 digits) for integer string conversion"),
    ("unclosed ${ in a duration", check("timeout: ${E1\n"), "checks[0].timeout: unclosed ${ in this value"),
    ("unclosed ${ in a size", check("max_body_size: ${E1\n"), "checks[0].max_body_size: unclosed ${ in this value"),
    ("unclosed ${ in agent.retention", "version: 1\nagent: {retention: '${E1'}\n", "agent.retention: unclosed ${ in this value"),
    ("invalid IPv6 URL", "version: 1\nchecks:\n  - {name: a, url: 'http://[::1/'}\n", "checks[0].url: '***': Invalid IPv6 URL"),
    ("port out of range", "version: 1\nchecks:\n  - {name: a, url: 'http://h:99999/'}\n", "checks[0].url: 'http://h:99999/': Port out of range"),
    ("agent as a list", "version: 1\nagent: [1]\n", "agent: expected mapping, got list [1]"),
    # push checks (issue 19): the block and its token are secrets, never shown
    ("push as a string", "version: 1\nchecks:\n  - {name: a, push: 'tok-abcdefghijklmnop'}\n", "checks[0].push: expected mapping, got string (value hidden: secret)"),
    ("push token as a number", "version: 1\nchecks:\n  - {name: a, push: {token: 12345678901234567890}}\n", "checks[0].push.token: expected string, got integer (value hidden: secret)"),
    ("unclosed ${ in a push token", "version: 1\nchecks:\n  - {name: a, push: {token: '${E1'}}\n", "checks[0].push.token: unclosed ${ in this value"),
    ("push token with a space", "version: 1\nchecks:\n  - {name: a, push: {token: 'abcdefghijklmnop q'}}\n", "checks[0].push.token: must be printable ASCII without spaces"),
    ("push and url", "version: 1\nchecks:\n  - {name: a, url: 'http://h/', push: {token: abcdefghijklmnopq}}\n", "checks[0].url: 'url' does not apply to a push check"),
    ("huge template width", "version: 1\nnotifiers:\n  n: {urls: ['json://127.0.0.1/'], title: '{check:>99999999999}'}\n", "a width or precision is at most 1000"),
    ("10,000-character timezone", check("timezone: " + "A" * 10000 + "\n"), "checks[0].timezone: unknown time zone 'AAAA"),
    ("10,000-character maintenance timezone", "version: 1\nmaintenance: [{schedule: '@daily', duration: 1h, timezone: " + "A" * 10000 + "}]\n", "maintenance[0].timezone: unknown time zone"),
    ("infinite timeout", check("timeout: .inf\n"), "checks[0].timeout: inf is not a duration of at most 100 years"),
    ("NaN timeout", check("timeout: .nan\n"), "checks[0].timeout: nan is not a duration of at most 100 years"),
    ("size of 400 digits", check("max_body_size: '" + "9" * 400 + "'\n"), "is too large a size"),
    ("backwards status range", check("expect: {status: 299-200}\n"), "checks[0].expect.status: range '299-200' ends before it starts"),
    ("bad listen from the config", "version: 1\nagent: {listen: ':99999'}\n", "agent.listen: ':99999': port '99999' is not a number from 0 to 65535"),
    ("a mapping as a key", "version: 1\n? [a]\n: 1\n", "a key must be a plain value"),
    ("merge of a scalar", "version: 1\nagent: {<<: [1, 2]}\n", "agent: << merges mappings only"),
    ("billion laughs", LAUGHS, "YAML aliases expand this file to too many values"),
    ("deep nesting", "version: 1\nagent: " + "[" * 900 + "]" * 900 + "\n", "nested deeper than 64 levels"),
    ("cron that never fires", check("schedule: '0 0 30 2 *'\n"), "checks[0].schedule: cron '0 0 30 2 *' never fires: no date matches"),
    ("cron on April 31st", check("schedule: '0 0 31 4 *'\n"), "never fires"),
    ("one-shot past year 9999", check("schedule: 'at 9999-12-31T23:59:59-23:00'\n"), "is out of range (year 1 .. 9999 in UTC)"),
    ("regex RE2 cannot run in linear time", check("expect: {body_matches: '(a)\\1'}\n"), "RE2 syntax has no backreferences or lookaround"),
    ("header regex with lookahead", check("expect: {headers: {etag: '/(?=x)/'}}\n"), "checks[0].expect.headers: etag: invalid regular expression"),
    ("certificate_valid_for on http://", check("expect: {certificate_valid_for: 14d}\n"), "checks[0].expect.certificate_valid_for: needs an https:// URL"),
    ("DNS name of 10,000 characters", DNS + "    dns: {name: " + "a" * 10000 + "}\n", "checks[0].dns.name: must be at most 253 characters"),
    ("DNS name with a NUL", DNS + "    dns: {name: \"a\\0b.example\"}\n", "checks[0].dns.name: 'a\\x00b.example' is not a domain name"),
    ("DNS name IDNA refuses", DNS + "    dns: {name: \"a\\u200db.example\"}\n", "is not a domain name: IDNA processing exception"),
    ("answer_count of 400 digits", DNS + "    dns: {name: a.example}\n    expect: {answer: {equals: [192.0.2.1]}, answer_count: '>= " + "9" * 400 + "'}\n", "checks[0].expect.answer_count: can never hold"),
    ("NaN packet loss", "version: 1\nchecks:\n  - {name: a, url: 'icmp://127.0.0.1', expect: {max_packet_loss: .nan}}\n", "checks[0].expect.max_packet_loss: nan is not a percentage from 0 to 100"),
    ("ping interval of a century", "version: 1\nchecks:\n  - {name: a, url: 'icmp://127.0.0.1', icmp: {interval: 3650d}}\n", "checks[0].icmp.interval: 3 requests 3650d apart"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_a_hostile_config_gets_one_placed_line(tmp_path, capsys, case, text, expected):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(text)
    started = time.perf_counter()
    assert main(["validate", "-c", str(cfg)]) == 1
    assert time.perf_counter() - started < 10  # bounded: no alias bomb or regex blow-up
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"{cfg}: 1 error", err
    assert err[0].startswith(f"{cfg}:") and expected in err[0], err


def test_a_glob_starting_with_a_star_is_valid_and_not_a_regex(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(check("expect: {headers: {content-type: '*json*'}, body_matches: 'ok'}\n"))
    assert main(["validate", "-c", str(cfg)]) == 0


def test_every_error_of_a_check_is_reported(tmp_path, capsys):
    """A bad status and a bad regex in one expect: both, each at its key."""
    cfg = tmp_path / "p.yaml"
    cfg.write_text(check("expect: {status: 999, body_matches: '(', max_response_time: 5x}\n"))
    assert main(["validate", "-c", str(cfg)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in err[:-1]] == [
        "checks[0].expect.status",
        "checks[0].expect.body_matches",
        "checks[0].expect.max_response_time",
    ]
    assert err[-1].endswith("3 errors")


def test_an_unset_variable_is_one_error_without_cascade(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("version: 1\nchecks:\n  - {name: a, url: '${NOPE_URL_X}', timeout: '${NOPE_T_X}'}\n")
    assert main(["validate", "--require-env", "-c", str(cfg)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{cfg}:3:20: checks[0].url: environment variable NOPE_URL_X is not set; set it or write ${{NOPE_URL_X:-default}}",
        f"{cfg}:3:46: checks[0].timeout: environment variable NOPE_T_X is not set; set it or write ${{NOPE_T_X:-default}}",
        f"{cfg}: 2 errors",
    ]


SECRETS = """\
version: 1
agent:
  api_token: "${PV_API_TOKEN}"
  max_concurrency: ${PV_CONCURRENCY}
notifiers:
  ops: {urls: ["slack://${PV_SLACK}"], backoff: "${PV_BACKOFF}"}
checks:
  - name: a
    url: https://${PV_HOST}/health
    headers: {Authorization: "Bearer ${PV_TOKEN}"}
    timeout: ${PV_TIMEOUT}
    alert: {notify: [ops]}
  - {name: b, url: "http://127.0.0.1:1/"%s}
"""


def test_validate_checks_structure_without_secrets_and_names_what_run_needs(tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(SECRETS % "")
    done = run_cli("validate", "-c", str(cfg))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"{cfg}: valid (2 checks, 1 notifier); run needs PV_API_TOKEN, PV_BACKOFF, PV_CONCURRENCY, PV_HOST, PV_SLACK, PV_TIMEOUT, PV_TOKEN set (unset here)\n"
    )
    # the structure around the placeholders is still checked
    cfg.write_text(SECRETS % ", timeout: 5x")
    done = run_cli("validate", "-c", str(cfg))
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f'{cfg}:13:52: checks[1].timeout: "5x" is not a valid duration (e.g. 250ms, 30s, 5m, 1h30m, 7d, 10)',
        f"{cfg}: 1 error",
    ]


def test_run_and_require_env_still_refuse_unset_variables(tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(SECRETS % "")
    for args in (["validate", "--require-env"], ["run", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "x.duckdb")]):
        done = run_cli(*args, "-c", str(cfg))
        assert done.returncode == 1
        assert "environment variable PV_SLACK is not set" in done.stderr and done.stderr.endswith(f"{cfg}: 7 errors\n")
    assert not (tmp_path / "x.duckdb").exists()


def test_placeholders_in_a_config_directory(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("version: 1\nnotifiers: {ops: {urls: ['slack://${PV_SLACK}']}}\n")
    (tmp_path / "b.yaml").write_text(
        "version: 1\nchecks: [{name: a, url: 'http://127.0.0.1:1/', timeout: '${PV_T}', alert: {notify: [ops]}}]\n"
    )
    assert main(["validate", "-c", str(tmp_path)]) == 0
    assert capsys.readouterr().out.endswith("run needs PV_SLACK, PV_T set (unset here)\n")


@pytest.mark.parametrize("kind", ["fifo", "urandom", "too big", "directory entry fifo"])
def test_config_files_are_regular_and_bounded(tmp_path, kind):
    target = tmp_path / "pulse.yaml"
    if kind in ("fifo", "directory entry fifo"):
        os.mkfifo(target)  # nobody ever writes: reading it would block for ever
    elif kind == "urandom":
        target.symlink_to("/dev/urandom")
    else:
        target.write_text("#" * (33 << 20))
    started = time.perf_counter()
    done = run_cli("validate", "-c", str(tmp_path if kind.startswith("directory") else target))
    assert time.perf_counter() - started < 20
    assert done.returncode == 1 and "Traceback" not in done.stderr
    expected = {
        "fifo": "cannot read config: a FIFO; a config is a regular file",
        "directory entry fifo": "cannot read config: a FIFO; a config is a regular file",
        "urandom": "cannot read config: a device; a config is a regular file",
        "too big": "config file is larger than 32 MiB",
    }[kind]
    assert done.stderr.splitlines()[0] == f"{target}:1:1: {expected}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedule", "0 0 30 2 *"], "pulse-agent: cron '0 0 30 2 *' never fires"),
        (["schedule", "30s", "--from", "9999-12-31T23:59:59+00:00"], "pulse-agent: the next due time is outside the years 1 .. 9999"),
        (
            ["schedule", "at 9999-12-31T23:59:59-23:00"],
            "pulse-agent: the time in 'at 9999-12-31T23:59:59-23:00' is out of range (year 1 .. 9999 in UTC)",
        ),
        (["schedule", "30s", "--timezone", "A" * 10000], "pulse-agent: unknown time zone 'AAAA"),
        (["schedule", "30s", "--from", "yesterday"], "pulse-agent: Invalid isoformat string"),
    ],
)
def test_schedule_command_exits_1_with_a_line(capsys, args, message):
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_never_firing_cron_stops_run_and_show_schedule_with_a_line(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(check("schedule: '0 0 30 2 *'\n"))
    for args in (["validate", "--show-schedule"], ["run", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "x.duckdb")]):
        done = run_cli(*args, "-c", str(cfg))
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert done.stderr.splitlines() == [
            f"{cfg}:5:15: checks[0].schedule: cron '0 0 30 2 *' never fires: no date matches its day and month fields (e.g. day 30 of February)",
            f"{cfg}: 1 error",
        ]


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "::1:80", "127.0.0.1:", "127.0.0.1:８０"])
def test_bad_listen_flag_exits_2_with_a_line(tmp_path, listen):
    done = run_cli("run", "--listen", listen, "-c", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("pulse-agent: --listen: ") and done.stderr.count("\n") == 1


def test_placeholders_in_numeric_settings_of_the_newer_blocks(tmp_path, capsys, monkeypatch):
    """expect.max_packet_loss and a burn-rate window's burn_rate from ${VAR}s: validate without them
    passes, and set to words they are refused at their key (not at the check, not as a traceback)."""
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(
        "version: 1\nnotifiers: {ops: {urls: ['json://127.0.0.1:1/x']}}\nchecks:\n"
        "  - {name: p, url: 'icmp://127.0.0.1', expect: {max_packet_loss: '${PV_LOSS}'}}\n"
        "  - name: s\n    url: http://127.0.0.1/\n    slo:\n      objective: 99.9\n      burn_rate_alerts:\n"
        "        page: [ops]\n        windows: [{long: 1h, short: 5m, burn_rate: '${PV_RATE}', severity: page}]\n"
    )
    monkeypatch.delenv("PV_LOSS", raising=False)
    monkeypatch.delenv("PV_RATE", raising=False)
    assert main(["validate", "-c", str(cfg)]) == 0
    assert capsys.readouterr().out.endswith("run needs PV_LOSS, PV_RATE set (unset here)\n")
    monkeypatch.setenv("PV_LOSS", "lots")
    monkeypatch.setenv("PV_RATE", "fast")
    assert main(["validate", "-c", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "checks[0].expect.max_packet_loss:" in err and "checks[1].slo.burn_rate_alerts.windows[0].burn_rate:" in err
    assert "cannot be used" not in err


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nnotifiers: [{name: n, urls: ['slack://T000/B000/pv-webhook-secret']}]\n",
        "version: 1\nchecks: {a: {url: 'http://u:pv-webhook-secret@127.0.0.1/'}}\n",
        "version: 1\nchecks: [{name: a, url: 'http://127.0.0.1/', retries: [{headers: {X-Key: 'pv-webhook-secret'}}]}]\n",
    ],
)
def test_a_wrongly_shaped_block_is_described_by_its_shape_never_its_contents(tmp_path, capsys, text):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(text)
    assert main(["validate", "-c", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "expected" in err and "pv-webhook-secret" not in err
