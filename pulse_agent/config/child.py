"""Parse a large config text in a short-lived child process, so the agent's heap never holds its YAML tree.

`yaml.compose` builds the node tree of the whole file (about 3.4 KB a check) before any value is made,
and every value, position and spec that outlives it is allocated between its nodes; once the tree is
freed, Python's allocator keeps each pool in which one survivor lives (docs/performance.md, "Memory at
100,000 checks"). A child composes and walks the tree, and hands back only the `Document` (see encode:
its data marshalled, its positions as packed numbers), which the parent loads into compact memory.

The child is a fresh interpreter (`subprocess`, never a fork: the agent has threads), reading one pickle
on stdin and writing one on stdout. Like config/files.py, this is the config's I/O shell, used by
load_config only when given a memo (a running agent). It imports only PyYAML and `config/load.py`: the package's
`__init__` (schema, builder) is replaced by a bare package module in the child, which keeps its start
near the interpreter's own.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping

from pulse_agent.config.errors import ConfigError, ConfigInvalid, KeyPath, Position
from pulse_agent.config.load import Document, Positions, parse_document
from pulse_agent.config.reparse import pack, unpack
from pulse_agent.config.split import Plan, join, parse_head, plan

# Below this many characters a config is parsed in process: its tree is under a few MB and takes less
# time to compose than a child takes to start (docs/performance.md); a sidecar's config is a few KB.
CHILD_MIN_CHARS = 256 * 1024


def boot(call: str) -> str:
    """Source for `python -c` that makes pulse_agent.config a bare package, then runs call: its __init__
    imports the schema and the builder (yaml, jsonschema), which a child process (a parse, a probe
    worker) never needs, and its modules are then imported alone."""
    return (
        "import sys, types, pulse_agent, os.path as p;"
        "m = types.ModuleType('pulse_agent.config'); m.__path__ = [p.join(p.dirname(pulse_agent.__file__), 'config')];"
        "sys.modules['pulse_agent.config'] = m;" + call
    )


COMMAND: list[str] = [sys.executable, "-c", boot("from pulse_agent.config.child import serve; serve()")]  # a test may start another program


def wanted(text: str) -> bool:
    """Whether text is large enough that parsing it in a child is worth a process start."""
    return len(text) >= CHILD_MIN_CHARS


class ParseJob:
    """One child parsing one text: started at once, its Document collected by result()."""

    def __init__(self, text: str, source: str, env: Mapping[str, str], *, placeholders: bool = False) -> None:
        self.source = source
        self._failure = ""
        request = pickle.dumps((text, source, dict(env), placeholders), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True
            )
        except OSError as exc:
            self._process, self._failure = None, f"cannot start a process to parse it: {exc.strerror or exc}"
            return
        # Written by a thread: the pipe holds 64 KiB, and several children of a directory parse at once.
        self._writer = threading.Thread(target=_send, args=(self._process, request), name="config-child", daemon=True)
        self._writer.start()

    def result(self) -> Document:
        """The child's Document; a child that fails, dies or answers garbage raises a one-line ConfigInvalid."""
        process = self._process
        if process is None:
            raise self._invalid(self._failure)
        assert process.stdout is not None
        with process.stdout:
            out = process.stdout.read()
        process.wait()
        self._writer.join()
        if process.returncode != 0:
            raise self._invalid(_death(process.returncode))
        try:
            answer = pickle.loads(out)
            if answer[0] == "failed":
                raise self._invalid(f"parsing it failed: {answer[1]}")
            return decode(answer)
        except ConfigInvalid:
            raise
        except Exception:  # truncated, or not what serve() writes: whatever it was, the load is refused
            raise self._invalid("the process parsing it gave no answer") from None

    @property
    def pid(self) -> int | None:
        """The child's process id (None: it could not be started)."""
        return None if self._process is None else self._process.pid

    def close(self) -> None:
        """Stop the child if it is still running (its result will not be collected)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
            self._writer.join()
            if self._process.stdout is not None:
                self._process.stdout.close()

    def _invalid(self, message: str) -> ConfigInvalid:
        return ConfigInvalid([ConfigError(Position(self.source, 1, 1), (), f"config not loaded: {message}")])


class SplitParse:
    """One large text parsed as parts by children at once (config/split.py), joined into its Document; any
    doubt (an error in a part, see split.join) and the whole text is parsed by one more child instead."""

    def __init__(self, text: str, source: str, env: Mapping[str, str], split: Plan) -> None:
        self.source = source
        self._text, self._env, self._split = text, dict(env), split
        self._parts = [ParseJob(part, source, env) for part in split.parts]

    def result(self) -> Document:
        """The whole text's Document; a part's child that fails or dies refuses the load as one does."""
        try:
            docs = [job.result() for job in self._parts]
        finally:
            self.close()
        text, split = self._text, self._split
        self._text, self._split = "", Plan("", [])  # a job may outlive its result: keep no copy of the text
        joined = join(text, self.source, parse_head(split, self.source, self._env), docs)
        return joined if joined is not None else ParseJob(text, self.source, self._env).result()

    def close(self) -> None:
        """Stop the children still running."""
        for job in self._parts:
            job.close()


Job = ParseJob | SplitParse  # a child parse under way


def start(text: str, source: str, env: Mapping[str, str], *, placeholders: bool = False) -> Job:
    """A child parse of text: split in parts parsed at once, one a core, when it can be (config/split.py)."""
    parts = min(os.cpu_count() or 1, len(text) // max(CHILD_MIN_CHARS, 1))
    split = None if placeholders else plan(text, parts)
    return ParseJob(text, source, env, placeholders=placeholders) if split is None else SplitParse(text, source, env, split)


def _send(process: subprocess.Popen[bytes], request: bytes) -> None:
    """Write the request and close the child's stdin; a child that died meanwhile is result()'s to report."""
    assert process.stdin is not None
    try:
        with process.stdin:
            process.stdin.write(request)
    except OSError:  # BrokenPipe: it died before reading all of it
        pass


def _death(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the process parsing it was killed ({name})"
    return f"the process parsing it exited with status {code}"


def parse_in_child(text: str, source: str, env: Mapping[str, str], *, placeholders: bool = False) -> Document:
    """parse_document(text, ...) computed by a child process: same data, positions and errors."""
    return ParseJob(text, source, env, placeholders=placeholders).result()


def encode(doc: Document) -> tuple[object, ...]:
    """doc as plain values that pickle quickly: its data marshalled when it can be (several times faster
    than pickle; header values from ${VAR}s and dates cannot be), positions as state() gives them."""
    data, pickled = pack(doc.data)
    return ("doc", doc.source, pickled, data, _state(doc.values), _state(doc.keys), doc.errors, doc.unknown, doc.needs)


def _state(positions: Mapping[KeyPath, Position]) -> object:
    return positions.state() if isinstance(positions, Positions) else dict(positions)  # none yet: a YAML error came first


def decode(answer: tuple[object, ...]) -> Document:
    """The Document encode() was given."""
    _, source, pickled, blob, values, keys, errors, unknown, needs = answer
    data = unpack(blob, pickled)  # type: ignore[arg-type]
    restore = Positions.restored
    return Document(source, data, restore(source, "values", values, data), restore(source, "keys", keys, data), errors, unknown, needs)  # type: ignore[arg-type]


def serve() -> None:
    """The child: one (text, source, env, placeholders) pickle in, its Document (or a failure) out, then exit."""
    gc.disable()  # a million new objects and no cycles: collections would only cost time (as cmd_run pauses them)
    stdout = sys.stdout.buffer
    text, source, env, placeholders = pickle.loads(sys.stdin.buffer.read())
    try:
        answer: object = encode(parse_document(text, source, env, placeholders=placeholders))
    except Exception as exc:  # never a traceback: the parent turns this into one line
        answer = ("failed", type(exc).__name__)  # its text could quote a value of the config: a secret
    stdout.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    stdout.flush()
    os._exit(0)  # freeing the tree on the way out would only cost time
