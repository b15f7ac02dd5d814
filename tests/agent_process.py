"""pulse-agent run as a real subprocess, for end-to-end tests."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ENTRY_POINT = Path(sys.executable).parent / "pulse-agent"


class AgentProcess:
    """pulse-agent run in a subprocess, its JSON log lines collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, preexec_fn=None) -> None:
        command = [str(ENTRY_POINT)] if ENTRY_POINT.exists() else [sys.executable, "-m", "pulse_agent"]
        self.proc = subprocess.Popen(
            [*command, "run", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,  # e.g. resource limits of the agent alone
        )
        self.lines: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"msg": "non-json", "line": line})

    def wait_for(self, predicate, timeout: float = 20.0) -> dict:
        """The first log record (already seen or new) that satisfies predicate."""
        for record in self.seen:
            if predicate(record):
                return record
        deadline = time.monotonic() + timeout
        while True:
            try:
                record = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching log line in {timeout}s; saw {self.seen[-5:]}") from None
            self.seen.append(record)
            if predicate(record):
                return record

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)
