"""Config errors that say where: file:line:column, key path, message."""

from __future__ import annotations

from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a config file; line and column count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem in a config, with its place and key path."""

    position: Position | None
    path: KeyPath
    message: str

    def __str__(self) -> str:
        where = f"{self.position}: " if self.position else ""
        key = f"{format_path(self.path)}: " if self.path else ""
        return f"{where}{key}{self.message}"


class ConfigInvalid(Exception):
    """Raised with every error of a config that cannot be used."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(errors, key=_sort_key)
        super().__init__("\n".join(str(e) for e in self.errors))


def _sort_key(e: ConfigError) -> tuple[str, int, int, str]:
    p = e.position
    return (p.file, p.line, p.column, e.message) if p else ("", 0, 0, e.message)


def format_path(path: KeyPath) -> str:
    """Key path as users write it: ("checks", 2, "timeout") -> "checks[2].timeout"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
