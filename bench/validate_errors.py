"""`validate` time against the number of errors: N invalid checks (two errors each), for growing N.
Linear means the time per error stays flat. Not a test: figures go to docs/performance.md.

    python bench/validate_errors.py [--sizes 1000,4000,8000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def invalid_config(n: int) -> str:
    lines = ["version: 1", "checks:"]
    lines += [f"  - {{name: c{i}, url: 'http://127.0.0.1/', timeout: -{i}, expect: {{status: 999}}}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,4000,8000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for n in (int(s) for s in args.sizes.split(",")):
            cfg = Path(tmp) / f"invalid-{n}.yaml"
            cfg.write_text(invalid_config(n))
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "pulse_agent", "validate", "-c", str(cfg)], capture_output=True, text=True)
            seconds = time.perf_counter() - started
            errors = len(done.stderr.splitlines()) - 1
            rows.append((n, errors, seconds))
            print(f"{n:>6} checks  {errors:>6} errors  {seconds:6.2f} s  {seconds / errors * 1e6:7.0f} us per error", flush=True)
        first, last = rows[0], rows[-1]
        print(f"time per error, largest / smallest: {(last[2] / last[1]) / (first[2] / first[1]):.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
