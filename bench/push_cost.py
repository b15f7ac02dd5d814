"""Cost of one push ping next to one HTTP probe, in the same pulse-agent process: wrk drives
`/push/job?token=...` (each ping a stored result and a push_state write) and then `/probe` against a
local nginx (an HTTP run, fresh connection), and the agent's CPU milliseconds per request of each are
printed with their ratio. Traffic only to 127.0.0.1; bounded runs.

    python bench/push_cost.py [--seconds 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from probe_cost import cpu_seconds  # noqa: E402 (found through sys.path above)
from run import wrk  # noqa: E402
from target import free_port, nginx_target, wait_for_port  # noqa: E402

TOKEN = "bench-push-token-0123456789"
CONFIG = """
version: 1
agent: {{listen: '127.0.0.1:{port}', log_level: warning, database: '{db}', workers: 0}}
modules:
  http_2xx: {{timeout: 5s, expect: {{status: 200}}, allowed_targets: ['127.0.0.1']}}
checks:
  - name: job
    schedule: 1h
    push: {{grace: 1h, token: '{token}'}}
"""


def per_request(pid: int, url: str, seconds: float, connections: int) -> dict[str, float]:
    """Requests/s under wrk and the agent's CPU ms per request."""
    wrk(url, 2, connections)  # warm up
    before = cpu_seconds(pid)
    rate = wrk(url, seconds, connections)
    used = cpu_seconds(pid) - before
    return {"per_s": round(rate), "cpu_ms": round(used * 1000 / (rate * seconds), 3), "cpu_cores_busy": round(used / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    port = free_port()
    out: dict[str, object] = {"seconds": args.seconds, "connections": args.connections}
    with tempfile.TemporaryDirectory() as d, nginx_target() as target:
        cfg = Path(d) / "pulse.yaml"
        cfg.write_text(CONFIG.format(port=port, db=Path(d) / "p.duckdb", token=TOKEN))
        proc = subprocess.Popen([sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg)], stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, "pulse-agent", timeout=30)
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{base}/push/job?token={TOKEN}", timeout=10).text == "OK\n"
            out["push_ping"] = per_request(proc.pid, f"{base}/push/job?token={TOKEN}", args.seconds, args.connections)
            probe = f"{base}/probe?module=http_2xx&target={target}/"
            assert "probe_success 1" in httpx.get(probe, timeout=10).text
            out["http_probe"] = per_request(proc.pid, probe, args.seconds, args.connections)
        finally:
            proc.terminate()
            proc.wait(30)
    push, http = out["push_ping"], out["http_probe"]
    assert isinstance(push, dict) and isinstance(http, dict)
    out["cpu_per_ping_vs_http_probe"] = round(push["cpu_ms"] / http["cpu_ms"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
