"""The CLI as users run it: validate, schema, check; exit codes and output."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from pulse_agent.cli import main
from tests.conftest import free_port, run_cli

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text, name="pulse.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_validate_ok(tmp_path, capsys):
    cfg = write(
        tmp_path,
        """\
        version: 1
        notifiers: {ops: {urls: ["json://127.0.0.1:1/x"]}}
        checks:
          - {name: a, url: "http://127.0.0.1/"}
          - {name: b, url: "http://127.0.0.1/", enabled: false, alert: {notify: [ops]}}
        """,
    )
    assert main(["validate", "-c", cfg]) == 0
    assert capsys.readouterr().out == f"{cfg}: valid (2 checks, 1 disabled, 1 notifier)\n"


def test_validate_lists_every_error_and_exits_1(tmp_path, capsys):
    cfg = write(
        tmp_path,
        """\
        version: 1
        checks:
          - {name: a, url: "http://127.0.0.1/", timeout: forever}
          - {name: a, url: "gopher://x"}
        """,
    )
    assert main(["validate", "-c", cfg]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f'{cfg}:3:50: checks[0].timeout: "forever" is not a valid duration (e.g. 250ms, 30s, 5m, 1h30m, 7d, 10)',
        f"{cfg}:4:12: checks[1].name: duplicate check name 'a' (first at line 3)",
        f"{cfg}:4:20: checks[1].url: gopher:// is not a kind of check: the URL's scheme must be one of http://, https://, tcp://, tls://, dns://, icmp://",
        f"{cfg}: 3 errors",
    ]


def test_validate_missing_file(tmp_path, capsys):
    assert main(["validate", "-c", str(tmp_path / "none.yaml")]) == 1
    assert "not found" in capsys.readouterr().err


def test_validate_does_not_import_the_heavy_libraries():
    code = (
        "import sys; from pulse_agent.cli import main; rc = main(['validate', '-c', 'pulse.yaml']);"
        "print(rc, sorted(m for m in ('duckdb', 'apprise', 'aiohttp', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "0 []"


def test_schema_command_prints_the_one_schema(capsys):
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == (ROOT / "schemas" / "pulse.schema.json").read_text()
    Draft202012Validator.check_schema(json.loads(printed))


@pytest.mark.parametrize("config", sorted([ROOT / "pulse.yaml", *(ROOT / "examples").glob("*.yaml")]), ids=lambda p: p.name)
def test_shipped_configs_validate_and_point_editors_at_the_schema(config, capsys):
    assert main(["validate", "-c", str(config)]) == 0, capsys.readouterr().err
    assert config.read_text().startswith("# yaml-language-server: $schema=")


def test_check_command_json(tmp_path, httpserver, capsys):
    httpserver.expect_request("/ok").respond_with_data("fine")
    httpserver.expect_request("/bad").respond_with_data("nope", status=503)
    cfg = write(
        tmp_path,
        f"""\
        version: 1
        checks:
          - {{name: good, url: "{httpserver.url_for("/ok")}", expect: {{body_contains: fine}}}}
          - {{name: bad, url: "{httpserver.url_for("/bad")}"}}
        """,
    )
    assert main(["check", "good", "-c", cfg, "--format", "json"]) == 0
    good = json.loads(capsys.readouterr().out)
    assert {k: good[k] for k in ("check", "ok", "status_code", "error_kind", "error")} == {
        "check": "good",
        "ok": True,
        "status_code": 200,
        "error_kind": None,
        "error": None,
    }
    assert good["response_time_ms"] > 0 and good["ts"].endswith("Z")
    assert good["degraded"] is False and good["attempts"] == 1
    assert good["connect_ms"] > 0 and good["first_byte_ms"] > 0 and good["tls_ms"] is None and "dns_ms" in good
    assert main(["check", "bad", "-c", cfg]) == 1
    line = capsys.readouterr().out
    assert line.startswith("FAIL  bad  503  ") and "status: status 503 not in [2xx]  (" in line and "first byte" in line
    assert main(["check", "nope", "-c", cfg]) == 2
    assert "no check named 'nope' (checks: good, bad)" in capsys.readouterr().err


def test_run_with_an_invalid_config_exits_1(tmp_path, capsys):
    cfg = write(tmp_path, "version: 1\nchecks: [{name: a}]\n")
    assert main(["run", "-c", cfg]) == 1
    assert "missing required key 'url'" in capsys.readouterr().err


def test_run_with_an_unopenable_database_exits_1_with_one_line(tmp_path):
    cfg = write(tmp_path, "version: 1\n")
    proc = run_cli("run", "-c", cfg, "--db", str(tmp_path / "no" / "x.duckdb"), "--listen", f"127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"pulse-agent: cannot open database '{tmp_path}/no/x.duckdb': directory")


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (["*/15 * * * *", "--from", "2026-11-22T12:05:00Z", "-n", "2"], ["2026-11-22T12:15:00Z", "2026-11-22T12:30:00Z"]),
        (["every weekday at 08:00", "--timezone", "Europe/Berlin", "--from", "2026-10-23T00:00:00Z", "-n", "2"],
         ["2026-10-23T06:00:00Z  2026-10-23T08:00:00+02:00", "2026-10-26T07:00:00Z  2026-10-26T08:00:00+01:00"]),
        (["at 2026-12-01T09:00:00Z", "--from", "2026-11-22T00:00:00Z"], ["2026-12-01T09:00:00Z"]),
        (["every 10 seconds", "--from", "2026-11-22T00:00:00Z", "-n", "3"], None),
    ],
)  # fmt: skip
def test_schedule_command(args, lines, capsys):
    assert main(["schedule", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    if lines is not None:
        assert out == lines
    else:
        assert len(out) == 3 and all(line.endswith("Z") for line in out)


def test_schedule_command_rejects_bad_input(capsys):
    assert main(["schedule", "every blursday"]) == 1
    assert "at 'blursday'" in capsys.readouterr().err
    assert main(["schedule", "30s", "--timezone", "Mars/Base"]) == 1
    assert "unknown time zone" in capsys.readouterr().err


def test_validate_show_schedule(tmp_path, capsys):
    cfg = write(
        tmp_path,
        """\
        version: 1
        checks:
          - {name: nightly, url: "http://127.0.0.1/", schedule: "every day at 3am", timezone: Europe/Berlin}
          - {name: once, url: "http://127.0.0.1/", schedule: "at 2020-01-01T00:00:00Z"}
          - {name: off, url: "http://127.0.0.1/", enabled: false}
        """.replace("name: off", "name: 'off'"),
    )
    assert main(["validate", "--show-schedule", "-c", cfg]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines[0].split()[0] == "nightly" and lines[0].endswith("every day at 3am  [Europe/Berlin]")
    assert "never (its one run is past)" in lines[1]
    assert lines[2].split()[:2] == ["off", "disabled"]


def test_validate_takes_several_files_for_pre_commit(tmp_path, capsys):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("version: 1\n")
    bad.write_text("version: 2\n")
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr()
    assert f"{good}: valid (0 checks, 0 notifiers)" in out.out
    assert f"{bad}:1:10: version: 2 is not allowed; must be 1" in out.err
