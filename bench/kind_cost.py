"""CPU per run of each kind of check on this machine, in the same minute: HTTP on a local nginx, DNS on a
local dnsmasq (an A record), ICMP to 127.0.0.1 (one echo request a run). Rounds alternate between the
kinds so that the machine's load falls on all alike. Traffic only to 127.0.0.1; bounded runs. Prints CPU ms
per run of this process (the prober's side only: nginx, dnsmasq and the kernel answer in other processes)
and each kind's ratio to HTTP.

    python bench/kind_cost.py [--runs 2000] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from stream_cost import cpu_ms_per_run  # noqa: E402 (found through sys.path above)
from target import ensure_debian_package, nginx_target  # noqa: E402

from pulse_agent.config import parse_config  # noqa: E402
from pulse_agent.config.model import CheckSpec  # noqa: E402
from pulse_agent.loop import event_loop_factory  # noqa: E402


def specs(http_base: str, dns_port: int) -> dict[str, CheckSpec]:
    """One check of each kind, built as the agent builds them."""
    text = f"""version: 1
checks:
  - {{name: http, url: '{http_base}/', timeout: 5s}}
  - {{name: dns, url: 'dns://127.0.0.1:{dns_port}', dns: {{name: www.pulse.test}}, timeout: 5s,
     expect: {{answer: {{contains: [192.0.2.10]}}}}}}
  - {{name: icmp, url: 'icmp://127.0.0.1', icmp: {{count: 1}}, timeout: 5s, expect: {{max_packet_loss: 0}}}}
"""
    return {c.name: c for c in parse_config(text, "bench.yaml", {}).checks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    ensure_debian_package("dnsmasq", "dnsmasq")
    from tests.dns_servers import dnsmasq  # the test suite's dnsmasq with its records

    samples: dict[str, list[tuple[float, float]]] = {"http": [], "dns": [], "icmp": []}
    factory = event_loop_factory()
    with nginx_target() as base, dnsmasq() as port:
        checks = specs(base, port)
        for _ in range(args.rounds):
            for kind in samples:
                with asyncio.Runner(loop_factory=factory) as runner:
                    samples[kind].append(runner.run(cpu_ms_per_run(checks[kind], args.runs, args.concurrency)))
    out: dict[str, object] = {
        kind: {
            "cpu_ms_per_run": round(statistics.median(s[0] for s in runs), 4),
            "runs_per_s": round(statistics.median(s[1] for s in runs)),
            "rounds": [round(s[0], 4) for s in runs],
        }
        for kind, runs in samples.items()
    }
    http = statistics.median(s[0] for s in samples["http"])
    out["over_http"] = {kind: round(statistics.median(s[0] for s in samples[kind]) / http, 2) for kind in ("dns", "icmp")}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
