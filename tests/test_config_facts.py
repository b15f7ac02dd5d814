"""What `report` and `export` remember of an accepted config (config_facts.py): the same answers as a
full load, a new load for any change the load depends on, and nothing secret written down."""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from pulse_agent.cli import main
from pulse_agent.config import NO_VALIDATORS, ConfigInvalid, load_config
from pulse_agent.config.files import Source
from pulse_agent.config_facts import KEEP, ConfigFacts, Entry, accepted_facts, env_digest, facts_of, recall, remember, texts_key
from pulse_agent.result import Result
from pulse_agent.store import ResultStore

T0 = 1_795_132_800.0  # 2026-11-20T00:00:00Z
WINDOW = ["--from", "2026-11-20T00:00:00Z", "--to", "2026-11-20T01:00:00Z", "--format", "json"]

CONFIG = """version: 1
agent: {{database: '{db}', query_timeout: 7s}}
checks:
  - {{name: api, url: 'http://127.0.0.1:1/', labels: {{team: core, tier: '1'}}, slo: {{objective: 99.5}}, schedule: '@yearly'}}
  - {{name: web, url: 'http://127.0.0.1:1/', labels: {{team: edge}}, schedule: '@yearly'}}
  - {{name: db, url: 'http://127.0.0.1:1/', schedule: '@yearly'}}
"""


def store(path: Path, checks: tuple[str, ...]) -> Path:
    """A database with ten runs of each check (every third of `db` failing)."""
    s = ResultStore(path)
    for name in checks:
        for i in range(10):
            ok = not (name == "db" and i % 3 == 0)
            s.submit(
                Result(name, T0 + 60 * i, ok, status_code=200 if ok else 503, error_kind=None if ok else "status", response_time_ms=5.0 + i)
            )
    s.close()
    return path


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    db = store(tmp_path / "p.duckdb", ("api", "web", "db"))
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(CONFIG.format(db=db))
    return cfg, tmp_path / "cache" / "pulse-agent"


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict | str]:
    code = main(["report", *args, *WINDOW])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else err)


def entries(where: Path) -> list[Path]:
    return sorted(where.glob("*.json.z")) if where.exists() else []


def test_a_remembered_config_answers_what_loading_it_answers(setup, capsys):
    cfg, where = setup
    views = [[], ["--label", "team=core"], ["--label", "tier=1", "--label", "team=core"], ["--check", "web"], ["--by", "hour"]]
    first = [report(capsys, "-c", str(cfg), *v) for v in views]
    assert len(entries(where)) == 1  # five reports, one load
    again = [report(capsys, "-c", str(cfg), *v) for v in views]
    assert first == again and all(code == 0 for code, _ in first)
    summary = {r["check_name"]: r for r in first[0][1]["rows"]}
    assert summary["api"]["slo_objective_pct"] == 99.5 and summary["web"]["slo_objective_pct"] is None
    assert [r["check_name"] for r in first[1][1]["rows"]] == ["api"]
    # the remembered facts are the full load's, field for field
    entry = recall(where, entries(where)[0].name.split(".")[0])
    assert entry is not None and entry.facts == facts_of(load_config(cfg))
    # a label nobody has is refused from memory as from the file
    assert report(capsys, "-c", str(cfg), "--label", "team=none") == (1, "pulse-agent report: no check has the labels team=none\n")


def test_any_edit_is_loaded_again_and_a_refused_one_is_never_remembered(setup, capsys):
    cfg, where = setup
    assert report(capsys, "-c", str(cfg), "--label", "team=edge")[1]["rows"][0]["check_name"] == "web"
    cfg.write_text(cfg.read_text().replace("team: edge", "team: core"))
    code, body = report(capsys, "-c", str(cfg), "--label", "team=core")
    assert code == 0 and [r["check_name"] for r in body["rows"]] == ["api", "web"]
    assert len(entries(where)) == 2
    cfg.write_text(cfg.read_text().replace("schedule: '@yearly'}\n", "schedule: 'soon'}\n", 1))
    code, err = report(capsys, "-c", str(cfg))
    assert code == 1 and "soon" in err and "schedule" in err
    assert len(entries(where)) == 2  # nothing stored for the refused text
    code, err = report(capsys, "-c", str(cfg))  # and it is refused again, from the file
    assert code == 1 and "soon" in err


def rows_with(capsys, monkeypatch, cfg, *args, **env) -> list[int | str]:
    """Per environment (NAME=value, None: unset), the number of rows reported, or the error."""
    out = []
    for name, values in env.items():
        for value in values:
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
            code, body = report(capsys, "-c", str(cfg), *args)
            out.append(len(body["rows"]) if code == 0 else body.strip())
    return out


