"""A fleet on Kubernetes: the StatefulSet example's facts (shard from the pod ordinal, scheduled
exports to a shared volume, a fleet report over them, Prometheus scraping every replica), and the
ordinal-to-shard mapping for N = 1..7 (every check owned by exactly one replica)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pulse_agent.config import load_config
from pulse_agent.shard import Shard, pod_ordinal, resolve
from tests.conftest import require_binary, run_cli

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "examples" / "kubernetes"
ENV = {"PULSE_API_TOKEN": "t" * 24, "SLACK_URL": "slack://T000/B000/XXXX"}
NAMES = [f"check-{i}" for i in range(1000)]


@pytest.mark.parametrize("n", range(1, 8))
def test_each_replica_of_n_takes_its_shard_from_its_ordinal_and_every_check_has_one_owner(n):
    shards = [Shard.parse(resolve(f"ordinal/{n}", {"POD_NAME": f"pulse-agent-{k}"})) for k in range(n)]
    assert [str(s) for s in shards] == [f"{k + 1}/{n}" for k in range(n)]
    owners = [[k for k, s in enumerate(shards) if s.owns(name)] for name in NAMES]
    assert all(len(o) == 1 for o in owners)  # exactly one replica runs each check
    assert {o[0] for o in owners} == set(range(n))  # and every replica has work


def test_where_the_ordinal_comes_from():
    assert pod_ordinal({"PULSE_POD_ORDINAL": "4", "POD_NAME": "pulse-agent-1"}) == 4  # the pod-index label wins
    assert pod_ordinal({"POD_NAME": "my-fleet-eu-12"}) == 12
    assert pod_ordinal({"HOSTNAME": "pulse-agent-3"}) == 3  # a StatefulSet pod's host name is its name
    assert resolve("2/4", {}) == "2/4" and resolve("${X}", {}) == "${X}"  # other forms pass through
    with pytest.raises(ValueError, match="set N to the StatefulSet's replicas"):
        resolve("ordinal/3", {"POD_NAME": "pulse-agent-3"})
    with pytest.raises(ValueError, match="needs the pod's ordinal"):
        resolve("ordinal/3", {"HOSTNAME": "laptop"})
    with pytest.raises(ValueError, match="is not a pod ordinal"):
        resolve("ordinal/3", {"PULSE_POD_ORDINAL": "two"})


def test_the_agent_reads_the_ordinal_at_start(tmp_path):
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text("version: 1\nchecks:\n" + "".join(f"  - {{name: c{i}, url: 'http://127.0.0.1:1/'}}\n" for i in range(12)))
    owned = [run_cli("validate", "-c", str(cfg), "--shard", "ordinal/3", env={"POD_NAME": f"pulse-agent-{k}"}) for k in range(3)]
    names = [set(re.findall(r"c\d+", p.stdout.splitlines()[1].split(":", 1)[1])) for p in owned]
    assert [p.stdout.splitlines()[1].split()[1] for p in owned] == ["1/3", "2/3", "3/3"]
    assert set().union(*names) == {f"c{i}" for i in range(12)} and sum(map(len, names)) == 12
    wrong = run_cli("run", "-c", str(cfg), "--shard", "ordinal/3", "--listen", "127.0.0.1:0", env={"POD_NAME": "pulse-agent-5"})
    assert wrong.returncode == 1 and "pod ordinal 5 has no shard of 'ordinal/3'" in wrong.stderr and "Traceback" not in wrong.stderr


def fleet_docs() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all((HERE / "pulse-fleet.yaml").read_text()) if d}


def test_the_statefulset_example(tmp_path):
    docs = fleet_docs()
    sts = docs["StatefulSet"]
    pod = sts["spec"]["template"]
    agent, exporter = pod["spec"]["containers"]
    env = {e["name"]: e for e in agent["env"]}
    replicas = sts["spec"]["replicas"]
    # The shard: ordinal/N with N = replicas, the ordinal from the pod's own name.
    assert env["PULSE_SHARD"]["value"] == f"ordinal/{replicas}"
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    pods = [f"{sts['metadata']['name']}-{k}" for k in range(replicas)]  # how a StatefulSet names its pods
    conf = tmp_path / "conf.d"
    conf.mkdir()
    for key, text in docs["ConfigMap"]["data"].items():
        (conf / key).write_text(text)
    spec = load_config(conf, env=ENV)
    shards = [Shard.parse(resolve(env["PULSE_SHARD"]["value"], {"POD_NAME": p})) for p in pods]
    owners = {c.name: [k for k, s in enumerate(shards) if s.owns(c.name)] for c in spec.checks}
    assert all(len(o) == 1 for o in owners.values())  # each check of the example runs on exactly one replica
    # Its own database per replica; the agent and the exporter see the same file (the lock tells the exporter to ask the agent).
    mounts = {c["name"]: {m["name"]: m["mountPath"] for m in c["volumeMounts"]} for c in (agent, exporter)}
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    assert spec.agent.database.startswith(mounts["agent"]["data"] + "/") and mounts["exporter"]["data"] == mounts["agent"]["data"]
    assert spec.agent.listen == "0.0.0.0:9108" and spec.agent.api_token == ENV["PULSE_API_TOKEN"]
    assert exporter["envFrom"] == agent["envFrom"] == [{"secretRef": {"name": "pulse-secrets"}}]  # the API token
    # Scheduled exports into the shared volume, named by replica.
    script = exporter["args"][0]
    out = re.search(r"pulse-agent export --out (\S+) --since (\S+) --agent-name \"\$POD_NAME\"", script)
    assert out and out.group(1) == mounts["agent"]["exports"] and re.search(r"sleep (\d+)", script)
    assert int(re.search(r"sleep (\d+)", script).group(1)) < 86400 <= 2 * 86400  # --since 2d covers a missed run
    assert out.group(2) == "2d"
    assert spec.agent.export_dir == out.group(1)  # the agent's export API writes only there (else 403)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    claim = volumes["exports"]["persistentVolumeClaim"]["claimName"]
    assert docs["PersistentVolumeClaim"]["metadata"]["name"] == claim and docs["PersistentVolumeClaim"]["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
    # The fleet report reads every replica's exports from the same claim.
    job = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [report] = job["containers"]
    job_mounts = {m["name"]: m["mountPath"] for m in report["volumeMounts"]}
    assert {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in job["volumes"]}["exports"] == claim
    glob = report["args"][report["args"].index("--from-parquet") + 1]
    assert report["args"][0] == "report" and glob == f"{job_mounts['exports']}/**/*.parquet"
    # Prometheus: every replica annotated and behind the headless service.
    svc = docs["Service"]["spec"]
    assert svc["clusterIP"] == "None" and svc["selector"] == pod["metadata"]["labels"] and svc["ports"][0]["port"] == 9108
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9108" and [p["containerPort"] for p in agent["ports"]] == [9108]


def test_prometheus_scrapes_every_replica(tmp_path):
    promtool = require_binary("promtool", "prometheus")
    cfg = HERE / "prometheus-fleet.yml"
    proc = subprocess.run([promtool, "check", "config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [job] = yaml.safe_load(cfg.read_text())["scrape_configs"]
    docs = fleet_docs()
    [sd] = job["dns_sd_configs"]  # the headless service: one A record, so one target, per replica
    service = docs["Service"]
    assert service["spec"]["clusterIP"] == "None" and sd["type"] == "A"
    assert sd["names"] == [f"{service['metadata']['name']}.default.svc.cluster.local"] and sd["port"] == service["spec"]["ports"][0]["port"]
    assert docs["StatefulSet"]["spec"]["serviceName"] == service["metadata"]["name"]
    assert job["metrics_path"] == docs["StatefulSet"]["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
