"""A large config parsed as parts at once (config/split.py, config/child.py): the joined document is the
whole parse's (data, types, every position), and whatever could make them differ is parsed whole instead."""

from __future__ import annotations

import sys

import pytest

from pulse_agent.config import ConfigInvalid, child
from pulse_agent.config.load import Document, parse_document
from pulse_agent.config.split import join, parse_head, plan
from tests.test_config_child import same

ENV = {"PORT": "8080", "TOKEN": "s3cret"}
HEAD = "# yaml-language-server: $schema=schemas/pulse.schema.json\nversion: 1\nagent: {listen: '127.0.0.1:${PORT}'}\n"


def items(n: int, form: str = "  - {{name: c{i}, url: 'http://h/{i}', schedule: 60s}}\n") -> str:
    return "".join(form.format(i=i) for i in range(n))


def joined(text: str, parts: int) -> Document | None:
    """What a split parse gives: plan's parts parsed (here in process) and joined; None: not split or not joined."""
    cut = plan(text, parts)
    if cut is None:
        return None
    return join(text, "c.yaml", parse_head(cut, "c.yaml", ENV), [parse_document(t, "c.yaml", ENV) for t in cut.parts])


SPLIT = {
    "one line each": HEAD + "checks:\n" + items(40),
    "blank lines and deeper comments": HEAD + "checks:\n\n" + items(20).replace("\n", "\n\n    # note\n") + "\n\n",
    "block items": HEAD + "checks:\n" + items(15, "  - name: c{i}\n    url: http://h/{i}\n    labels:\n      team: a\n"),
    "a dash alone": HEAD + "checks:\n" + items(15, "  -\n    name: c{i}\n    url: http://h/{i}\n"),
    "list at the key's indentation": HEAD + "checks:\n" + items(15, "- {{name: c{i}, url: 'http://h/{i}'}}\n"),
    "kept block scalars at the cuts": HEAD + "checks:\n" + items(12, "  - name: c{i}\n    url: http://h/{i}\n    body: |+\n      x\n\n\n"),
    "multi-line flow items": HEAD + "checks:\n" + items(12, "  - {{name: c{i},\n     url: 'http://h/{i}'}}\n"),
    "aliases to the head's anchors": "version: 1\nbase: &h {X: y}\nchecks:\n"
    + items(12, "  - {{name: c{i}, url: 'http://h/', headers: *h}}\n"),
    "ampersands in URLs": HEAD + "checks:\n" + items(12, "  - {{name: c{i}, url: 'http://h/?a={i}&b=2'}}\n"),
    "no newline at the end": HEAD + "checks:\n" + items(12).rstrip("\n"),
    "${VAR}s and dates": HEAD
    + "checks:\n"
    + items(12, "  - {{name: c{i}, url: 'http://h:${{PORT}}/', headers: {{A: '${{TOKEN}}'}}, at: 2026-12-01}}\n"),
}

NOT_SPLIT = {
    "a key after the checks": HEAD + "checks:\n" + items(12) + "notifiers: {}\n",
    "a comment at the list's indentation": HEAD + "checks:\n" + items(6) + "  # half\n" + items(6),
    "a flow list": HEAD + "checks: [" + ", ".join(f"{{name: c{i}, url: 'http://h/'}}" for i in range(12)) + "]\n",
    "CRLF line ends": (HEAD + "checks:\n" + items(12)).replace("\n", "\r\n"),
    "anchors in the head and the items": "version: 1\nbase: &h {X: y}\nchecks:\n"
    + items(12, "  - &a{i} {{name: c{i}, url: 'http://h/'}}\n"),
    "fewer items than parts": HEAD + "checks:\n" + items(1),
    "an alias to another part's anchor": HEAD + "checks:\n  - &first {name: a, url: 'http://h/'}\n" + items(12, "  - *first\n"),
    "one anchor in two parts": HEAD + "checks:\n" + items(6, "  - {{name: c{i}, url: &u 'http://a/'}}\n") + items(6, "  - {{name: d{i}, url: *u}}\n"),
    "a second document": HEAD + "checks:\n" + items(12) + "---\nversion: 1\n",
    "no checks": HEAD,
}

