"""Cost of one /probe: pulse-agent against prometheus-blackbox-exporter, same local nginx target, same
load (wrk on /probe, fresh connection per probe in both). Prints probes/s and CPU milliseconds per
probe of each exporter process, and the ratios. Traffic only to 127.0.0.1; bounded runs.

    python bench/probe_cost.py [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import wrk  # noqa: E402 (found through sys.path above)
from target import blackbox_exporter, free_port, nginx_target, wait_for_port  # noqa: E402

PULSE_CONFIG = """
version: 1
agent: {{listen: '127.0.0.1:{port}', log_level: warning, database: '{db}'}}
modules:
  http_2xx: {{timeout: 5s, expect: {{status: 200}}, allowed_targets: ['127.0.0.1']}}
checks: []
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def pulse_agent() -> Iterator[tuple[int, int]]:
    """pulse-agent with an http_2xx module and no checks: (pid, port)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "pulse.yaml"
        cfg.write_text(PULSE_CONFIG.format(port=port, db=Path(d) / "p.duckdb"))
        proc = subprocess.Popen([sys.executable, "-m", "pulse_agent", "run", "-c", str(cfg)], stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, "pulse-agent", timeout=30)
            yield proc.pid, port
        finally:
            proc.terminate()
            proc.wait(30)


def measure(exporter: Callable[[], object], target: str, seconds: float, connections: int) -> dict[str, float]:
    """probes/s under wrk and CPU ms per probe of the exporter process."""
    with exporter() as (pid, port):  # type: ignore[attr-defined]
        probe = f"http://127.0.0.1:{port}/probe?module=http_2xx&target={target}/"
        answer = httpx.get(probe, timeout=10).text
        assert "probe_success 1" in answer, answer
        wrk(probe, 2, connections)  # warm up
        before = cpu_seconds(pid)
        rate = wrk(probe, seconds, connections)
        used = cpu_seconds(pid) - before
    per_probe = round(used * 1000 / (rate * seconds), 3)
    return {"probes_per_s": round(rate), "cpu_ms_per_probe": per_probe, "cpu_cores_busy": round(used / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    out: dict[str, object] = {"seconds": args.seconds, "connections": args.connections}
    with nginx_target() as target:
        out["blackbox_exporter"] = measure(blackbox_exporter, target, args.seconds, args.connections)
        print(json.dumps(out), flush=True)
        out["pulse_agent"] = measure(pulse_agent, target, args.seconds, args.connections)
    bb, pa = out["blackbox_exporter"], out["pulse_agent"]
    assert isinstance(bb, dict) and isinstance(pa, dict)
    out["cpu_per_probe_pulse_vs_blackbox"] = round(pa["cpu_ms_per_probe"] / bb["cpu_ms_per_probe"], 2)
    out["rate_pulse_vs_blackbox"] = round(pa["probes_per_s"] / bb["probes_per_s"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
