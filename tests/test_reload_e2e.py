"""Hot reload through the real agent process: atomic-rename edits, a refused edit, SIGHUP,
a config directory updated the way Kubernetes updates a ConfigMap, and the API token."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import textwrap
import time

import duckdb
import httpx

from pulse_agent.clock import ManualClock, SystemClock
from pulse_agent.config import load_config
from pulse_agent.live import reloader
from pulse_agent.shard import Shard
from pulse_agent.web.metrics import Metrics
from tests.agent_process import AgentProcess

TOKEN = "e2e-token-0123456789abcdef"


def atomic_write(path, text: str) -> None:
    """What editors and kubectl do: write a temporary file beside it, then rename it over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def checks(server, *specs: str) -> str:
    lines = ["version: 1", "agent: {api_token: '${PULSE_API_TOKEN}'}", "checks:"]
    lines += [f"  - {{name: {name}, url: '{server.url_for('/' + name)}', schedule: every 1s{extra}}}" for name, _, extra in
              (s.partition(":") for s in specs)]  # fmt: skip
    return "\n".join(lines) + "\n"


def reloaded(agent: AgentProcess, **counts: object):
    return agent.wait_for(lambda r: r.get("msg") == "config reloaded" and all(r.get(k) == v for k, v in counts.items()))


def test_edits_apply_while_unchanged_checks_keep_their_beat(tmp_path, httpserver):
    for name in ("a", "b", "c"):
        httpserver.expect_request(f"/{name}").respond_with_data("ok")
    cfg, db = tmp_path / "pulse.yaml", tmp_path / "p.duckdb"
    cfg.write_text(checks(httpserver, "a", "b"))
    agent = AgentProcess("-c", str(cfg), "--db", str(db), "--listen", "127.0.0.1:0", env={"PULSE_API_TOKEN": TOKEN})
    try:
        base = f"http://{agent.wait_for(lambda r: r.get('msg') == 'agent started')['listen']}"
        agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "a")

        atomic_write(cfg, checks(httpserver, "a", "b:, timeout: 3s", "c"))
        reloaded(agent, reason="file", added=1, changed=1, unchanged=1, removed=0)
        agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "c")

        atomic_write(cfg, checks(httpserver, "a", "c"))
        reloaded(agent, reason="file", removed=1, unchanged=2)

        atomic_write(cfg, checks(httpserver, "a", "c") + "  - {name: d, url: 'ftp://nope'}\n")
        refused = agent.wait_for(lambda r: r.get("msg") == "config reload refused; still running the last good config")
        assert refused["errors"][0].startswith(f"{cfg}:6:")
        with httpx.Client(base_url=base, timeout=5) as web:
            assert "pulse_config_last_reload_successful 0.0" in web.get("/metrics").text
            assert web.get("/api/v1/checks").status_code == 401  # the token came from the environment
            names = [c["name"] for c in web.get("/api/v1/checks", headers={"Authorization": f"Bearer {TOKEN}"}).json()["checks"]]
            assert names == ["a", "c"]  # still the last good config

            atomic_write(cfg, checks(httpserver, "a", "c", "d"))
            reloaded(agent, reason="file", added=1, unchanged=2)
            assert "pulse_config_last_reload_successful 1.0" in web.get("/metrics").text

            agent.proc.send_signal(signal.SIGHUP)
            reloaded(agent, reason="sighup", added=0, removed=0, changed=0, unchanged=3)
            agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "d")
            for n in range(1, 5):  # a has run all along: let it run a few more times after all the reloads
                agent.wait_for(lambda r, n=n: sum(1 for x in agent.seen if x.get("msg") == "result" and x.get("check") == "a") >= n)
            metrics = web.get("/metrics").text
        assert 'pulse_config_reloads_total{result="success"} 4.0' in metrics
        assert 'pulse_config_reloads_total{result="failure"} 1.0' in metrics
        assert 'check="b"' not in metrics
    finally:
        assert agent.stop() == 0
    with duckdb.connect(str(db), read_only=True) as con:
        due = [t for (t,) in con.execute("SELECT epoch(scheduled_ts) FROM results WHERE check_name = 'a' ORDER BY ts").fetchall()]
        versions = con.execute("SELECT reason FROM config_versions ORDER BY applied_at").fetchall()
    assert len(due) >= 3
    assert [round(b - a, 3) for a, b in itertools.pairwise(due)] == [1.0] * (len(due) - 1)  # no gap, no extra run
    assert [r for (r,) in versions] == ["start", "file", "file", "file", "sighup"]