NOT_JOINED = {  # cut, but a part says the parts may not be the whole: parsed whole
    "a quote across the cuts": HEAD + "checks:\n  - {name: a, url: 'http://h/\n" + items(12, "  - {i}\n") + "    '}\n",
    "a merge": HEAD + "checks:\n" + items(12, "  - {{<<: {{timeout: 5s}}, name: c{i}, url: 'http://h/'}}\n"),
    "an error in a later part": HEAD + "checks:\n" + items(12) + "  - {name: x, name: y}\n",
    "an unset variable": HEAD + "checks:\n" + items(12) + "  - {name: x, url: '${NOPE}'}\n",
    "a refused tag": HEAD + "checks:\n" + items(12) + "  - {name: x, url: !!python/object y}\n",
}


@pytest.mark.parametrize("parts", [2, 3, 5])
@pytest.mark.parametrize("text", SPLIT.values(), ids=SPLIT.keys())
def test_a_split_parse_is_the_whole_parse(text, parts):
    assert plan(text, parts) is not None
    doc = joined(text, parts)
    assert doc is not None
    same(parse_document(text, "c.yaml", ENV), doc)


@pytest.mark.parametrize("text", NOT_SPLIT.values(), ids=NOT_SPLIT.keys())
def test_a_text_that_cannot_be_cut_safely_is_not(text):
    assert plan(text, 2) is None


@pytest.mark.parametrize("text", NOT_JOINED.values(), ids=NOT_JOINED.keys())
def test_parts_that_may_differ_from_the_whole_are_not_joined(text):
    assert plan(text, 3) is not None and joined(text, 3) is None


def test_an_alias_bomb_spread_over_parts_is_refused_as_the_whole_is():
    head = "version: 1\na: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{x}: &{x} [{', '.join([f'*{y}'] * 10)}]\n" for y, x in ("ab", "bc", "cd")
    )  # *c: 1,111 values
    text = head + "checks:\n" + items(130, "  - {{name: c{i}, url: 'http://h/', v: *c}}\n")
    assert parse_document(text, "c.yaml", ENV).errors  # the whole text expands too far
    cut = plan(text, 2)
    assert cut is not None and not any(parse_document(part, "c.yaml", ENV).errors for part in cut.parts)  # each part alone would not
    assert joined(text, 2) is None


@pytest.mark.parametrize("text", [*SPLIT.values(), *NOT_JOINED.values()][::3], ids=str)
def test_through_child_processes_the_document_is_the_whole_parse(text, monkeypatch):
    monkeypatch.setattr(child, "CHILD_MIN_CHARS", 1)
    monkeypatch.setattr(child.os, "cpu_count", lambda: 3)
    job = child.start(text, "c.yaml", ENV)
    assert isinstance(job, child.SplitParse)
    same(parse_document(text, "c.yaml", ENV), job.result())


def test_a_part_whose_child_dies_is_one_refusal(monkeypatch):
    monkeypatch.setattr(child, "CHILD_MIN_CHARS", 1)
    monkeypatch.setattr(child.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(child, "COMMAND", [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    job = child.start(SPLIT["one line each"], "big.yaml", ENV)
    assert isinstance(job, child.SplitParse)
    with pytest.raises(ConfigInvalid) as refused:
        job.result()
    assert str(refused.value) == "big.yaml:1:1: config not loaded: the process parsing it was killed (SIGKILL)"


def test_small_texts_and_one_core_are_parsed_whole():
    text = SPLIT["one line each"]
    assert len(text) < child.CHILD_MIN_CHARS and isinstance(child.start(text, "c.yaml", ENV), child.ParseJob)
