"""Structured logs on stderr: JSON lines by default, key=value text for humans."""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

from pulse_agent.config.model import LogFormat, LogLevel
from pulse_agent.result import iso

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_extra(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """ts LEVEL msg key=value ... for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={_text(v)}" for k, v in _extra(record).items())
        line = f"{iso(record.created)} {record.levelname:<7} {record.getMessage()}" + (f" {fields}" if fields else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class BackgroundHandler(logging.Handler):
    """Formats a record where it is logged and leaves the writing to one thread, a batch at a time:
    a stderr nobody reads (a full pipe) never stalls the agent. Past max_lines waiting, new lines are
    dropped, and the next write says how many."""

    def __init__(self, stream: TextIO, max_lines: int = 100_000) -> None:
        super().__init__()
        self._stream = stream
        self._max = max_lines
        self._lines: collections.deque[str] = collections.deque()
        self._wake = threading.Event()
        self._writing = False
        self.dropped = 0
        threading.Thread(target=self._write_forever, name="pulse-log-writer", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= self._max:
            self.dropped += 1
            return
        self._lines.append(line)
        if not self._wake.is_set():  # the writer clears before it drains, so no line is left behind
            self._wake.set()

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (up to timeout) until every line so far has been written."""
        deadline = time.monotonic() + timeout
        if self.dropped:
            self._wake.set()  # so the count is written too
        while (self._lines or self._writing or self._wake.is_set()) and time.monotonic() < deadline:
            time.sleep(0.005)

    def _write_forever(self) -> None:
        while True:
            self._wake.wait()
            self._writing = True
            time.sleep(0.05)  # lines of the next 50 ms go out as one write: fewer thread switches
            self._wake.clear()
            lines = [self._lines.popleft() for _ in range(len(self._lines))]
            dropped = self.dropped
            if dropped:
                self.dropped -= dropped
                lines.append(self.format(_dropped_notice(dropped)))
            try:
                if lines:
                    self._stream.write("\n".join(lines) + "\n")
                    self._stream.flush()
            except (OSError, ValueError):  # stderr closed: nobody to tell
                pass
            self._writing = False


def _dropped_notice(count: int) -> logging.LogRecord:
    message = "log lines dropped: stderr is not read fast enough"
    record = logging.LogRecord("pulse_agent.logs", logging.WARNING, __file__, 0, message, None, None)
    record.dropped = count
    return record


def setup_logging(fmt: LogFormat = "json", level: LogLevel = "info") -> None:
    """Route every pulse_agent log record to stderr in the chosen format."""
    handler = BackgroundHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("pulse_agent").setLevel(level.upper())


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}


def _text(value: Any) -> str:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return json.dumps(text) if (" " in text or not text) else text
