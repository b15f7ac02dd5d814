"""Property tests (issue 14, item 4): whatever a user types or writes, `validate`, `schedule`,
`run --listen` and `report` answer with an exit code of 0, 1 or 2 and short lines, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse_agent.cli import main

ROOT = Path(__file__).resolve().parent.parent
FULL = (ROOT / "examples" / "full.yaml").read_text()
# PULSE_FUZZ_EXAMPLES=3000 for a longer hunt; the suite keeps it short.
FUZZ = settings(
    max_examples=int(os.environ.get("PULSE_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What breaks YAML and config handling: YAML syntax, aliases, tags, variables, odd numbers, odd text.
TOKENS = [
    "*a", "&a ", "<<: *a", "!!binary ", "!!python/name:os.system", "${", "${X}", "${X:-", "$${", "}", "{", "[", "]", ":", "- ", "? ",
    "null", "~", "-1", "0", ".inf", ".nan", "1e400", "9" * 4400, "0x1F", "yes", "'", '"', "\\", "\t", "\n", "  ", "#",
    "http://[::1/", "https://", "A" * 300, "0 0 30 2 *", "at 9999-12-31T23:59:59-23:00", "{check:>99999}", "(a+)+$", "/(/", "é", "\x00",
]  # fmt: skip


@st.composite
def mutated_full_yaml(draw: st.DrawFn) -> str:
    """examples/full.yaml with a few spans replaced by tokens or random text, or lines moved."""
    text = FULL
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        how = draw(st.sampled_from(["replace", "insert", "delete-line", "swap-lines", "duplicate-line"]))
        i = draw(st.integers(0, len(lines) - 1))
        if how == "delete-line":
            del lines[i]
        elif how == "swap-lines":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "duplicate-line":
            lines.insert(i, lines[i])
        else:
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            end = at if how == "insert" else draw(st.integers(at, len(line)))
            piece = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=12)))
            lines[i] = line[:at] + piece + line[end:]
        text = "\n".join(lines)
    return text


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.sampled_from(TOKENS),
    st.sampled_from(["30s", "1h30m", "every day at 9am", "*/5 * * * *", "UTC", "Europe/Berlin", "2xx", "1MiB", "GET", "json://127.0.0.1/x"]),
)  # fmt: skip
KEYS = st.sampled_from(
    ["version", "agent", "defaults", "notifiers", "checks", "name", "url", "schedule", "timezone", "timeout", "expect", "status",
     "headers", "body", "json", "body_matches", "retries", "alert", "notify", "maintenance", "duration", "listen", "labels", "slo",
     "objective", "urls", "title", "max_body_size", "certificate_valid_for", "api_token", "shard", "retention", "rollup"]
)  # fmt: skip
DATA = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)), max_leaves=25)


def assert_one_line_answers(code: int, err: str) -> None:
    assert code in (0, 1, 2)
    assert "Traceback" not in err
    for line in err.splitlines():
        assert len(line) < 2000, line[:200]


def validate(tmp_path: Path, text: str, capsys) -> None:
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(text, encoding="utf-8", errors="surrogatepass")
    code = main(["validate", "-c", str(cfg)])
    err = capsys.readouterr().err
    assert_one_line_answers(code, err)
    if code == 1:  # every error line is placed in the file, then the count
        assert err.splitlines()[-1].startswith(f"{cfg}: ")


@FUZZ
@given(text=mutated_full_yaml())
def test_validate_mutations_of_full_yaml(tmp_path, capsys, text):
    validate(tmp_path, text, capsys)


@FUZZ
@given(data=DATA, wrap=st.booleans())
def test_validate_random_structures(tmp_path, capsys, data, wrap):
    import yaml

    document = {"version": 1, "checks": [data]} if wrap else data
    validate(tmp_path, yaml.safe_dump(document, allow_unicode=True), capsys)


@FUZZ
@given(text=st.text(max_size=400))
def test_validate_random_text(tmp_path, capsys, text):
    validate(tmp_path, text.replace("\x00", ""), capsys)


CRON_WORDS = st.sampled_from(["*", "*/5", "0", "30", "2", "31", "L", "FRI#5", "MON-FRI", "1-5", "@daily", "@nope", "every", "day", "at",
                              "9am", "25:00", "monday", "last", "of", "month", "at 2026-12-01T09:00:00", "99999999999", "1s", "0s", "-1"])  # fmt: skip


@FUZZ
@given(
    expr=st.one_of(st.lists(CRON_WORDS, min_size=1, max_size=7).map(" ".join), st.text(max_size=40)),
    zone=st.one_of(
        st.just("UTC"), st.sampled_from(["Europe/Berlin", "America/St_Johns", "../etc/passwd", "", "A" * 300]), st.text(max_size=20)
    ),
    start=st.one_of(
        st.none(), st.sampled_from(["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00", "2026-03-29T02:30:00"]), st.text(max_size=25)
    ),
)
def test_schedule_command(capsys, expr, zone, start):
    args = ["schedule", expr, "--timezone", zone, "-n", "3"] + ([] if start is None else ["--from", start])
    try:
        code = main(args)
    except SystemExit as exc:  # argparse: exit 2 with a usage line
        code = exc.code
    assert_one_line_answers(code, capsys.readouterr().err)


@FUZZ
@given(listen=st.one_of(st.text(max_size=30), st.from_regex(r"\[?[0-9a-f:.]{0,12}\]?:[0-9]{0,7}", fullmatch=True)))
def test_listen_flag(tmp_path, capsys, listen):
    if listen.startswith("-"):
        listen = " " + listen  # argparse would read it as an option
    code = main(["run", "--listen", listen, "-c", str(tmp_path / "missing.yaml")])
    assert code in (1, 2)  # 2: a bad address; 1: a good one, then the missing config
    assert_one_line_answers(code, capsys.readouterr().err)


OPTION_VALUES = st.one_of(st.text(max_size=20), st.sampled_from(["24h", "0s", "-1", "99999999999d", "1e400", "2026-12-01T00:00:00Z",
                                                                 "0001-01-01", "9999-12-31T23:59:59Z", "k=v", "=", "a=b=c"]))  # fmt: skip


@FUZZ
@given(
    since=OPTION_VALUES, start=st.one_of(st.none(), OPTION_VALUES), end=st.one_of(st.none(), OPTION_VALUES),
    check=st.lists(st.text(max_size=10), max_size=2), label=st.lists(OPTION_VALUES, max_size=2),
    view=st.sampled_from([[], ["--by", "hour"], ["--by", "day"], ["--incidents"]]), fmt=st.sampled_from(["table", "json", "csv", "markdown"]),
)  # fmt: skip
def test_report_options(tmp_path, capsys, report_db, since, start, end, check, label, view, fmt):
    args = ["report", "--db", report_db, "-c", str(tmp_path / "missing.yaml"), "--format", fmt, *view]
    for name, value in (("--since", since), ("--from", start), ("--to", end)):
        if value is not None:
            args += [f"{name}={value}"]
    for c in check:
        args += [f"--check={c}"]
    for item in label:
        args += [f"--label={item}"]
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    assert_one_line_answers(code, capsys.readouterr().err)


@pytest.fixture(scope="module")
def report_db(tmp_path_factory):
    """A results database with one check, made by the agent's own store."""
    import duckdb

    from pulse_agent.store.migrations import migrate

    path = str(tmp_path_factory.mktemp("db") / "pulse.duckdb")
    with duckdb.connect(path) as con:
        migrate(con)
    return path