def test_a_config_directory_follows_a_configmap_style_symlink_swap(tmp_path, httpserver):
    for name in ("a", "b"):
        httpserver.expect_request(f"/{name}").respond_with_data("ok")
    mount = tmp_path / "config"
    (mount / "..v1").mkdir(parents=True)
    (mount / "..v1" / "checks.yaml").write_text(checks(httpserver, "a").replace("agent: {api_token: '${PULSE_API_TOKEN}'}\n", ""))
    (mount / "..data").symlink_to("..v1")
    (mount / "checks.yaml").symlink_to("..data/checks.yaml")
    agent = AgentProcess("-c", str(mount), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        assert started["checks"] == 1
        (mount / "..v2").mkdir()
        (mount / "..v2" / "checks.yaml").write_text(checks(httpserver, "a", "b").replace("agent: {api_token: '${PULSE_API_TOKEN}'}\n", ""))
        (mount / "..data_tmp").symlink_to("..v2")
        os.replace(mount / "..data_tmp", mount / "..data")  # the kubelet's atomic swap
        reloaded(agent, reason="file", added=1, unchanged=1)
        agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "b")
    finally:
        assert agent.stop() == 0


def test_a_file_dropped_into_a_config_directory_is_picked_up(tmp_path, httpserver):
    httpserver.expect_request("/a").respond_with_data("ok")
    httpserver.expect_request("/b").respond_with_data("ok")
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "a.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        checks: [{{name: a, url: '{httpserver.url_for("/a")}', schedule: every 1s}}]
    """)
    )
    agent = AgentProcess("-c", str(conf), "--db", str(tmp_path / "p.duckdb"), "--listen", "127.0.0.1:0")
    try:
        agent.wait_for(lambda r: r.get("msg") == "agent started")
        atomic_write(conf / "b.yml", f"version: 1\nchecks: [{{name: b, url: '{httpserver.url_for('/b')}', schedule: every 1s}}]\n")
        reloaded(agent, reason="file", added=1, unchanged=1)
        (conf / "notes.txt").write_text("ignored")
        agent.wait_for(lambda r: r.get("msg") == "result" and r.get("check") == "b")
    finally:
        assert agent.stop() == 0
    assert not any(r.get("msg") == "config reload refused; still running the last good config" for r in agent.seen)


def test_a_file_reload_that_waited_for_another_reload_does_not_roll_it_back(tmp_path, monkeypatch):
    """The watcher reads the files, then waits while an API reload applies a newer edit: it must not then apply
    the older text it read (reloader.on_disk is wrapped to land the newer edit just after the watcher's read)."""
    text = "version: 1\nchecks:\n  - {{name: {n}, url: 'http://127.0.0.1:9/'}}\n"
    path = tmp_path / "pulse.yaml"
    path.write_text(text.format(n="x"))
    running = {"spec": load_config(path)}
    path.write_text(text.format(n="a"))  # the edit the watcher sees

    async def apply(spec, change):
        running["spec"] = spec

    r = reloader.Reloader(str(path), Shard(), lambda: running["spec"], apply, Metrics(), SystemClock())
    read = reloader.on_disk

    def read_then_edit(config):
        found = read(config)
        path.write_text(text.format(n="b"))  # the next edit lands just after the watcher read the file
        return found

    monkeypatch.setattr(reloader, "on_disk", read_then_edit)

    async def main():
        async with r._lock:  # an API reload is running when the watcher's read ends
            watcher = asyncio.create_task(r.reload_if_changed())
            while "name: b" not in path.read_text():
                await asyncio.sleep(0.005)
            await r._reload("api")
            assert [c.name for c in running["spec"].checks] == ["b"]
        await watcher

    asyncio.run(main())
    assert [c.name for c in running["spec"].checks] == ["b"]


def test_the_watch_poll_reads_a_config_again_only_when_stat_says_it_changed(tmp_path, monkeypatch):
    """The watch asks every second whether the config changed; a large one is read and hashed only when
    stat says it changed, or was changed too recently for its times to tell (RACY_NS, on the agent's clock)."""
    text = "version: 1\nchecks:\n  - {{name: {n}, url: 'http://127.0.0.1:9/'}}\n"
    path = tmp_path / "pulse.yaml"
    path.write_text(text.format(n="x"))
    running = {"spec": load_config(path)}

    async def apply(spec, change):
        running["spec"] = spec

    reads: list[str] = []
    read = reloader.on_disk
    monkeypatch.setattr(reloader, "on_disk", lambda config: reads.append(config) or read(config))
    clock = ManualClock(time.time() + 60)  # a minute after the file was written
    r = reloader.Reloader(str(path), Shard(), lambda: running["spec"], apply, Metrics(), clock)

    async def main():
        assert [await r.reload_if_changed() for _ in range(3)] == [None] * 3
        assert len(reads) == 1
        await clock.advance(11)  # read anyway now and then (READ_ANYWAY_NS)
        assert await r.reload_if_changed() is None and len(reads) == 2
        mtime = path.stat().st_mtime_ns
        path.write_text(text.format(n="y"))  # the same size, in place, its times put back (`touch -r`): ctime moved
        os.utime(path, ns=(mtime, mtime))
        await clock.advance(1)
        assert (await r.reload_if_changed()).ok and [c.name for c in running["spec"].checks] == ["y"]
        assert await r.reload_if_changed() is None and len(reads) == 3
        path.write_text(text.format(n="z"))
        clock.now = time.time()  # just written: read at every poll until its times are settled
        assert (await r.reload_if_changed()).ok and await r.reload_if_changed() is None
        assert len(reads) == 5 and [c.name for c in running["spec"].checks] == ["z"]

    asyncio.run(main())
