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
        return _one_line(f"{where}{key}{self.message}")


MAX_LINE = 1000  # a message quoting a 4,000-character value stays readable


def _one_line(text: str) -> str:
    """text on one line of at most MAX_LINE characters: one error, one line, whatever values it quotes."""
    text = " ".join(text.splitlines())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


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
