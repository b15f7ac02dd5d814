"""Config: YAML file -> validated, typed AgentSpec, or every error with its place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from pulse_agent.config import reparse
from pulse_agent.config.build import build_spec, errors_of
from pulse_agent.config.check import NO_VALIDATORS, Validators
from pulse_agent.config.child import Job, start, wanted
from pulse_agent.config.errors import ConfigError, ConfigInvalid
from pulse_agent.config.files import Source, digest, read_sources
from pulse_agent.config.load import Document, parse_document
from pulse_agent.config.memo import Memo
from pulse_agent.config.memo import digest as digest_of
from pulse_agent.config.merge import merge_documents
from pulse_agent.config.model import AgentSpec, CheckSpec
from pulse_agent.config.schema import validate_document

__all__ = [
    "NO_VALIDATORS", "AgentSpec", "Ahead", "CheckSpec", "ConfigError", "ConfigInvalid", "Memo", "Validators",
    "begin_load", "load_config", "parse_config",
]  # fmt: skip


def parse_config(
    text: str, source: str, env: Mapping[str, str] | None = None, memo: Memo | None = None, *,
    placeholders: bool = False, validators: Validators = NO_VALIDATORS, jobs: dict[int, Job] | None = None,
) -> AgentSpec:  # fmt: skip
    """Config text -> AgentSpec; raise ConfigInvalid listing every error. placeholders: unset ${VAR}s
    are no error (validate without secrets); the spec then only tells the config's structure is right.
    validators: the shell's checks of what lies outside the text (files, notifier URLs).
    jobs: a child parse of the text already started ({0: job}: see begin_load)."""
    # One file: an unchanged text is never loaded again (the digest says so), so keep no document, only
    # what lets the next load parse just the items an edit changed (config/reparse.py).
    if memo is not None and memo.kept is not None and not placeholders and not jobs:
        spec = _reparsed(text, source, env, memo, validators)
        if spec is not None:
            return spec
    one = Source(source, text)
    jobs = _children([one], env, memo, placeholders) if jobs is None else jobs
    doc = _document(one, env, memo, keep=False, placeholders=placeholders, job=jobs.get(0))
    with memo.without_items() if memo is not None else nullcontext():
        spec = build_spec(doc, memo, validators) if doc.data is not None else None
    if doc.errors or spec is None:
        raise ConfigInvalid(errors_of(doc))
    if memo is not None and not placeholders:
        memo.keep_file(reparse.keep(text, source, doc.data, memo.built(), spec.checks))
    return replace(spec, unset_variables=tuple(sorted(doc.needs))) if doc.needs else spec


def _reparsed(text: str, source: str, env: Mapping[str, str] | None, memo: Memo, validators: Validators) -> AgentSpec | None:
    """The spec of text from the last good load of this file and a parse of the items it changed, or None
    when anything is wrong or in doubt: the whole text is loaded then, to give (and place) every error."""
    assert memo.kept is not None
    again = reparse.reparsed(memo.kept, text, source, os.environ if env is None else env)
    if again is None:
        return None
    doc, kept = again.doc, memo.kept
    with memo.without_items():
        validate_document(doc, memo, again.reuse.keys)
        spec = None if doc.errors else build_spec(doc, memo, validators, again.reuse)
    if spec is None or doc.errors:
        memo.forget_items()  # this document's items are dropped: the ids of the whole load's may be theirs
        return None
    memo.keep_file(reparse.keep(text, source, doc.data, memo.built(), spec.checks, (kept.head, kept.marker)))
    return spec


def _document(
    source: Source, env: Mapping[str, str] | None, memo: Memo | None, *, keep: bool = True, placeholders: bool = False,
    job: Job | None = None,
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


def _children(sources: list[Source], env: Mapping[str, str] | None, memo: Memo | None, placeholders: bool) -> dict[int, Job]:
    """Child parses, started at once, for the large sources not remembered by the memo of a running agent:
    their YAML trees never take the agent's memory (config/child.py), and a directory's run in parallel."""
    if memo is None:
        return {}
    environ = os.environ if env is None else env
    return {
        i: start(s.text, s.name, environ, placeholders=placeholders)
        for i, s in enumerate(sources)
        if wanted(s.text) and (s.name, digest_of(s.text)) not in memo.documents
    }


@dataclass
class Ahead:
    """A load of a running agent's config begun early (begin_load): its files read, or why they could not
    be, and the child parses of its large ones started; load_config(ahead=...) finishes it."""

    path: str
    sources: list[Source] | ConfigInvalid
    jobs: dict[int, Job] = field(default_factory=dict)  # by index in sources

    def read(self) -> list[Source]:
        """The sources as read_sources gave them, or its ConfigInvalid raised now."""
        if isinstance(self.sources, ConfigInvalid):
            raise self.sources
        return self.sources


def begin_load(path: str | Path, memo: Memo, env: Mapping[str, str] | None = None) -> Ahead:
    """Read the config at path and start its child parses now, so that they run while the caller does
    other work (`run` imports the agent meanwhile); load_config(path, env, memo, ahead=...) collects them."""
    try:
        sources = read_sources(path)
    except ConfigInvalid as exc:  # load_config raises it, where it would have read the files
        return Ahead(str(path), exc)
    return Ahead(str(path), sources, _children(sources, env, memo, placeholders=False))


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None, memo: Memo | None = None, *,
    placeholders: bool = False, validators: Validators = NO_VALIDATORS, ahead: Ahead | None = None,
    sources: list[Source] | None = None,
) -> AgentSpec:  # fmt: skip
    """Read and parse a config file, or every *.yaml/*.yml of a directory merged; unreadable input is
    a ConfigInvalid too. A memo (kept by a running agent) makes loading an edited config cheap.
    placeholders: see parse_config (never for a config that is going to run).
    ahead: this load begun by begin_load(path, memo, env): its files as read then, its parses running.
    sources: the files at path as read_sources(path) gave them just before (a reload read them for their digest)."""
    if ahead is not None and (ahead.path != str(path) or placeholders or sources is not None):
        raise ValueError("ahead was begun for another load")
    if memo is not None:
        memo.begin()
    ok = False
    jobs = ahead.jobs if ahead is not None else None
    try:
        if sources is None:
            sources = ahead.read() if ahead is not None else read_sources(path)
        if len(sources) == 1 and not Path(path).is_dir():
            spec = parse_config(sources[0].text, sources[0].name, env, memo, placeholders=placeholders, validators=validators, jobs=jobs)
            spec = replace(spec, digest=digest(sources))
        else:
            spec = parse_sources(sources, str(path), env, memo, placeholders=placeholders, validators=validators, jobs=jobs)
        ok = True
        return spec
    finally:
        while jobs:  # stop those not collected (the load failed before reaching them), and hold none: a job holds its text
            jobs.popitem()[1].close()
        if memo is not None:
            memo.end(ok=ok)


def parse_sources(
    sources: list[Source], name: str, env: Mapping[str, str] | None = None, memo: Memo | None = None, *,
    placeholders: bool = False, validators: Validators = NO_VALIDATORS, jobs: dict[int, Job] | None = None,
) -> AgentSpec:  # fmt: skip
    """Several config texts -> one AgentSpec (see config/merge.py for the rules); jobs: child parses
    already started, by index in sources (see begin_load)."""
    jobs = _children(sources, env, memo, placeholders) if jobs is None else jobs
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
