"""Log output: a stderr nobody reads never stalls the agent; lines it could not take are counted."""

import json
import logging
import os
import threading
import time

from pulse_agent.logs import BackgroundHandler, JsonFormatter


def test_a_full_pipe_does_not_block_logging_and_the_drops_are_reported():
    read_fd, write_fd = os.pipe()
    reader, writer = os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")
    handler = BackgroundHandler(writer, max_lines=100)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("pulse_agent.test_logs")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        line = "x" * 1000
        started = time.monotonic()
        for i in range(2000):  # about 2 MB: far more than a pipe holds (64 KiB) while nobody reads
            log.info("result", extra={"n": i, "pad": line})
        assert time.monotonic() - started < 2.0  # never waited for the reader

        got: list[dict] = []
        thread = threading.Thread(target=lambda: got.extend(json.loads(text) for text in reader), daemon=True)
        thread.start()  # the reader comes back: what waited is written, and how much was dropped
        handler.flush()
        writer.close()
        thread.join(10)
        numbers = [r["n"] for r in got if r["msg"] == "result"]
        assert numbers == sorted(numbers) and numbers[0] == 0
        notices = [r for r in got if r["msg"].startswith("log lines dropped")]
        assert notices and all(r["level"] == "warning" for r in notices)
        assert sum(r["dropped"] for r in notices) + len(numbers) == 2000  # every line written or counted
        assert len(numbers) < 2000  # some were dropped (the counter itself may already be in a notice)
    finally:
        log.removeHandler(handler)
        reader.close()


def test_flush_writes_every_line_logged_so_far(tmp_path):
    path = tmp_path / "err.log"
    with path.open("w") as stream:
        handler = BackgroundHandler(stream)
        handler.setFormatter(JsonFormatter())
        for i in range(500):
            handler.emit(logging.makeLogRecord({"msg": "line", "n": i, "levelname": "INFO", "name": "t"}))
        handler.flush()
        assert [json.loads(x)["n"] for x in path.read_text().splitlines()] == list(range(500))
