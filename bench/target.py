"""A fast local HTTP target for benchmarks: nginx on 127.0.0.1 (installed from Debian when missing)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port} backlog=8192;
        location / {{ return 200 'ok'; }}
        # Fails in odd minutes, recovers in even ones: checks that open and resolve incidents.
        location /flaky/ {{ if ($odd_minute) {{ return 500 'down'; }} return 200 'ok'; }}
    }}
    map $time_iso8601 $odd_minute {{ "~T[0-9][0-9]:[0-9][13579]:" 1; default 0; }}
}}
"""


def ensure_debian_package(binary: str, package: str) -> str:
    """Path of binary, installing its Debian package when missing."""
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if path:
        return path
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, capture_output=True)
    path = shutil.which(binary) or f"/usr/sbin/{binary}"
    if not Path(path).exists():
        raise RuntimeError(f"{binary} not found after installing {package}")
    return path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, what: str, timeout: float = 10.0) -> None:
    """Return once something accepts connections on 127.0.0.1:port; RuntimeError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start listening on port {port}") from None
            time.sleep(0.05)


@contextmanager
def nginx_target() -> Iterator[str]:
    """nginx answering 200 'ok' on 127.0.0.1; yields its base URL."""
    nginx = ensure_debian_package("nginx", "nginx-light")
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        conf = Path(d) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=d, port=port))
        proc = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, "nginx")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


BLACKBOX_CONFIG = """
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http: {method: GET, valid_status_codes: [200]}
"""


@contextmanager
def blackbox_exporter() -> Iterator[tuple[int, int]]:
    """prometheus-blackbox-exporter with an http_2xx module: (pid, port)."""
    binary = ensure_debian_package("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "blackbox.yml"
        cfg.write_text(BLACKBOX_CONFIG)
        proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, "blackbox_exporter")
            yield proc.pid, port
        finally:
            proc.terminate()
            proc.wait(10)
