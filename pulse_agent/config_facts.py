"""What the commands over history (`report`, `export`) need of a config, and the memory of it on disk:
the facts of a config accepted once are read back instead of loading the same config again.

Loading and checking a 100,000-check config takes seconds; a report over its history should not. So
each accepted config leaves an entry in the user's cache directory: its facts (check names, labels and
SLOs, as /metrics shows them; the database, listen address and query timeout), named by a hash of its
texts and of this installation (our code and schema, the installed packages, the time zone data). An
entry holds what else the load depended on, and is used only while all of it still holds: the
environment variables the load looked up (a salted hash of their values: a token in a header is never
written down) and the shell's checks of this machine (config/check.py's MACHINE_CHECKS), run again; the
others (notifier URLs, rule SQL) depend only on the installed packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import sysconfig
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulse_agent.config.check import MACHINE_CHECKS, noting
from pulse_agent.config.files import Source, digest

FORMAT = 2  # bumped when the stored form changes: older entries are then never read
KEEP = 8  # entries kept, the most recently used: a 100,000-check config's take about 0.25 MB
MAX_STORED = 16 << 20  # bytes of an entry on disk; anything larger is not ours
MAX_JSON = 256 << 20  # bytes an entry may decompress to


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
            "database": self.database, "listen": self.listen, "query_timeout": self.query_timeout,
            "names": list(self.names), "labels": {n: [list(p) for p in pairs] for n, pairs in self.labels.items()},
            "slos": self.slos,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> ConfigFacts:
        """to_json's data back; ValueError when it is anything else."""
        try:
            _expect(isinstance(data, dict) and isinstance(data["names"], list) and isinstance(data["labels"], dict))
            _expect(isinstance(data["slos"], dict) and all(isinstance(p, list) for p in data["labels"].values()))
            names = tuple(data["names"])
            labels = {n: tuple((k, v) for k, v in pairs) for n, pairs in data["labels"].items()}
            slos = {n: float(v) for n, v in data["slos"].items()}
            _strings(data["database"], data["listen"], *names, *(s for pairs in labels.values() for p in pairs for s in p))
            return cls(data["database"], data["listen"], float(data["query_timeout"]), names, labels, slos)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not the facts of a config: {exc!r}") from None


