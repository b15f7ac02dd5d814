"""CPU per run of tcp:// and tls:// checks next to HTTP's, on the same local nginx (plain and TLS ports,
certificate from a trustme CA), fresh connection per run in every kind. Rounds alternate between the
kinds so that the machine's load falls on all alike. Traffic only to 127.0.0.1; bounded runs. Prints CPU
ms per run of this process, runs/s, and each kind's ratio to an http:// GET.

    python bench/stream_cost.py [--runs 2000] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from target import ensure_debian_package, free_port, wait_for_port  # noqa: E402 (found through sys.path above)

from pulse_agent.config import parse_config  # noqa: E402
from pulse_agent.config.model import CheckSpec  # noqa: E402
from pulse_agent.probe.kinds import Probes  # noqa: E402

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{plain} backlog=8192;
        listen 127.0.0.1:{secure} ssl backlog=8192;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 'ok'; }}
    }}
}}
"""

KINDS = {  # name -> the check, {plain}/{secure} ports and {ca} filled in
    "http GET": "url: http://127.0.0.1:{plain}/",
    "https GET": "url: https://localhost:{secure}/\nca_file: {ca}",
    "tcp connect": "url: tcp://127.0.0.1:{plain}",
    "tcp send+receive": 'url: tcp://127.0.0.1:{plain}\nsend: "GET / HTTP/1.0\\r\\n\\r\\n"\nexpect: {{receive: " 200 "}}',
    "tls handshake": "url: tls://localhost:{secure}\nca_file: {ca}\nexpect: {{certificate_valid_for: 1d}}",
}


@contextmanager
def nginx_tls_target() -> Iterator[tuple[int, int, str]]:
    """nginx answering 200 'ok' on a plain and a TLS port of 127.0.0.1: (plain, secure, CA file)."""
    nginx = ensure_debian_package("nginx", "nginx-light")
    plain, secure = free_port(), free_port()
    with tempfile.TemporaryDirectory() as d:
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost")
        leaf.cert_chain_pems[0].write_to_path(f"{d}/cert.pem")
        leaf.private_key_pem.write_to_path(f"{d}/key.pem")
        ca.cert_pem.write_to_path(f"{d}/ca.pem")
        (Path(d) / "nginx.conf").write_text(NGINX_CONF.format(dir=d, plain=plain, secure=secure))
        proc = subprocess.Popen([nginx, "-c", f"{d}/nginx.conf", "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        try:
            wait_for_port(secure, "nginx")
            yield plain, secure, f"{d}/ca.pem"
        finally:
            proc.terminate()
            proc.wait(10)


async def cpu_ms_per_run(spec: CheckSpec, runs: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms per run of this process, runs/s) for `runs` runs, `concurrency` at a time."""
    probes = Probes()
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one() -> None:
        async with gate:
            result = await probes.run(spec)
            if not result.ok:
                failures.append(f"{result.error_kind}: {result.error}")

    try:
        await asyncio.gather(*(one() for _ in range(50)))  # warm-up: imports, contexts
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(runs)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await probes.close()
    if failures:
        raise RuntimeError(f"{len(failures)} runs failed, e.g. {failures[0]}")
    return cpu / runs * 1000, runs / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
    with nginx_tls_target() as (plain, secure, ca):
        specs = {}
        for name, check in KINDS.items():
            settings = textwrap.indent(check.format(plain=plain, secure=secure, ca=ca), "    ")
            specs[name] = parse_config(f"version: 1\nchecks:\n  - name: bench\n    timeout: 5s\n{settings}\n", "bench.yaml").checks[0]
        for _ in range(args.rounds):
            for name, spec in specs.items():
                samples[name].append(asyncio.run(cpu_ms_per_run(spec, args.runs, args.concurrency)))
    http = statistics.median(s[0] for s in samples["http GET"])
    out = {
        name: {
            "cpu_ms_per_run": round(statistics.median(s[0] for s in runs), 4),
            "runs_per_s": round(statistics.median(s[1] for s in runs)),
            "over_http_get": round(statistics.median(s[0] for s in runs) / http, 2),
            "rounds": [round(s[0], 4) for s in runs],
        }
        for name, runs in samples.items()
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