def test_the_environment_the_load_looked_up_is_part_of_what_is_remembered(setup, capsys, monkeypatch, tmp_path):
    cfg, where = setup
    other = str(store(tmp_path / "other.duckdb", ("api",)))
    mine = str(tmp_path / "p.duckdb")
    for written in ("'${PULSE_TEST_DB}'", '"\\x24{PULSE_TEST_DB}"', '"\\u0024{PULSE_TEST_DB}"'):  # YAML escapes too
        cfg.write_text(CONFIG.format(db="DB").replace("'DB'", written))
        got = rows_with(capsys, monkeypatch, cfg, PULSE_TEST_DB=[mine, other, mine, None, other])
        assert got[:3] == [3, 1, 3] and "PULSE_TEST_DB is not set" in got[3] and got[4] == 1, written
    entry = max(entries(where), key=lambda e: e.stat().st_mtime_ns)  # the last text's
    before = entry.read_bytes()
    monkeypatch.setenv("UNRELATED_VARIABLE", "x")  # a variable the load did not look up changes nothing
    assert report(capsys, "-c", str(cfg))[0] == 0 and entry.read_bytes() == before
    # a value that is not UTF-8 (Python keeps such bytes as lone surrogates)
    monkeypatch.setenv("PULSE_TEST_DB", mine)
    cfg.write_text(cfg.read_text().replace("team: edge", "team: '${PULSE_TEST_TEAM}'"))
    got = rows_with(capsys, monkeypatch, cfg, "--label", "team=edge", PULSE_TEST_TEAM=["w\udcffb", "edge", "w\udcffb"])
    assert got[1] == 1 and all("no check has the labels" in str(g) for g in (got[0], got[2]))


def test_the_checks_of_this_machine_are_made_again(setup, capsys, tmp_path, ca_file, monkeypatch):
    cfg, where = setup
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(ca_file).read_bytes())
    cfg.write_text(cfg.read_text().replace("schedule: '@yearly'}\n", "schedule: '@yearly', ca_file: ca.pem}\n", 1))
    monkeypatch.chdir(tmp_path)  # a relative ca_file is read where the command runs
    assert report(capsys, "-c", str(cfg))[0] == 0 and len(entries(where)) == 1
    ca.rename(tmp_path / "moved.pem")
    code, err = report(capsys, "-c", str(cfg))
    assert code == 1 and "ca.pem' is not a readable file" in err
    (tmp_path / "moved.pem").rename(ca)
    assert report(capsys, "-c", str(cfg))[0] == 0


def test_a_secret_from_the_environment_is_nowhere_in_the_cache(setup, capsys, monkeypatch):
    cfg, where = setup
    token = "s3cr3t-token-0123456789"
    monkeypatch.setenv("PULSE_TEST_TOKEN", token)
    header = "headers: {Authorization: 'Bearer ${PULSE_TEST_TOKEN}'}"
    cfg.write_text(cfg.read_text().replace("schedule: '@yearly'}\n", f"schedule: '@yearly', {header}}}\n", 1))
    assert report(capsys, "-c", str(cfg))[0] == 0
    [entry] = entries(where)
    assert (where.stat().st_mode & 0o777, entry.stat().st_mode & 0o777) == (0o700, 0o600)
    assert not any(token in p.name or token.encode() in p.read_bytes() for p in where.parent.rglob("*") if p.is_file())


def test_a_damaged_foreign_or_shared_cache_is_not_believed(setup, capsys, tmp_path):
    cfg, where = setup
    good = report(capsys, "-c", str(cfg))
    [entry] = entries(where)
    stored = Entry.from_json(json.loads(zlib.decompress(entry.read_bytes())))
    lie = replace(stored, facts=ConfigFacts(str(tmp_path / "nonexistent.duckdb"), "127.0.0.1:1", 1.0, ("api",)))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for damage in (
        lambda: entry.write_bytes(b"not zlib"),
        lambda: entry.write_bytes(zlib.compress(b"[" * 200_000 + b"]" * 200_000)),  # deeper than json can go
        lambda: entry.write_bytes(zlib.compress(json.dumps({**stored.to_json(), "checks": "x"}).encode())),
        lambda: entry.symlink_to("/dev/zero"),
        lambda: entry.symlink_to(fifo),
        lambda: os.mkfifo(entry),
    ):
        entry.unlink(missing_ok=True)
        damage()
        assert report(capsys, "-c", str(cfg)) == good
    entry.write_bytes(zlib.compress(json.dumps(lie.to_json()).encode()))
    os.chmod(where, 0o777)  # others could have written it: nothing in it is believed, nothing written
    assert report(capsys, "-c", str(cfg)) == good
    assert Entry.from_json(json.loads(zlib.decompress(entry.read_bytes()))) == lie
    os.chmod(where, 0o700)  # believed again (which is what makes the line above a test)
    code, err = report(capsys, "-c", str(cfg))
    assert code == 1 and "nonexistent.duckdb" in err


