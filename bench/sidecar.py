"""The sidecar: a small config run as `pulse-agent run` for N minutes; RSS (anonymous and file-backed)
and CPU sampled from /proc, DuckDB's own memory asked through the agent's report API at the end.

    python bench/sidecar.py [--minutes 10] [--config bundled|kubernetes] [--outage 60:120]

`bundled` is the repository's pulse.yaml (the agent checks its own /healthz and /metrics);
`kubernetes` is the ConfigMap of examples/kubernetes/pulse-sidecar.yaml against a local app on
127.0.0.1 (its Slack notifier replaced by a local JSON receiver), optionally failing during
`--outage START:END` seconds so alerts are opened, delivered and resolved. CPU is the agent's own
CPU time over wall time after the warm-up: other work on the machine does not add to it, but a
loaded machine makes every instruction slower, so say so next to the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from target import free_port, wait_for_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
TOKEN = "bench-sidecar-token"


def proc_sample(pid: int) -> dict[str, float]:
    """RSS (whole, anonymous, file-backed) in MB, CPU seconds and threads of pid, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()

    def kb(key: str) -> float:
        found = re.search(rf"^{key}:\s+(\d+)", status, re.M)
        return int(found.group(1)) / 1024 if found else 0.0

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return {
        "rss_mb": round(kb("VmRSS"), 1),
        "anon_mb": round(kb("RssAnon"), 1),
        "file_mb": round(kb("RssFile"), 1),
        "cpu_s": (int(fields[11]) + int(fields[12])) / TICKS,
        "threads": int(kb("Threads") * 1024),
    }


class App(BaseHTTPRequestHandler):
    """The app the kubernetes config checks: 200, or 500 while `failing` is set."""

    failing: ClassVar[threading.Event] = threading.Event()
    received: ClassVar[list[str]] = []  # notifications posted to /hook

    def do_GET(self) -> None:
        code = 500 if App.failing.is_set() else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"no")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        App.received.append(json.loads(body or b"{}").get("title", ""))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def kubernetes_config(directory: Path, app_port: int) -> None:
    """The sidecar example's ConfigMap as a config directory, checking the local app."""
    docs = yaml.safe_load_all((ROOT / "examples" / "kubernetes" / "pulse-sidecar.yaml").read_text())
    config_map = next(d for d in docs if d and d.get("kind") == "ConfigMap")
    for name, text in config_map["data"].items():
        (directory / name).write_text(text.replace("127.0.0.1:8080", f"127.0.0.1:{app_port}"))


def duckdb_memory(base: str) -> dict[str, object]:
    """DuckDB's memory by tag and its settings, asked of the running agent (the report API's SQL)."""

    def ask(sql: str) -> list[list[object]]:
        now = time.time()
        body = {"start": now - 3600, "end": now, "sql": sql}
        answer = httpx.post(base + "/api/v1/report", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        answer.raise_for_status()
        return [list(row.values()) for row in answer.json()["rows"]]  # rows are objects by column

    tags = ask("SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0 ORDER BY 2 DESC")
    [settings] = ask("SELECT current_setting('threads'), current_setting('memory_limit')")
    return {"by_tag_kb": {str(t): round(int(str(b)) / 1024) for t, b in tags}, "threads": settings[0], "memory_limit": settings[1]}


def run(config: str, minutes: float, every: float, outage: tuple[float, float] | None) -> dict[str, object]:
    port = free_port()
    app = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PULSE_API_TOKEN": TOKEN, "PULSE_DATABASE": f"{d}/pulse.duckdb"}
        if config == "bundled":
            cfg = ROOT / "pulse.yaml"
        else:
            cfg = Path(d) / "conf.d"
            cfg.mkdir()
            kubernetes_config(cfg, app.server_port)
            (Path(d) / "data").mkdir()
            env["SLACK_URL"] = f"json://127.0.0.1:{app.server_port}/hook"
        args = [sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg), "--listen", f"127.0.0.1:{port}"]
        if config != "bundled":
            args += ["--db", f"{d}/data/pulse.duckdb"]
        agent = subprocess.Popen(args, env=env, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, "agent", 60)
            start = time.monotonic()
            samples = []
            deadline = start + minutes * 60
            while True:
                t = time.monotonic() - start
                if outage is not None:
                    (App.failing.set if outage[0] <= t < outage[1] else App.failing.clear)()
                samples.append({"t": round(t, 1), **proc_sample(agent.pid)})
                if t >= minutes * 60:
                    break
                time.sleep(min(every, max(0.0, deadline - time.monotonic())))
            memory = duckdb_memory(f"http://127.0.0.1:{port}")
        finally:
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(60)
            app.shutdown()
    warm = min(60.0, minutes * 60 / 3)  # start-up and the first scrape settle before CPU is counted
    first = next(s for s in samples if s["t"] >= warm)
    last = samples[-1]
    cpu = (last["cpu_s"] - first["cpu_s"]) / max(1e-9, last["t"] - first["t"]) * 100
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": config,
        "minutes": minutes,
        "load_average": os.getloadavg(),
        "rss_mb_end": last["rss_mb"],
        "rss_anon_mb_end": last["anon_mb"],
        "rss_file_mb_end": last["file_mb"],
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "rss_mb_at_1min": next((s["rss_mb"] for s in samples if s["t"] >= 60), None),
        "cpu_percent_after_warmup": round(cpu, 3),
        "cpu_seconds_total": round(last["cpu_s"], 2),
        "threads_end": last["threads"],
        "duckdb": memory,
        "notifications_received": list(App.received),
        "exit_code": code,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--config", choices=["bundled", "kubernetes"], default="bundled")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--outage", help="START:END seconds during which the kubernetes config's app answers 500")
    parser.add_argument("--samples", action="store_true", help="print every sample, not only the summary")
    args = parser.parse_args()
    outage = tuple(float(x) for x in args.outage.split(":")) if args.outage else None
    out = run(args.config, args.minutes, args.every, outage)  # type: ignore[arg-type]
    if not args.samples:
        out.pop("samples")
    print(json.dumps(out, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"sidecar-{args.config}.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
