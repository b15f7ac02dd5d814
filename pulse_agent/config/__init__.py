"""Config: YAML file -> validated, typed AgentSpec, or every error with its place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from pulse_agent.config.build import build_spec, errors_of
from pulse_agent.config.check import NO_VALIDATORS, Validators
from pulse_agent.config.child import ParseJob, wanted
from pulse_agent.config.errors import ConfigError, ConfigInvalid
from pulse_agent.config.files import Source, digest, read_sources
from pulse_agent.config.load import Document, parse_document
from pulse_agent.config.memo import Memo
from pulse_agent.config.memo import digest as digest_of
from pulse_agent.config.merge import merge_documents
from pulse_agent.config.model import AgentSpec, CheckSpec
from pulse_agent.config.schema import validate_document

__all__ = ["NO_VALIDATORS", "AgentSpec", "CheckSpec", "ConfigError", "ConfigInvalid", "Memo", "Validators", "load_config", "parse_config"]


def parse_config(
    text: str, source: str, env: Mapping[str, str] | None = None, memo: Memo | None = None, *,
    placeholders: bool = False, validators: Validators = NO_VALIDATORS,
) -> AgentSpec:  # fmt: skip
    """Config text -> AgentSpec; raise ConfigInvalid listing every error. placeholders: unset ${VAR}s
    are no error (validate without secrets); the spec then only tells the config's structure is right.
    validators: the shell's checks of what lies outside the text (files, notifier URLs)."""
    # One file: an unchanged text is never loaded again (the digest says so), so keep no document.
    one = Source(source, text)
    doc = _document(one, env, memo, keep=False, placeholders=placeholders, job=_children([one], env, memo, placeholders).get(0))
    spec = build_spec(doc, memo, validators) if doc.data is not None else None
    if memo is not None:
        memo.forget_items()  # each item would hold its parsed check alive until the next load
    if doc.errors or spec is None:
        raise ConfigInvalid(errors_of(doc))
    return replace(spec, unset_variables=tuple(sorted(doc.needs))) if doc.needs else spec


def _document(
    source: Source, env: Mapping[str, str] | None, memo: Memo | None, *, keep: bool = True, placeholders: bool = False,
    job: ParseJob | None = None,
) -> Document:  # fmt: skip
    """Parsed and schema-checked, or the same work remembered from the last load (keep: remember it).
    job: the child process parsing this source (see _children), which then takes the place of parsing here."""
    key = (source.name, digest_of(source.text))
    if memo is not None and (known := memo.document(key)) is not None:
        return known
    environ = os.environ if env is None else env
    doc = job.result() if job is not None else parse_document(source.text, source.name, environ, placeholders=placeholders)
    if doc.data is not None or not doc.errors:  # a top-level null is data too: the schema says what it should be
        validate_document(doc, memo)
    if memo is not None and keep:
        memo.remember_document(key, doc)
    return doc


def _children(sources: list[Source], env: Mapping[str, str] | None, memo: Memo | None, placeholders: bool) -> dict[int, ParseJob]:
    """Child parses, started at once, for the large sources not remembered by the memo of a running agent:
    their YAML trees never take the agent's memory (config/child.py), and a directory's run in parallel."""
    if memo is None:
        return {}
    environ = os.environ if env is None else env
    return {
        i: ParseJob(s.text, s.name, environ, placeholders=placeholders)
        for i, s in enumerate(sources)
        if wanted(s.text) and (s.name, digest_of(s.text)) not in memo.documents
    }


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None, memo: Memo | None = None, *,
    placeholders: bool = False, validators: Validators = NO_VALIDATORS,
) -> AgentSpec:  # fmt: skip
    """Read and parse a config file, or every *.yaml/*.yml of a directory merged; unreadable input is
    a ConfigInvalid too. A memo (kept by a running agent) makes loading an edited config cheap.
    placeholders: see parse_config (never for a config that is going to run)."""
    if memo is not None:
        memo.begin()
    ok = False
    try:
        sources = read_sources(path)
        if len(sources) == 1 and not Path(path).is_dir():
            spec = parse_config(sources[0].text, sources[0].name, env, memo, placeholders=placeholders, validators=validators)
            spec = replace(spec, digest=digest(sources))
        else:
            spec = parse_sources(sources, str(path), env, memo, placeholders=placeholders, validators=validators)
        ok = True
        return spec
    finally:
        if memo is not None:
            memo.end(ok=ok)


def parse_sources(
    sources: list[Source], name: str, env: Mapping[str, str] | None = None, memo: Memo | None = None, *,
    placeholders: bool = False, validators: Validators = NO_VALIDATORS,
) -> AgentSpec:  # fmt: skip
    """Several config texts -> one AgentSpec (see config/merge.py for the rules)."""
    jobs = _children(sources, env, memo, placeholders)
    try:
        docs = [_document(source, env, memo, placeholders=placeholders, job=jobs.pop(i, None)) for i, source in enumerate(sources)]
    finally:
        for job in jobs.values():  # a file's failure ends the load: stop the children still parsing
            job.close()
    merged = merge_documents(docs, name)
    schema_errors = len(merged.errors)
    spec = build_spec(merged, memo, validators)
    # build_spec numbers checks across all files; tell users the number within their file.
    local = [ConfigError(e.position, merged.local_path(e.path), e.message) for e in merged.errors[schema_errors:]]
    merged.errors[schema_errors:] = local
    if merged.errors:
        raise ConfigInvalid(errors_of(merged))
    return replace(spec, digest=digest(sources), unset_variables=tuple(sorted({v for d in docs for v in d.needs})))
