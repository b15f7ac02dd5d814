"""Where a config comes from: one file, or every *.yaml / *.yml of a directory, and its digest."""

from __future__ import annotations

import hashlib
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
        files = sorted({f for pattern in PATTERNS for f in root.glob(pattern) if f.is_file() and not f.name.startswith(".")})
        if not files:
            raise ConfigInvalid([ConfigError(None, (), f"config directory {str(root)!r} has no *.yaml or *.yml files")])
        return [_read(f) for f in files]
    return [_read(root)]


def digest(sources: list[Source]) -> str:
    """A short content hash of the whole config: equal texts, equal digest."""
    h = hashlib.sha256()
    for s in sources:
        h.update(s.name.rsplit("/", 1)[-1].encode() + b"\0" + s.text.encode() + b"\0")
    return h.hexdigest()[:12]


def _read(file: Path) -> Source:
    try:
        return Source(str(file), file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigInvalid([ConfigError(None, (), f"config file {str(file)!r} not found; pass -c FILE")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([ConfigError(Position(str(file), 1, 1), (), f"cannot read config: {exc}")]) from None
