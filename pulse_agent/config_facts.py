"""What the commands over history (`report`, `export`) need of a config, and the memory of it on disk:
the facts of a config text accepted once are read back instead of loading that text again.

Loading and checking a 100,000-check config takes seconds; a report over its history should not. So
each accepted config leaves its facts (check names, labels, SLOs; the database, listen address and
query timeout) in the user's cache directory, under a key that covers everything the load depended
on: the texts, the values of the environment variables they name, and this pulse-agent's code.
The same key later gives the same facts the load gave. The checks of what lies outside the text
(files, notifier URLs) are the load's, made when the text was accepted.

Nothing secret is written: the facts are what /metrics shows of the checks anyway, and the values of
environment variables (tokens in headers, say) enter only the hash that names an entry, in a
directory only its user can read.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1  # bumped when the stored form changes: older entries are then never read
KEEP = 8  # entries kept (the newest): a 100,000-check config's facts take about 0.5 MB
ENV_NAME_REF = "${"  # where a config names an environment variable (config/load.py expands them)


@dataclass(frozen=True, slots=True)
class ConfigFacts:
    """A config as the history commands see it: its checks' names (in order), labels and SLO objectives,
    and where its agent keeps and serves data."""

    database: str
    listen: str
    query_timeout: float
    names: tuple[str, ...] = ()
    labels: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # checks that have labels
    slos: dict[str, float] = field(default_factory=dict)  # checks that have an objective, percent

    def labelled(self, wanted: Iterable[tuple[str, str]]) -> list[str]:
        """The names of the checks that have every (key, value) of wanted among their labels."""
        pairs = tuple(wanted)
        return [n for n in self.names if all(p in self.labels.get(n, ()) for p in pairs)]

    def to_json(self) -> dict[str, Any]:
        """Plain data for json (from_json reads it back equal)."""
        return {
            "format": FORMAT, "database": self.database, "listen": self.listen, "query_timeout": self.query_timeout,
            "names": list(self.names), "labels": {n: [list(p) for p in pairs] for n, pairs in self.labels.items()},
            "slos": self.slos,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: object) -> ConfigFacts:
        """to_json's data back; ValueError when it is anything else (a damaged or foreign file)."""
        try:
            assert isinstance(data, dict) and data["format"] == FORMAT
            assert isinstance(data["names"], list) and isinstance(data["labels"], dict) and isinstance(data["slos"], dict)
            names = tuple(data["names"])
            labels = {n: tuple((k, v) for k, v in pairs) for n, pairs in data["labels"].items() if isinstance(pairs, list)}
            assert len(labels) == len(data["labels"])
            slos = {n: float(v) for n, v in data["slos"].items()}
            texts = [data["database"], data["listen"], *names, *(s for pairs in labels.values() for p in pairs for s in p)]
            assert all(isinstance(s, str) for s in texts)
            return cls(data["database"], data["listen"], float(data["query_timeout"]), names, labels, slos)
        except (AssertionError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not the facts of a config: {exc!r}") from None


def facts_of(spec: Any) -> ConfigFacts:  # spec: AgentSpec (not imported: the config package is slow to import)
    """The facts of a loaded config."""
    agent, checks = spec.agent, spec.checks
    return ConfigFacts(
        agent.database, agent.listen, agent.query_timeout, tuple(c.name for c in checks),
        {c.name: tuple(c.labels) for c in checks if c.labels}, {c.name: c.slo for c in checks if c.slo is not None},
    )  # fmt: skip


def key_of(texts: Iterable[tuple[str, str]], env: Mapping[str, str], code: str) -> str:
    """The key of a load of these (file name, text) pairs: any change to a text, to the value of an
    environment variable a text names (or whether it is set), or to the code gives another key."""
    h = hashlib.sha256(f"{FORMAT}\0{code}\0".encode())
    names: set[str] = set()
    for name, text in texts:
        h.update(f"{len(name)}:{name}\0{len(text)}:".encode() + text.encode() + b"\0")
        names.update(_named_variables(text))
    for name in sorted(names):
        value = env.get(name)
        h.update(f"{name}\0{'-' if value is None else f'={len(value)}:{value}'}\0".encode())
    return h.hexdigest()


def _named_variables(text: str) -> set[str]:
    """Every NAME of a ${NAME...} in text (a superset of what the load expands: escapes and bad
    references included, which only makes the key depend on more)."""
    names = set()
    start = text.find(ENV_NAME_REF)
    while start >= 0:
        end = text.find("}", start)
        ref = text[start + 2 : end if end >= 0 else len(text)]
        names.add(ref.partition(":-")[0])
        start = text.find(ENV_NAME_REF, start + 2)
    return names


# The shell: the cache directory.


def cache_dir(env: Mapping[str, str]) -> Path | None:
    """$XDG_CACHE_HOME/pulse-agent, else ~/.cache/pulse-agent; None without either."""
    base = env.get("XDG_CACHE_HOME") or (str(Path(env["HOME"]) / ".cache") if env.get("HOME") else "")
    return Path(base) / "pulse-agent" if os.path.isabs(base) else None


def code_fingerprint() -> str:
    """Which pulse-agent (and Python, and YAML parser) this is: the version and every module's size and
    modification time, so that an edited checkout never reads facts an older load wrote."""
    import yaml

    root = Path(__file__).parent
    parts = [sys.version, getattr(yaml, "__version__", "?"), getattr(yaml, "__with_libyaml__", "?")]
    for path in sorted(root.rglob("*.py")):
        st = path.stat()
        parts.append(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()


def recall(where: Path, key: str) -> ConfigFacts | None:
    """The facts stored under key, or None (none, unreadable, damaged, or a directory others may write)."""
    try:
        st = where.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return None
        data = (where / f"{key}.json.z").read_bytes()
        return ConfigFacts.from_json(json.loads(zlib.decompress(data)))
    except (OSError, ValueError, zlib.error):
        return None


def remember(where: Path, key: str, facts: ConfigFacts) -> None:
    """Store facts under key (atomically, readable by this user only) and drop all but the newest
    KEEP entries; a directory that cannot be written is no error (the next load is only slower)."""
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = where / f".{key}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(zlib.compress(json.dumps(facts.to_json(), separators=(",", ":")).encode(), 1))
        os.replace(tmp, where / f"{key}.json.z")
        entries = sorted(where.glob("*.json.z"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def accepted_facts(
    texts: list[tuple[str, str]], load: Callable[[], Any], env: Mapping[str, str] | None = None, where: Path | None = None
) -> ConfigFacts:
    """The facts of the config made of texts ((file name, text) pairs, as read), from the cache, or
    by load() (which raises what a refused config raises: nothing is stored then) and stored."""
    env = os.environ if env is None else env
    where = cache_dir(env) if where is None else where
    if where is None:
        return facts_of(load())
    key = key_of(texts, env, code_fingerprint())
    known = recall(where, key)
    if known is not None:
        return known
    facts = facts_of(load())
    remember(where, key, facts)
    return facts
