"""Config: YAML file -> validated, typed AgentSpec, or every error with its place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pulse_agent.config.build import build_spec, errors_of
from pulse_agent.config.errors import ConfigError, ConfigInvalid, Position
from pulse_agent.config.load import parse_document
from pulse_agent.config.model import AgentSpec, CheckSpec
from pulse_agent.config.schema import validate_document

__all__ = ["AgentSpec", "CheckSpec", "ConfigError", "ConfigInvalid", "load_config", "parse_config"]


def parse_config(text: str, source: str, env: Mapping[str, str] | None = None) -> AgentSpec:
    """Config text -> AgentSpec; raise ConfigInvalid listing every error."""
    doc = parse_document(text, source, os.environ if env is None else env)
    if doc.data is not None:
        validate_document(doc)
        spec = build_spec(doc)
    if doc.errors:
        raise ConfigInvalid(errors_of(doc))
    return spec


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> AgentSpec:
    """Read and parse a config file; a missing or unreadable file is a ConfigInvalid too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigInvalid([ConfigError(None, (), f"config file {str(path)!r} not found; pass -c FILE")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([ConfigError(Position(str(path), 1, 1), (), f"cannot read config: {exc}")]) from None
    return parse_config(text, str(path), env)
