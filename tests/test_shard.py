"""Sharding: every check in exactly one shard, stable, spread evenly; the agent runs only its own."""

import pytest

from pulse_agent.agent import Agent, RunOptions
from pulse_agent.config import parse_config
from pulse_agent.shard import Shard, owned
from tests.conftest import run_cli

NAMES = [f"check-{i}" for i in range(3000)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_shards_partition_the_checks(n):
    owners = [[k for k in range(1, n + 1) if Shard(k, n).owns(name)] for name in NAMES]
    assert all(len(o) == 1 for o in owners)  # exactly one shard each
    sizes = [sum(1 for o in owners if o == [k]) for k in range(1, n + 1)]
    assert max(sizes) - min(sizes) < 0.1 * len(NAMES) / n + 30  # and roughly even
    assert owners == [[k for k in range(1, n + 1) if Shard(k, n).owns(name)] for name in NAMES]  # stable


def test_the_workers_split_of_a_shard_is_independent_of_the_shard_split():
    """One name hash for phases and splits; splits mix it, so names of one length do not all land in one
    worker of a shard (CRC-32 alone is linear: salted and unsalted values would differ by a constant)."""
    from collections import Counter

    from pulse_agent.names import name_hash, spread
    from pulse_agent.workers import worker_of

    names = [f"check-{i:04d}" for i in range(4000)]  # one length
    cells = Counter((Shard(2, 2).owns(n), worker_of(n, 2)) for n in names)
    assert len(cells) == 4 and min(cells.values()) > 4000 / 4 * 0.85
    assert spread("api-health") == name_hash("api-health") / 2**32 == 0.20255503454245627  # interval phases as they always were


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "2/0", " 1/2/3"])
def test_bad_shards_say_what_to_write(text):
    with pytest.raises(ValueError, match=r"write K/N with 1 <= K <= N, e\.g\. 2/4"):
        Shard.parse(text)


def config(extra: str = "") -> str:
    checks = "".join(f"  - {{name: c{i}, url: 'http://127.0.0.1:1/'}}\n" for i in range(12))
    return f"version: 1\nagent: {{listen: '127.0.0.1:0'{extra}}}\nchecks:\n{checks}"


def test_the_agent_runs_only_its_shard_and_labels_the_count():
    spec = parse_config(config(", shard: '2/3'"), "p.yaml", {})
    agent = Agent(spec, RunOptions())
    mine = [c.name for c in agent.spec.checks]
    assert mine == [c.name for c in owned(spec, Shard(2, 3)).checks] and 0 < len(mine) < 12
    override = Agent(spec, RunOptions(shard="1/1"))  # --shard / PULSE_SHARD win over agent.shard
    assert len(override.spec.checks) == 12
    agent.metrics.set_checks(mine)
    assert f'pulse_checks_configured{{shard="2/3"}} {float(len(mine))}' in agent.metrics.render().decode()


def test_validate_shows_what_a_shard_owns(tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config())
    spec = parse_config(config(), "p.yaml", {})
    lines = [run_cli("validate", "-c", str(cfg), "--shard", f"{k}/3").stdout.splitlines()[1] for k in (1, 2, 3)]
    owned_names = [line.split(": ", 1)[1].split(", ") for line in lines]
    assert sorted(name for names in owned_names for name in names) == sorted(c.name for c in spec.checks)
    assert lines[0].startswith("shard 1/3 runs ") and "of 12 checks: " in lines[0]
    bad = run_cli("run", "-c", str(cfg), "--shard", "4/3")
    assert bad.returncode == 1 and "write K/N" in bad.stderr