def facts_of(spec: Any, *, checks: bool = True) -> ConfigFacts:  # spec: AgentSpec (the config package is slow to import)
    """The facts of a loaded config (checks=False: only where its agent keeps and serves data)."""
    agent, specs = spec.agent, spec.checks if checks else ()
    return ConfigFacts(
        agent.database, agent.listen, agent.query_timeout, tuple(c.name for c in specs),
        {c.name: tuple(c.labels) for c in specs if c.labels}, {c.name: c.slo for c in specs if c.slo is not None},
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Entry:
    """An accepted config's facts, and what they depend on besides its texts and the installation."""

    facts: ConfigFacts
    names: tuple[str, ...]  # the environment variables the load looked up (set or not)
    salt: str
    env: str  # env_digest(names, the environment then, salt)
    checks: tuple[tuple[str, tuple[str | None, ...]], ...]  # (Validators field, arguments) of the MACHINE_CHECKS calls

    def to_json(self) -> dict[str, Any]:
        """Plain data for json (from_json reads it back equal)."""
        return {"format": FORMAT, "facts": self.facts.to_json(), "names": list(self.names), "salt": self.salt,
                "env": self.env, "checks": [[kind, list(args)] for kind, args in self.checks]}  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> Entry:
        """to_json's data back; ValueError when it is anything else (a damaged or foreign file)."""
        try:
            _expect(isinstance(data, dict) and data["format"] == FORMAT and isinstance(data["names"], list))
            _expect(all(isinstance(c, list) and len(c) == 2 and c[0] in MACHINE_CHECKS and isinstance(c[1], list) for c in data["checks"]))
            checks = tuple((kind, tuple(args)) for kind, args in data["checks"])
            _strings(data["salt"], data["env"], *data["names"], *(a for _, args in checks for a in args if a is not None))
            return cls(ConfigFacts.from_json(data["facts"]), tuple(data["names"]), data["salt"], data["env"], checks)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an entry of accepted config facts: {exc!r}") from None


def _expect(condition: bool) -> None:
    if not condition:
        raise ValueError("unexpected shape")


def _strings(*values: object) -> None:
    _expect(all(isinstance(v, str) for v in values))


def texts_key(sources: list[Source], installation: str) -> str:
    """The name of the entry for these files (as read) loaded by this installation."""
    return hashlib.sha256(f"{FORMAT}\0{installation}\0{digest(sources, 64)}".encode()).hexdigest()


def env_digest(names: Iterable[str], env: Mapping[str, str], salt: str) -> str:
    """A salted hash of the values of names in env (and of which are unset)."""
    h = hashlib.sha256(_utf8(salt))
    for name in sorted(names):
        value = env.get(name)
        h.update(_utf8(f"{len(name)}:{name}") + (b"-" if value is None else _utf8(f"={len(value)}:{value}")))
    return h.hexdigest()


def _utf8(text: str) -> bytes:
    """text as bytes, lone surrogates included (how Python keeps environment bytes that are not UTF-8)."""
    return text.encode("utf-8", "surrogateescape")


class LookedUp(Mapping[str, str]):
    """An environment that notes each name a load looks up; a load that copies it whole (a child parse)
    is noted too, since then the names it used are not known."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.names: set[str] = set()
        self.copied = False

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return self._env[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.names.add(name)
        return name in self._env

    def __iter__(self) -> Iterator[str]:
        self.copied = True
        return iter(self._env)

    def __len__(self) -> int:
        self.copied = True
        return len(self._env)


# The shell: the installation, the cache directory.


def cache_dir(env: Mapping[str, str]) -> Path | None:
    """$XDG_CACHE_HOME/pulse-agent, else ~/.cache/pulse-agent; None without either (a relative
    XDG_CACHE_HOME is ignored, as the XDG specification says)."""
    base = env.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        base = str(Path(env["HOME"]) / ".cache") if os.path.isabs(env.get("HOME") or "") else ""
    return Path(base) / "pulse-agent" if base else None


def installation() -> str:
    """Which pulse-agent, schema, Python, packages and time zone data load configs here: every file of
    the package and the checkout's schemas/ (size and modification time), and the modification times of
    the directories packages and zones are installed in (an install or removal changes them)."""
    import zoneinfo

    root = Path(__file__).resolve().parent
    files = [p for p in root.rglob("*") if "__pycache__" not in p.parts and p.is_file()]
    files += sorted((root.parent / "schemas").glob("*.json"))
    dirs = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")} | set(zoneinfo.TZPATH)
    parts = [sys.version, *(f"{p}:{st.st_size}:{st.st_mtime_ns}" for p in sorted(files) for st in [p.stat()])]
    parts += [f"{d}:{os.stat(d).st_mtime_ns}" for d in sorted(dirs) if os.path.isdir(d)]
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _trusted(where: Path) -> bool:
    """Whether where is a directory of this user that nobody else can write to."""
    st = os.stat(where)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def recall(where: Path, key: str) -> Entry | None:
    """The entry stored under key, or None (none, unreadable, damaged, too large, not a regular file,
    or in a directory others may write to); a used entry is marked as used (see remember's eviction)."""
    path = where / f"{key}.json.z"
    try:
        if not _trusted(where):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_STORED:
                return None
            with os.fdopen(fd, "rb", closefd=False) as f:
                stored = f.read(MAX_STORED + 1)
        finally:
            os.close(fd)
        inflate = zlib.decompressobj()
        text = inflate.decompress(stored, MAX_JSON)
        if not inflate.eof or inflate.unconsumed_tail:
            return None
        entry = Entry.from_json(json.loads(text))
        os.utime(path)
        return entry
    except Exception:  # whatever is wrong with a cache entry only means loading the config
        return None


def remember(where: Path, key: str, entry: Entry) -> None:
    """Store entry under key (atomically, readable by this user only) and keep the KEEP most recently used
    entries; a directory that cannot be written, or that others may write to, is no error (the next
    load is only slower)."""
    tmp = None
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(where):
            return
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".", suffix=".tmp")  # O_EXCL, 0600
        with os.fdopen(fd, "wb") as f:
            f.write(zlib.compress(json.dumps(entry.to_json(), separators=(",", ":")).encode(), 1))
        os.replace(tmp, where / f"{key}.json.z")
        tmp = None
        entries = sorted(where.glob("*.json.z"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        stale = [p for p in where.glob(".*.tmp") if p.stat().st_mtime < time.time() - 3600]  # a writer that died
        for old in entries[KEEP:] + stale:
            old.unlink(missing_ok=True)
    except OSError:
        pass
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def accepted_facts(
    sources: list[Source], load: Callable[..., Any], validators: Any,
    env: Mapping[str, str] | None = None, where: Path | None = None,
) -> ConfigFacts:  # fmt: skip
    """The facts of the config made of sources (its files as read): from the cache while
    all they depend on holds, else load(env=..., validators=...) (raising what a refused config raises:
    nothing is stored then), stored."""
    env = os.environ if env is None else env
    where = cache_dir(env) if where is None else where
    try:
        key = texts_key(sources, installation()) if where is not None else None
    except OSError:  # the installation changing under us (a reinstall): load, store nothing
        key = None
    if where is None or key is None:
        return facts_of(load(env=env, validators=validators))
    known = recall(where, key)
    if known is not None and _holds(known, env, validators):
        return known.facts
    looked_up = LookedUp(env)
    calls: list[tuple[str, tuple[str | None, ...]]] = []
    facts = facts_of(load(env=looked_up, validators=noting(validators, lambda *call: calls.append(call))))
    if not looked_up.copied:
        salt = os.urandom(16).hex()
        names = tuple(sorted(looked_up.names))
        remember(where, key, Entry(facts, names, salt, env_digest(names, env, salt), tuple(dict.fromkeys(calls))))
    return facts


def _holds(entry: Entry, env: Mapping[str, str], validators: Any) -> bool:
    """Whether the environment gives the entry's variables the same values, and every check of this
    machine the load made passes again."""
    if env_digest(entry.names, env, entry.salt) != entry.env:
        return False
    return all(getattr(validators, kind)(*args) is None for kind, args in entry.checks)
