"""Config: YAML file -> validated, typed AgentSpec, or every error with its place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from pulse_agent.config.build import build_spec, errors_of
from pulse_agent.config.errors import ConfigError, ConfigInvalid
from pulse_agent.config.files import Source, digest, read_sources
from pulse_agent.config.load import parse_document
from pulse_agent.config.merge import merge_documents
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
    """Read and parse a config file, or every *.yaml/*.yml of a directory merged; unreadable input is a ConfigInvalid too."""
    sources = read_sources(path)
    if len(sources) == 1 and not Path(path).is_dir():
        return replace(parse_config(sources[0].text, sources[0].name, env), digest=digest(sources))
    return parse_sources(sources, str(path), env)


def parse_sources(sources: list[Source], name: str, env: Mapping[str, str] | None = None) -> AgentSpec:
    """Several config texts -> one AgentSpec (see config/merge.py for the rules)."""
    docs = []
    for source in sources:
        doc = parse_document(source.text, source.name, os.environ if env is None else env)
        if doc.data is not None:
            validate_document(doc)
        docs.append(doc)
    merged = merge_documents(docs, name)
    schema_errors = len(merged.errors)
    spec = build_spec(merged)
    # build_spec numbers checks across all files; tell users the number within their file.
    local = [ConfigError(e.position, merged.local_path(e.path), e.message) for e in merged.errors[schema_errors:]]
    merged.errors[schema_errors:] = local
    if merged.errors:
        raise ConfigInvalid(errors_of(merged))
    return replace(spec, digest=digest(sources))
