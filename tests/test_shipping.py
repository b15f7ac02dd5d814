"""What ships beside the code: the image recipe, deployment examples, the dashboard, the
pre-commit hook and the generated config reference, checked for what can be checked without a
container engine (the real build is scripts/container-smoke.sh)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

from pulse_agent.config import load_config, parse_config
from pulse_agent.config.reference import render_reference
from pulse_agent.config.schema import schema_text
from pulse_agent.result import Result
from pulse_agent.web.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PULSE_API_TOKEN": "t" * 24, "SLACK_URL": "slack://T000/B000/XXXX"}


def test_the_config_reference_is_generated_from_the_current_schema():
    expected = render_reference(json.loads(schema_text()))
    assert (ROOT / "docs" / "config.md").read_text() == expected, "run: pulse-agent schema --markdown > docs/config.md"


def test_every_key_of_the_schema_has_a_title_a_description_and_leaves_have_examples():
    schema = json.loads(schema_text())
    defs = schema["$defs"]
    assert schema["$id"].endswith("pulse.schema.json")

    def resolved(prop):
        ref = prop.get("$ref")
        return {**defs[ref.rsplit("/", 1)[-1]], **prop} if ref and ref.count("/") == 2 else prop

    missing = []

    def walk(node, path):
        for key, prop in (node.get("properties") or {}).items():
            full = resolved(prop)
            lacks = [k for k in ("title", "description") if k not in full]
            leaf = full.get("type") != "object" and "properties" not in full and "items" not in full
            if leaf and "examples" not in full and full.get("type") != "boolean" and "enum" not in full and "const" not in full:
                lacks.append("examples")
            if lacks:
                missing.append((f"{path}.{key}", lacks))
            walk(full, f"{path}.{key}")

    for name, definition in defs.items():
        walk(definition, name)
        if isinstance(definition.get("items"), dict):
            walk(definition["items"], f"{name}[]")
    walk(schema, "")
    assert missing == []


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_kubernetes_sidecar_example(tmp_path):
    docs = {d["kind"]: d for d in documents(ROOT / "examples" / "kubernetes" / "pulse-sidecar.yaml")}
    pod = docs["Deployment"]["spec"]["template"]
    [sidecar] = pod["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9108"
    assert [p["containerPort"] for p in sidecar["ports"]] == [9108]
    assert (sidecar["livenessProbe"]["httpGet"], sidecar["readinessProbe"]["httpGet"]) == (
        {"path": "/healthz", "port": 9108},
        {"path": "/readyz", "port": 9108},
    )
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    assert env["PULSE_CONFIG"] == mounts["pulse-config"]  # the ConfigMap is mounted as a directory: updates arrive
    assert {v["name"]: v.get("configMap", {}).get("name") for v in pod["spec"]["volumes"]}["pulse-config"] == "pulse-config"
    assert sidecar["envFrom"] == [{"secretRef": {"name": "pulse-secrets"}}]
    conf = tmp_path / "conf.d"
    conf.mkdir()
    for key, text in docs["ConfigMap"]["data"].items():
        (conf / key).write_text(text)
    spec = load_config(conf, env=ENV)
    assert spec.agent.listen == "0.0.0.0:9108" and spec.agent.database.startswith(mounts["pulse-data"] + "/")
    assert spec.agent.api_token == ENV["PULSE_API_TOKEN"]
    assert all(c.url.startswith("http://127.0.0.1:8080/") for c in spec.checks)  # the app's port in the pod
    assert [p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]] == [8080]


def test_the_compose_example():
    here = ROOT / "examples" / "compose"
    services = yaml.safe_load((here / "docker-compose.yaml").read_text())["services"]
    pulse = services["pulse"]
    assert (here / pulse["build"] / "Dockerfile").is_file()
    assert f"./pulse.yaml:{pulse['environment']['PULSE_CONFIG']}:ro" in pulse["volumes"]
    spec = parse_config((here / "pulse.yaml").read_text(), "pulse.yaml", {"PULSE_API_TOKEN": pulse["environment"]["PULSE_API_TOKEN"]})
    port = spec.agent.listen.rsplit(":", 1)[1]
    assert f"{port}:{port}" in pulse["ports"]
    scrape = yaml.safe_load((here / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == [f"pulse:{port}"]
    assert all(c.url.startswith("http://app:80/") for c in spec.checks) and "app" in services


def test_the_dashboard_uses_only_metrics_the_agent_exports():
    m = Metrics()
    m.set_checks(["a"])
    m.observe(Result("a", 0.0, False, status_code=503, response_time_ms=5.0, error_kind="status", dns_ms=1.0, connect_ms=1.0,
                     tls_ms=1.0, first_byte_ms=4.0, cert_expires=1.0))  # every series a run can export  # fmt: skip
    m.notification("ops", "delivered")
    exported = set(re.findall(r"^(pulse_[a-z_]+)", m.render().decode(), re.MULTILINE))
    dashboard = json.loads((ROOT / "examples" / "grafana" / "pulse-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"pulse_[a-z_]+", e)}
    assert used and used <= exported, used - exported
    for needed in ("pulse_check_up", "pulse_check_duration_seconds", "pulse_check_failures_total", "pulse_scheduler_lag_seconds_bucket",
                   "pulse_notification_queue_depth"):  # fmt: skip
        assert needed in used


def test_the_dockerfile_is_slim_non_root_and_signal_clean():
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.12-slim" in text
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert "EXPOSE 9108" in text and 'VOLUME ["/var/lib/pulse"]' in text
    assert 'CMD ["pulse-agent", "healthcheck"]' in text  # no curl in the image
    assert 'ENTRYPOINT ["pulse-agent"]' in text  # exec form: the agent is PID 1 and gets SIGTERM
    assert "PULSE_CONFIG=/etc/pulse/pulse.yaml" in text and "PULSE_DATABASE=/var/lib/pulse/" in text
    assert "-c constraints.txt" in text
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for item in source.split():
            assert (ROOT / item).exists(), item
            assert f"!{item}" in ignore or f"!{item}/" in ignore, f"{item} is excluded from the build context"


def test_constraints_pin_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line} is not pinned"
            pins[norm(name)] = version
    for requirement in project["dependencies"]:
        name = norm(re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0])
        assert name in pins, f"{name} is not in constraints.txt"


def test_the_pre_commit_hook_runs_validate_on_pulse_yaml(tmp_path):
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"] == "pulse-agent validate" and hook["pass_filenames"] is True
    assert re.search(hook["files"], "deploy/pulse.yaml") and re.search(hook["files"], "pulse.yml")
    assert not re.search(hook["files"], "other.yaml")


def test_shipped_configs_pass_the_schema_as_editors_and_check_jsonschema_see_them():
    # Unexpanded: ${VAR} values are still text, so patterned keys must accept them.
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(schema_text()))
    files = [ROOT / "pulse.yaml", *sorted((ROOT / "examples").glob("*.yaml")), ROOT / "examples" / "compose" / "pulse.yaml"]
    configmap = next(d for d in documents(ROOT / "examples" / "kubernetes" / "pulse-sidecar.yaml") if d["kind"] == "ConfigMap")
    raws = [(str(f), yaml.safe_load(f.read_text())) for f in files] + [(k, yaml.safe_load(v)) for k, v in configmap["data"].items()]
    for name, raw in raws:
        assert [e.message for e in validator.iter_errors(raw)] == [], name