def test_keys_follow_the_texts_and_the_installation_and_the_environment_what_the_load_looked_up():
    texts = [Source("pulse.yaml", "a: 1\n")]
    base = texts_key(texts, "install")
    others = [
        texts_key(texts, "other install"),
        texts_key([Source("pulse.yaml", "a: 1\n ")], "install"),
        texts_key([Source("other.yaml", "a: 1\n")], "install"),
        texts_key([Source("pulse.yaml", "a: 1\n"), Source("b.yaml", "")], "install"),
        texts_key([Source("pulse.yaml", "a"), Source("yaml", ": 1\n")], "install"),
    ]
    assert len({base, *others}) == len(others) + 1
    env = env_digest(["A", "B"], {"A": "1", "Z": "9"}, "salt")
    assert env_digest(["B", "A"], {"A": "1"}, "salt") == env  # a name not looked up changes nothing
    assert len({env, *(env_digest(["A", "B"], e, s) for e, s in [({"A": "2"}, "salt"), ({"A": "1", "B": ""}, "salt"),
                                                                   ({}, "salt"), ({"A": "1"}, "pepper")])}) == 5  # fmt: skip
    assert env_digest(["A"], {"A": "w\udcffb"}, "s") != env_digest(["A"], {"A": "w\udcfeb"}, "s")  # bytes that are not UTF-8


def test_facts_survive_json_and_refuse_what_is_not_theirs():
    facts = ConfigFacts("p.duckdb", "127.0.0.1:9", 7.0, ("a", "b"), {"a": (("team", "x"),)}, {"b": 99.9})
    assert ConfigFacts.from_json(json.loads(json.dumps(facts.to_json()))) == facts
    entry = Entry(facts, ("A",), "salt", "digest", (("file", ("/x",)), ("client_cert", ("/c", None))))
    assert Entry.from_json(json.loads(json.dumps(entry.to_json()))) == entry
    assert facts.labelled([("team", "x")]) == ["a"] and facts.labelled([]) == ["a", "b"]
    for bad in (None, [], {"format": 0}, {**facts.to_json(), "names": "ab"}, {**facts.to_json(), "slos": {"b": "high"}},
                {**facts.to_json(), "labels": {"a": [["team"]]}}, {**facts.to_json(), "database": None}):  # fmt: skip
        with pytest.raises(ValueError):
            ConfigFacts.from_json(bad)
    for bad_entry in ({**entry.to_json(), "format": 1}, {**entry.to_json(), "checks": [["rule_sql", ["SELECT 1"]]]},
                      {**entry.to_json(), "names": [1]}, {**entry.to_json(), "facts": None}):  # fmt: skip
        with pytest.raises(ValueError):
            Entry.from_json(bad_entry)


def test_a_refused_load_is_raised_and_nothing_is_stored(tmp_path):
    def refuse(**_: object) -> object:
        raise ConfigInvalid([])

    where = tmp_path / "cache"
    with pytest.raises(ConfigInvalid):
        accepted_facts([Source("x.yaml", "x")], refuse, NO_VALIDATORS, env={}, where=where)
    assert entries(where) == []


def test_the_most_recently_used_entries_are_kept(tmp_path):
    where = tmp_path / "cache"
    entry = Entry(ConfigFacts("p.duckdb", "127.0.0.1:9", 1.0), (), "s", env_digest((), {}, "s"), ())
    remember(where, "first", entry)
    for i in range(KEEP * 2):
        os.utime(where / "first.json.z", ns=(0, 0))  # long unused...
        assert recall(where, "first") == entry  # ...until now
        remember(where, f"k{i}", entry)
    names = {p.name.split(".")[0] for p in entries(where)}
    assert len(names) == KEEP and "first" in names and "k0" not in names


def test_a_cache_that_cannot_be_written_only_costs_a_load(setup, capsys, tmp_path, monkeypatch):
    cfg, _ = setup
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where the directory would be
    code, body = report(capsys, "-c", str(cfg))
    assert code == 0 and len(body["rows"]) == 3
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # not absolute: ignored, as the XDG specification says
    monkeypatch.setenv("HOME", "")
    assert report(capsys, "-c", str(cfg)) == (code, body)
    assert not (tmp_path / "relative").exists()
