"""What `report` and `export` remember of an accepted config (config_facts.py): the same answers as a
full load, a new load for any change the load depends on, and nothing secret written down."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pulse_agent.cli import main
from pulse_agent.config import ConfigInvalid, load_config
from pulse_agent.config_facts import ConfigFacts, accepted_facts, facts_of, key_of, recall
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
    assert recall(where, entries(where)[0].name.split(".")[0]) == facts_of(load_config(cfg))
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


def test_the_environment_a_config_names_is_part_of_what_is_remembered(setup, capsys, monkeypatch, tmp_path):
    cfg, where = setup
    other = store(tmp_path / "other.duckdb", ("api",))
    cfg.write_text(CONFIG.format(db="${PULSE_TEST_DB}"))
    counts = []
    for db in (tmp_path / "p.duckdb", other, tmp_path / "p.duckdb"):
        monkeypatch.setenv("PULSE_TEST_DB", str(db))
        code, body = report(capsys, "-c", str(cfg))
        counts.append(len(body["rows"]))
    assert counts == [3, 1, 3] and len(entries(where)) == 2
    monkeypatch.delenv("PULSE_TEST_DB")
    code, err = report(capsys, "-c", str(cfg))
    assert code == 1 and "PULSE_TEST_DB is not set" in err
    monkeypatch.setenv("UNRELATED_VARIABLE", "x")  # a variable the config does not name changes nothing
    monkeypatch.setenv("PULSE_TEST_DB", str(other))
    assert report(capsys, "-c", str(cfg))[0] == 0 and len(entries(where)) == 2


def test_a_secret_from_the_environment_is_nowhere_in_the_cache(setup, capsys, monkeypatch):
    cfg, where = setup
    token = "s3cr3t-token-0123456789"
    monkeypatch.setenv("PULSE_TEST_TOKEN", token)
    cfg.write_text(
        cfg.read_text().replace(
            "schedule: '@yearly'}\n", "schedule: '@yearly', headers: {Authorization: 'Bearer ${PULSE_TEST_TOKEN}'}}\n", 1
        )
    )
    assert report(capsys, "-c", str(cfg))[0] == 0
    [entry] = entries(where)
    assert (where.stat().st_mode & 0o777, entry.stat().st_mode & 0o777) == (0o700, 0o600)
    assert not any(token in p.name or token.encode() in p.read_bytes() for p in where.parent.rglob("*") if p.is_file())
    monkeypatch.setenv("PULSE_TEST_TOKEN", token + "x")  # another token: another load (it could be refused)
    assert report(capsys, "-c", str(cfg))[0] == 0 and len(entries(where)) == 2


def test_a_damaged_or_shared_cache_is_not_believed(setup, capsys):
    cfg, where = setup
    good = report(capsys, "-c", str(cfg))
    [entry] = entries(where)
    entry.write_bytes(b"not zlib")
    assert report(capsys, "-c", str(cfg)) == good
    import zlib

    lie = ConfigFacts("/nonexistent.duckdb", "127.0.0.1:1", 1.0, ("api",)).to_json()
    entry.write_bytes(zlib.compress(json.dumps(lie).encode()))
    os.chmod(where, 0o777)  # others could have written it: read nothing from it
    assert report(capsys, "-c", str(cfg)) == good
    os.chmod(where, 0o700)
    entry.write_bytes(zlib.compress(json.dumps({**lie, "names": [1, 2]}).encode()))
    assert report(capsys, "-c", str(cfg)) == good


def test_a_cache_that_cannot_be_written_only_costs_a_load(setup, capsys, tmp_path, monkeypatch):
    cfg, _ = setup
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where the directory would be
    code, body = report(capsys, "-c", str(cfg))
    assert code == 0 and len(body["rows"]) == 3
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as the XDG spec says
    monkeypatch.delenv("HOME", raising=False)
    assert report(capsys, "-c", str(cfg)) == (code, body)
    assert not (Path("relative")).exists()


def test_keys_follow_every_input_of_a_load():
    texts = [("pulse.yaml", "a: ${A}\nb: ${B:-x}\nc: $${C}\n")]
    base = key_of(texts, {"A": "1"}, "code")
    assert key_of(texts, {"A": "1", "Z": "9"}, "code") == base  # Z is not named
    changed = [
        key_of(texts, {"A": "2"}, "code"),
        key_of(texts, {}, "code"),
        key_of(texts, {"A": "1", "B": ""}, "code"),  # set but empty is not unset
        key_of(texts, {"A": "1", "C": "1"}, "code"),  # escaped names count too (more keys, never a wrong one)
        key_of(texts, {"A": "1"}, "other code"),
        key_of([("pulse.yaml", texts[0][1] + " ")], {"A": "1"}, "code"),
        key_of([("other.yaml", texts[0][1])], {"A": "1"}, "code"),
        key_of([("pulse.yaml", "a: ${A}\n"), ("b.yaml", "b: ${B:-x}\nc: $${C}\n")], {"A": "1"}, "code"),
    ]
    assert len({base, *changed}) == len(changed) + 1


def test_facts_survive_json_and_refuse_what_is_not_theirs():
    facts = ConfigFacts("p.duckdb", "127.0.0.1:9", 7.0, ("a", "b"), {"a": (("team", "x"),)}, {"b": 99.9})
    assert ConfigFacts.from_json(json.loads(json.dumps(facts.to_json()))) == facts
    assert facts.labelled([("team", "x")]) == ["a"] and facts.labelled([]) == ["a", "b"]
    for bad in (None, [], {"format": 0}, {**facts.to_json(), "names": "ab"}, {**facts.to_json(), "slos": {"b": "high"}},
                {**facts.to_json(), "labels": {"a": [["team"]]}}, {**facts.to_json(), "database": None}):  # fmt: skip
        with pytest.raises(ValueError):
            ConfigFacts.from_json(bad)


def test_a_refused_load_is_raised_and_nothing_is_stored(tmp_path):
    def refuse() -> object:
        raise ConfigInvalid([])

    with pytest.raises(ConfigInvalid):
        accepted_facts([("x.yaml", "x")], refuse, env={}, where=tmp_path)
    assert list(tmp_path.iterdir()) == []
