"""A large config is parsed in a short-lived child process (config/child.py): the agent gets the very
document an in-process parse gives (data, types, positions, errors), and a child that fails or dies is
a one-line refusal, never a traceback, with the running config kept."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from pathlib import Path

import httpx
import pytest

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.cli import main
from pulse_agent.clock import ManualClock
from pulse_agent.config import ConfigInvalid, Memo, begin_load, child, load_config
from pulse_agent.config.load import Document, parse_document
from tests.test_config_hostile import LAUGHS, ROWS

ROOT = Path(__file__).resolve().parent.parent
ENV = {"TOKEN": "s3cret", "PORT": "8080"}
TEXTS = [
    (ROOT / "examples" / "full.yaml").read_text(),
    (ROOT / "examples" / "minimal.yaml").read_text(),
    (ROOT / "pulse.yaml").read_text(),
    # ${VAR}s: marked header values (FromEnv) and values typed after expansion; dates: neither can be marshalled
    "version: 1\nchecks:\n  - {name: a, url: 'http://h:${PORT}/', headers: {Authorization: 'Bearer ${TOKEN}'}, timeout: ${T:-5}}\n"
    "  - {name: b, url: 'http://h/', when: 2026-12-01, at: 2026-12-01T09:00:00Z}\n",
    # merges note paths out of walk order: positions travel with their paths
    "version: 1\nbase: &b {timeout: 5s, headers: {A: x}}\nchecks:\n  - <<: *b\n    name: a\n    timeout: 2s\n",
    "version: 1\nchecks:\n  - name: a\n    name: b\n    url: !!python/object x\n",  # duplicate key, refused tag
    "version: 1\nchecks: [\n",  # a YAML error: no data, no positions
    "",
    "version: 1\nagent: {listen: '${UNSET}'}\n",
    LAUGHS,
    *(text for _, text, _ in ROWS),
]


def same(a: Document, b: Document) -> None:
    assert (a.source, a.errors, a.unknown, a.needs) == (b.source, b.errors, b.unknown, b.needs)
    assert repr(a.data) == repr(b.data)  # not ==: a config may hold a NaN
    assert [type(v) for v in _leaves(a.data)] == [type(v) for v in _leaves(b.data)]
    assert list(a.values.items()) == list(b.values.items()) and list(a.keys.items()) == list(b.keys.items())


def _leaves(data: object) -> list[object]:
    if isinstance(data, dict):
        return [x for k, v in data.items() for x in (k, *_leaves(v))]
    if isinstance(data, list):
        return [x for v in data for x in _leaves(v)]
    return [data]


CASES = [(text, False) for text in TEXTS] + [(TEXTS[0], True), (TEXTS[3], True), (TEXTS[8], True)]  # placeholders: ${VAR}s


@pytest.mark.parametrize(("text", "placeholders"), CASES, ids=range(len(CASES)))
def test_a_child_parse_equals_the_in_process_parse(text, placeholders):
    same(
        parse_document(text, "c.yaml", ENV, placeholders=placeholders), child.parse_in_child(text, "c.yaml", ENV, placeholders=placeholders)
    )


def test_positions_sent_without_paths_are_found_again_on_the_first_lookup():
    text = "version: 1\nchecks:\n" + "".join(
        f"  - {{name: c{i}, url: 'http://h/{i}', expect: {{status: [200, 3xx]}}}}\n" for i in range(300)
    )
    local, remote = parse_document(text, "c.yaml", {}), child.parse_in_child(text, "c.yaml", {})
    assert remote.values._at is None and remote.keys._at is None  # numbers only came: the paths are walked when first needed
    assert len(remote.values) == len(local.values) and len(remote.keys) == len(local.keys)
    assert remote.where(("checks", 299, "expect", "status", 1)) == local.where(("checks", 299, "expect", "status", 1))
    assert str(remote.keys[("checks", 7, "url")]) == "c.yaml:10:16"
    same(local, remote)


def test_a_running_agents_load_goes_through_a_child_and_gives_the_same_spec_and_errors(tmp_path, monkeypatch):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(TEXTS[0])
    monkeypatch.setattr(child, "CHILD_MIN_CHARS", 0)
    started = _counting_starts(monkeypatch)
    assert load_config(cfg, memo=Memo(), placeholders=True) == load_config(cfg, placeholders=True)
    assert len(started) == 1
    load_config(cfg, placeholders=True)  # validate and check stay in process
    assert len(started) == 1
    cfg.write_text(TEXTS[0].replace("version: 1", "version: 1\nbogus: 1", 1).replace("timeout: 5s", "timeout: 5 parsecs"))
    with pytest.raises(ConfigInvalid) as local:
        load_config(cfg, placeholders=True)
    with pytest.raises(ConfigInvalid) as remote:
        load_config(cfg, memo=Memo(), placeholders=True)
    assert [str(e) for e in remote.value.errors] == [str(e) for e in local.value.errors] and len(local.value.errors) >= 2


def _counting_starts(monkeypatch) -> list[int]:
    """The pids of the ParseJobs started from now on."""
    pids: list[int] = []
    real = child.ParseJob.__init__

    def counted(self, *args, **kwargs):
        real(self, *args, **kwargs)
        pids.append(self.pid)

    monkeypatch.setattr(child.ParseJob, "__init__", counted)
    return pids


def test_a_load_begun_ahead_parses_while_the_caller_works_and_gives_the_same_spec(tmp_path, monkeypatch):
    monkeypatch.setattr(child, "CHILD_MIN_CHARS", 0)
    monkeypatch.setattr(child.os, "cpu_count", lambda: 1)  # one child a file (tests/test_config_split.py: in parts)
    cfg, folder = tmp_path / "pulse.yaml", tmp_path / "conf.d"
    cfg.write_text(TEXTS[2])  # the bundled config: ${VAR}s with defaults
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.yaml").write_text(
            "version: 1\nchecks:\n" + "".join(f"  - {{name: f{n}c{i}, url: 'http://h/{i}'}}\n" for i in range(20))
        )
    pids = _counting_starts(monkeypatch)
    for path, children in ((cfg, 1), (folder, 3)):
        memo = Memo()
        ahead = begin_load(path, memo, ENV)
        assert len(pids) == children  # started by begin_load, before load_config is called
        jobs = dict(ahead.jobs)
        assert load_config(path, ENV, memo, ahead=ahead) == load_config(path, ENV)
        assert len(pids) == children and sorted(job.pid for job in jobs.values()) == sorted(pids)
        assert ahead.jobs == {}  # collected: the Ahead holds no job (a job may hold the config's text)
        pids.clear()
    with pytest.raises(ValueError):  # an Ahead serves the load it was begun for only
        load_config(folder, ENV, Memo(), ahead=begin_load(cfg, Memo(), ENV))


def test_a_load_begun_ahead_refuses_as_a_load_does(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigInvalid) as direct:
        load_config(missing, memo=Memo())
    with pytest.raises(ConfigInvalid) as ahead:
        memo = Memo()
        load_config(missing, memo=memo, ahead=begin_load(missing, memo))
    assert (
        [str(e) for e in ahead.value.errors]
        == [str(e) for e in direct.value.errors]
        == [f"config file {str(missing)!r} not found; pass -c FILE"]
    )
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(TEXTS[1] + "  - {name: slow, url: 'http://h/', timeout: 5 parsecs}\n")
    monkeypatch.setattr(child, "CHILD_MIN_CHARS", 0)
    assert main(["run", "-c", str(cfg)]) == 1  # `run` begins its load first: an error in the file is placed as before
    assert capsys.readouterr().err.splitlines() == [
        f'{cfg}:8:45: checks[1].timeout: "5 parsecs" is not a valid duration (e.g. 250ms, 30s, 5m, 1h30m, 7d, 10)',
        f"{cfg}: 1 error",
    ]
    monkeypatch.setattr(child, "COMMAND", [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert main(["run", "-c", str(cfg)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{cfg}:1:1: config not loaded: the process parsing it was killed (SIGKILL)",
        f"{cfg}: 1 error",
    ]


def test_a_small_config_pays_no_process_start(tmp_path, monkeypatch):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(TEXTS[1])
    monkeypatch.setattr(child, "COMMAND", [sys.executable, "-c", "raise SystemExit(3)"])
    assert len(TEXTS[1]) < child.CHILD_MIN_CHARS
    assert load_config(cfg, memo=Memo()).checks  # the failing child was never asked


def test_the_large_files_of_a_directory_are_parsed_by_children_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(child, "CHILD_MIN_CHARS", 2000)
    for n in range(3):
        checks = "".join(f"  - {{name: f{n}c{i}, url: 'http://127.0.0.1:1/{i}'}}\n" for i in range(60))
        (tmp_path / f"{n}.yaml").write_text("version: 1\nchecks:\n" + checks)
    (tmp_path / "small.yaml").write_text("version: 1\nchecks:\n  - {name: s, url: 'http://127.0.0.1:1/'}\n")
    pids = _counting_starts(monkeypatch)
    memo = Memo()
    assert load_config(tmp_path, memo=memo) == load_config(tmp_path)
    assert len(pids) == 3 and len(set(pids)) == 3
    assert load_config(tmp_path, memo=memo) == load_config(tmp_path) and len(pids) == 3  # remembered: no child


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "the process parsing it was killed (SIGKILL)"),
        ("raise SystemExit(3)", "the process parsing it exited with status 3"),
        ("import sys; sys.stdin.buffer.read(); sys.stdout.buffer.write(b'\\x80\\x05garbage')", "the process parsing it gave no answer"),
        ("import sys, pickle; sys.stdout.buffer.write(pickle.dumps(('failed', 'MemoryError')))", "parsing it failed: MemoryError"),
    ],
    ids=["killed", "exit 3", "garbage", "failed"],
)
def test_a_child_that_fails_is_one_placed_line(tmp_path, monkeypatch, program, message):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(TEXTS[1])
    monkeypatch.setattr(child, "CHILD_MIN_CHARS", 0)
    monkeypatch.setattr(child, "COMMAND", [sys.executable, "-c", program])
    with pytest.raises(ConfigInvalid) as refused:
        load_config(cfg, memo=Memo())
    assert [str(e) for e in refused.value.errors] == [f"{cfg}:1:1: config not loaded: {message}"]


def test_a_child_killed_while_parsing_is_a_refusal(monkeypatch):
    text = "version: 1\nchecks:\n" + "".join(f"  - {{name: c{i}, url: 'http://h/{i}'}}\n" for i in range(50_000))
    job = child.ParseJob(text, "big.yaml", {})
    os.kill(job.pid, signal.SIGKILL)
    with pytest.raises(ConfigInvalid) as refused:
        job.result()
    assert str(refused.value) == "big.yaml:1:1: config not loaded: the process parsing it was killed (SIGKILL)"


async def test_a_reload_whose_child_dies_keeps_the_running_config(tmp_path, httpserver, monkeypatch):
    httpserver.expect_request("/a").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(f"version: 1\nchecks:\n  - {{name: a, url: '{httpserver.url_for('/a')}'}}\n")
    monkeypatch.setattr(child, "CHILD_MIN_CHARS", 0)
    options = RunOptions(database=str(tmp_path / "p.duckdb"), listen="127.0.0.1:0", config=str(cfg), watch=False)
    agent = Agent(load_config(cfg, memo=Memo()), options, clock=ManualClock(1_800_000_000.0), memo=Memo())
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.started.wait(), 10)
        cfg.write_text(cfg.read_text() + f"  - {{name: b, url: '{httpserver.url_for('/b')}'}}\n")
        killed = threading.Event()
        real = child.ParseJob.__init__

        def killing(self, *args, **kwargs):
            real(self, *args, **kwargs)
            os.kill(self.pid, signal.SIGKILL)
            killed.set()

        monkeypatch.setattr(child.ParseJob, "__init__", killing)
        outcome = await agent.reload("api")
        assert killed.is_set() and not outcome.ok
        assert list(outcome.errors) == [f"{cfg}:1:1: config not loaded: the process parsing it was killed (SIGKILL)"]
        assert [c.name for c in agent.spec.checks] == ["a"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.port}", timeout=5) as web:
            assert [c["name"] for c in (await web.get("/api/v1/checks")).json()["checks"]] == ["a"]
        monkeypatch.setattr(child.ParseJob, "__init__", real)
        outcome = await agent.reload("api")  # the next good load goes through
        assert outcome.ok and [c.name for c in agent.spec.checks] == ["a", "b"]
    finally:
        stop.set()
        await task
