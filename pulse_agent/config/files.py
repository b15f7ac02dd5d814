"""Where a config comes from: one file, or every *.yaml / *.yml of a directory, and its digest."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pulse_agent.config.errors import ConfigError, ConfigInvalid, Position

PATTERNS = ("*.yaml", "*.yml")


@dataclass(frozen=True, slots=True)
class Source:
    """One config file's name (as errors show it) and text."""

    name: str
    text: str


def read_sources(path: str | Path) -> list[Source]:
    """The file at path, or the config files of the directory at path in name order (hidden ones skipped)."""
    root = Path(path)
    if root.is_dir():
        files = sorted({f for pattern in PATTERNS for f in root.glob(pattern) if _candidate(f) and not f.name.startswith(".")})
        if not files:
            raise ConfigInvalid([ConfigError(None, (), f"config directory {str(root)!r} has no *.yaml or *.yml files")])
        return [_read(f) for f in files]
    return [_read(root)]


def digest(sources: list[Source], length: int = 12) -> str:
    """A content hash of the whole config, length hex digits (short: a name for people): equal texts, equal digest."""
    h = hashlib.sha256()
    for s in sources:
        h.update(s.name.rsplit("/", 1)[-1].encode() + b"\0" + s.text.encode() + b"\0")
    return h.hexdigest()[:length]


Signature = tuple[tuple[str, int, int, int, int, int], ...]
RACY_NS = 2_000_000_000  # a file changed this recently may change again within its timestamp's granularity


def stat_signature(path: str | Path) -> Signature | None:
    """What stat says of the config at path (a file, or a directory and each entry in it, links followed:
    an editor's rename and a ConfigMap's `..data` swap change it); None when it cannot be read."""
    try:
        root = Path(path)
        st = os.stat(root)
        marks = [("", st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)]
        if stat.S_ISDIR(st.st_mode):
            for entry in sorted(os.scandir(root), key=lambda e: e.name):
                es = entry.stat()
                marks.append((entry.name, es.st_dev, es.st_ino, es.st_size, es.st_mtime_ns, es.st_ctime_ns))
        return tuple(marks)
    except OSError:
        return None


def settled(signature: Signature, read_at_ns: int) -> bool:
    """Whether nothing the signature covers was changed within RACY_NS before read_at_ns: then the same
    signature later means the same texts (a write changes the times, and would have to land in the same
    tick of a coarse file system clock to leave them as they were)."""
    return all(max(mtime, ctime) < read_at_ns - RACY_NS for *_, mtime, ctime in signature)


MAX_BYTES = 32 << 20  # 32 MiB: about 300,000 checks; more is a mistake (or /dev/zero), not a config


def _candidate(file: Path) -> bool:
    """A directory entry to read: regular files, and FIFOs and devices so that they are refused, not skipped."""
    return file.is_file() or file.is_fifo() or file.is_char_device() or file.is_block_device()


def _read(file: Path) -> Source:
    """The text of a regular file of at most MAX_BYTES; anything else is a ConfigInvalid saying what it is."""
    where = Position(str(file), 1, 1)
    try:
        # O_NONBLOCK: opening a FIFO nobody writes to would wait for ever (and stall every reload).
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigInvalid([ConfigError(None, (), f"config file {str(file)!r} not found; pass -c FILE")]) from None
    except OSError as exc:
        raise ConfigInvalid([ConfigError(where, (), f"cannot read config: {exc.strerror or exc}")]) from None
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            what = "a FIFO" if stat.S_ISFIFO(kind) else "a device" if stat.S_ISCHR(kind) or stat.S_ISBLK(kind) else "not a file"
            raise ConfigInvalid([ConfigError(where, (), f"cannot read config: {what}; a config is a regular file")])
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ConfigInvalid([ConfigError(where, (), f"config file is larger than {MAX_BYTES >> 20} MiB")])
        return Source(str(file), data.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([ConfigError(where, (), f"cannot read config: {exc}")]) from None
    finally:
        os.close(fd)
