"""The agent process's memory policy: what loading frees goes back to the system."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Frees 150 MB of 1 KiB blocks (malloc's, not Python's small-object pools) below one that stays,
# so glibc cannot simply shrink the heap's top; prints RSS (MB) before and after the policy's pause ends.
_SCRIPT = """
import sys, time
from pulse_agent.gc_policy import GcPolicy

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

with GcPolicy().paused():
    blocks = [bytes(1024) + bytes([i % 256]) for i in range(150_000)]
    pin = bytes(1024) + b"pin"
    del blocks
    before = rss()
deadline = time.monotonic() + 10
while before - rss() < 100 and time.monotonic() < deadline:  # the pages go back in a thread of their own
    time.sleep(0.01)
print(before, rss())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_memory_freed_while_loading_goes_back_to_the_system_after_the_pause():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True).stdout.split()
    before, after = float(out[0]), float(out[1])
    assert before - after > 100, (before, after)  # ~150 MB were free but still resident


_THRESHOLDS = """
import gc
from pulse_agent.gc_policy import YOUNG_THRESHOLD, GcPolicy, LeaveGc

before = gc.get_threshold()
policy = GcPolicy()
policy.settled()
settled = gc.get_threshold()
policy.released()
LeaveGc().settled()
print(before == gc.get_threshold(), settled == (YOUNG_THRESHOLD, *before[1:]), gc.get_freeze_count() == 0)
"""


def test_the_agent_collects_rarely_once_settled_and_as_before_once_stopped():
    """Settled, the agent's generation-0 threshold is YOUNG_THRESHOLD (the other generations as they were);
    released, the process's thresholds and unfrozen heap are back; an embedding process's are never touched."""
    out = subprocess.run([sys.executable, "-c", _THRESHOLDS], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True"]


# Eight threads each allocate (malloc's blocks, not Python's pools) while all are alive, then glibc's malloc_stats()
# prints one "Arena N:" block per arena to stderr; argv[1] says whether the agent's limit was set first.
_ARENAS = """
import sys, threading
from pulse_agent.gc_policy import limit_arenas

if sys.argv[1] == "agent":
    limit_arenas()  # as cmd_run does
ready, go = threading.Barrier(9), threading.Event()

def work():
    held = [bytes(4096) + bytes([i % 256]) for i in range(100)]
    ready.wait()
    go.wait()

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
ready.wait()
import ctypes
ctypes.CDLL("libc.so.6").malloc_stats()
go.set()
for t in threads:
    t.join()
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_agent_process_uses_at_most_two_malloc_arenas_however_many_threads_allocate():
    def arenas(who: str) -> int:
        done = subprocess.run([sys.executable, "-c", _ARENAS, who], capture_output=True, text=True, check=True)
        return sum(line.startswith("Arena ") for line in done.stderr.splitlines())

    assert arenas("agent") <= 2
    assert arenas("embedding") > 2  # the same threads without the policy: one arena each, as glibc gives them
