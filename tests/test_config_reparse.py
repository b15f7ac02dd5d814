"""One config file loaded again (config/reparse.py): only the items an edit changed are parsed, and the
result is exactly the whole load's, refusals (every error, at its place) included."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse_agent.config import ConfigInvalid, Memo, load_config, reparse
from pulse_agent.config.reparse import Kept

ENV = {"TOKEN": "s3cret", "PORT": "8080"}
HEAD = "version: 1\nagent: {max_concurrency: 64}\ndefaults: {timeout: 5s}\nchecks:\n"
HEADS = [
    HEAD,
    "version: 1\nagent: {max_concurrency: 64}\ndefaults: {timeout: 3s, labels: {team: a}}\nchecks:\n",
    "version: 1\nnotifiers: {ops: {urls: ['json://127.0.0.1:9/']}}\nchecks:\n",
    "version: 1\nagent: {listen: '127.0.0.1:${PORT}'}\nchecks:\n",
    "version: 1\nbase: &b {X: y}\nchecks:\n",  # an anchor in the head: always the whole load
    "version: 1\nchecks:\n\n",  # a blank line before the first item
]


def item(i: int, form: int) -> str:
    """One check item's text in one of several forms."""
    forms = [
        f"  - {{name: c{i}, url: 'http://127.0.0.1:9/{i}', schedule: 60s}}\n",
        f"  - name: c{i}\n    url: http://127.0.0.1:9/{i}\n    labels: {{team: b}}\n",
        f"  - name: c{i}\n    # a note\n    url: http://127.0.0.1:9/{i}\n\n",
        f"  - {{name: c{i}, url: 'http://127.0.0.1:${{PORT}}/', headers: {{Authorization: 'Bearer ${{TOKEN}}'}}}}\n",
        f"  - {{name: c{i}, url: 'http://127.0.0.1:9/?a={i}&b=2', depends_on: [c0]}}\n",
        f"  - name: c{i}\n    url: http://127.0.0.1:9/\n    method: POST\n    body: |+\n      x\n\n",
        f"  - {{name: c{i},\n     url: 'http://127.0.0.1:9/{i}'}}\n",  # a flow mapping over two lines
        f"- {{name: c{i}, url: 'http://127.0.0.1:9/{i}'}}\n",  # at the key's indentation: among others, not cut
    ]
    return forms[form % len(forms)]


BROKEN = [
    "  - {name: bad, url: 'http://127.0.0.1:9/', schedule: every banana}\n",  # the builder refuses it
    "  - {name: bad, url: 'http://127.0.0.1:9/', colour: red}\n",  # the schema refuses it
    "  - {name: bad, url: [}\n",  # invalid YAML
    "  - {name: bad, url: 'http://127.0.0.1:9/${NOPE}'}\n",  # an unset variable
    "  - {name: c1, url: 'http://127.0.0.1:9/dup'}\n",  # a duplicate name (when c1 is there)
    "  - {name: bad, url: 'http://127.0.0.1:9/', depends_on: [nobody]}\n",  # a dependency on no check
    "  - {name: bad, name: worse, url: 'http://127.0.0.1:9/'}\n",  # a duplicate key
    "  - &a {name: bad, url: 'http://127.0.0.1:9/'}\n",  # an anchor: the text is not cut
    "  # a comment at the list's indentation\n",  # not cut either
]


def text_of(head: str, items: list[str], newline: bool = True) -> str:
    text = head + "".join(items)
    return text if newline else text.rstrip("\n")


def outcome(path: Path, env: dict[str, str], memo: Memo | None) -> object:
    """The spec, or the refusal's error lines."""
    try:
        return load_config(path, env, memo)
    except ConfigInvalid as exc:
        return [str(e) for e in exc.errors]


edit = st.one_of(
    st.tuples(st.just("change"), st.integers(0, 99), st.integers(0, 7)),
    st.tuples(st.just("add"), st.integers(0, 99), st.integers(0, 7)),
    st.tuples(st.just("remove"), st.integers(0, 99), st.just(0)),
    st.tuples(st.just("swap"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("head"), st.integers(0, len(HEADS) - 1), st.just(0)),
    st.tuples(st.just("break"), st.integers(0, 99), st.integers(0, len(BROKEN) - 1)),
    st.tuples(st.just("env"), st.integers(0, 1), st.just(0)),
    st.tuples(st.just("newline"), st.just(0), st.just(0)),
)


def apply(state: dict, op: tuple[str, int, int]) -> None:
    """One edit of state (head, items, env, newline), in place."""
    kind, a, b = op
    items: list[str] = state["items"]
    fresh = state["next"]
    if kind == "change" and items:
        items[a % len(items)] = item(fresh, b)
    elif kind == "add":
        items.insert(a % (len(items) + 1), item(fresh, b))
    elif kind == "remove" and len(items) > 1:
        del items[a % len(items)]
    elif kind == "swap" and items:
        i, j = a % len(items), b % len(items)
        items[i], items[j] = items[j], items[i]
    elif kind == "head":
        state["head"] = HEADS[a]
    elif kind == "break":
        items.insert(a % (len(items) + 1), BROKEN[b])
    elif kind == "env":
        state["env"] = {"TOKEN": f"t{a}", "PORT": f"808{a}"}  # the head's ${PORT} too
    elif kind == "newline":
        state["newline"] = not state["newline"]
    state["next"] = fresh + 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    forms=st.lists(st.integers(0, 7), min_size=1, max_size=30),
    edits=st.lists(st.lists(edit, min_size=1, max_size=3), min_size=1, max_size=3),
)
def test_a_reload_gives_what_the_whole_load_gives(tmp_path, forms, edits):
    path = tmp_path / "pulse.yaml"
    state = {"head": HEAD, "items": [item(i, f) for i, f in enumerate(forms)], "env": ENV, "newline": True, "next": 100}
    memo = Memo()
    path.write_text(text_of(state["head"], state["items"]))
    assert outcome(path, ENV, memo) == outcome(path, ENV, None)
    for step in edits:  # each reload starts from what the last one (good or refused) left
        for op in step:
            apply(state, op)
        path.write_text(text_of(state["head"], state["items"], state["newline"]))
        assert outcome(path, state["env"], memo) == outcome(path, state["env"], None)


# pieces a character-level edit inserts anywhere: what ends an item, starts one, opens or closes a value, or
# makes the text uncuttable; the region between the texts' common prefix and suffix must cope with each
PIECES = [" ", "\n", "-", "  - ", "\n  - ", "{", "}", ":", ",", "a", "$", "\\", "#", "'", "\n\n", "&x ", "*x", "|+\n",
          "  - {name: zz, url: 'http://127.0.0.1:9/z'}\n"]  # fmt: skip
chars = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3), st.sampled_from(PIECES)), min_size=1, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    forms=st.lists(st.integers(0, 6), min_size=1, max_size=12), head=st.sampled_from(HEADS), steps=st.lists(chars, min_size=1, max_size=3)
)
def test_a_reload_after_edits_of_characters_gives_what_the_whole_load_gives(tmp_path, forms, head, steps):
    path = tmp_path / "pulse.yaml"
    text = text_of(head, [item(i, f) for i, f in enumerate(forms)])
    memo = Memo()
    path.write_text(text)
    assert outcome(path, ENV, memo) == outcome(path, ENV, None)
    for step in steps:
        for at, cut, piece in step:  # replace up to 3 characters at `at` by piece
            at %= len(text) + 1
            text = text[:at] + piece + text[at + cut :]
        path.write_text(text)
        assert outcome(path, ENV, memo) == outcome(path, ENV, None)


@pytest.fixture
def parsed(monkeypatch):
    """The texts parse_document is given by a reload (config/reparse.py's parses only)."""
    texts: list[str] = []
    real = reparse.parse_document

    def spy(text, *args, **kwargs):
        texts.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(reparse, "parse_document", spy)
    return texts


def test_a_reload_parses_only_the_changed_item_and_the_head(tmp_path, parsed):
    path = tmp_path / "pulse.yaml"
    items = [item(i, i % 7) for i in range(30)]
    memo = Memo()
    path.write_text(text_of(HEAD, items))
    load_config(path, ENV, memo)
    assert isinstance(memo.kept, Kept)
    items[7] = item(7, 1).replace("team: b", "team: c")
    path.write_text(text_of(HEAD, items))
    spec = load_config(path, ENV, memo)
    # the head alone (is it a bare `checks:`?), then with the changed item and those naming a ${VAR} (the
    # environment may have changed): nothing else
    assert parsed == [HEAD, HEAD + "".join(i for i in items if "$" in i or i is items[7])]
    assert spec == load_config(path, ENV)
    assert dict(next(c for c in spec.checks if c.name == "c7").labels) == {"team": "c"}


def test_an_unchanged_text_loaded_again_parses_only_its_head(tmp_path, parsed):
    path = tmp_path / "pulse.yaml"
    path.write_text(text_of(HEAD, [item(i, 0) for i in range(50)]))
    memo = Memo()
    first = load_config(path, ENV, memo)
    assert load_config(path, ENV, memo) == first
    assert parsed == [HEAD]


def test_a_refused_reload_places_its_errors_as_the_whole_load_does(tmp_path):
    path = tmp_path / "pulse.yaml"
    items = [item(i, i % 7) for i in range(20)]
    memo = Memo()
    path.write_text(text_of(HEAD, items))
    load_config(path, ENV, memo)
    kept = memo.kept
    items.insert(12, "  - {name: c3, url: 'http://127.0.0.1:9/', schedule: every banana}\n")
    path.write_text(text_of(HEAD, items))
    refused = outcome(path, ENV, memo)
    assert refused == outcome(path, ENV, None)
    line = text_of(HEAD, items).splitlines().index(items[12].rstrip("\n")) + 1
    assert any("duplicate check name 'c3' (first at line" in e for e in refused)
    assert any(f":{line}:54: checks[12].schedule" in e for e in refused)
    assert memo.kept is kept  # a refused load keeps what the last good one left


def test_the_kept_state_is_small(tmp_path):
    path = tmp_path / "pulse.yaml"
    n = 5000
    path.write_text(text_of(HEAD, [item(i, 0) for i in range(n)]))
    memo = Memo()
    load_config(path, ENV, memo)
    assert memo.kept is not None
    assert memo.kept.size < 40 * n  # the text alone is about 60 bytes a check; the digests 16


async def test_a_file_reload_reads_the_config_once_and_parses_only_the_edit(tmp_path, httpserver, monkeypatch, parsed):
    """The running agent: the files read for their digest are the ones loaded, and the memo of the start-up's
    load makes the first reload parse just the added item."""
    import pulse_agent.config as config_package
    from pulse_agent.live import reloader
    from tests.test_reload_refused import config, memo_agent, running

    httpserver.expect_request("/a").respond_with_data("ok")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config(httpserver, "a"))
    agent = memo_agent(tmp_path, cfg)
    reads: list[str] = []
    real = reloader.read_sources
    for module in (reloader, config_package):  # the reloader's digest, load_config's read
        monkeypatch.setattr(module, "read_sources", lambda path: reads.append(str(path)) or real(path))
    async with running(agent):
        cfg.write_text(config(httpserver, "a", "b"))
        outcome = await agent.reloader.reload_if_changed()
        assert outcome is not None and outcome.ok and outcome.diff is not None
        assert outcome.diff.checks.added == ("b",)
        assert reads == [str(cfg)]  # for the digest; load_config took those very files
        assert len(parsed) == 2 and parsed[1].endswith(config(httpserver, "b").split("checks:\n")[1])  # the head, then it and the edit


def test_lines_of_a_quoted_string_that_look_like_the_list_are_never_taken_for_its_items(tmp_path: Path) -> None:
    """`checks :` opens a flow list whose quoted string spans a `checks:` line and `  - ` lines: they are no items,
    so the reload must not pair them with checks by count (a removed check came back with old values)."""
    old = (
        "version: 1\nchecks : [{url: 'http://127.0.0.1:9/0', labels: {note: \"a\nchecks:\n  - x\n"
        "  - y\"}, name: c0}, {name: c1, url: 'http://127.0.0.1:9/1'}]\n"
    )
    new = old.replace("  - y\"}, name: c0}, {name: c1, url: 'http://127.0.0.1:9/1'}]", '  - z"}, name: c5}]')
    path, memo = tmp_path / "pulse.yaml", Memo()
    path.write_text(old)
    assert [c.name for c in load_config(path, {}, memo).checks] == ["c0", "c1"]
    path.write_text(new)
    reloaded = load_config(path, {}, memo)
    assert [c.name for c in reloaded.checks] == ["c5"]
    assert reloaded == load_config(path, {}, None)


def test_an_item_naming_its_variable_through_an_escape_follows_the_environment(tmp_path: Path) -> None:
    """"\\x24{PATHPART}" has no '$' in its text, but is `${PATHPART}` once parsed."""
    head = "version: 1\nchecks:\n"
    a = '  - {name: a, url: "http://127.0.0.1:9/\\x24{PATHPART}"}\n'
    b = "  - {name: b, url: 'http://127.0.0.1:9/b'}\n"
    path, memo = tmp_path / "pulse.yaml", Memo()
    path.write_text(head + a)
    assert load_config(path, {"PATHPART": "old"}, memo).checks[0].url.endswith("/old")
    path.write_text(head + a + b)  # an edit elsewhere
    reloaded = load_config(path, {"PATHPART": "new"}, memo)
    assert reloaded.checks[0].url.endswith("/new")
    assert reloaded == load_config(path, {"PATHPART": "new"}, None)


@pytest.mark.parametrize("at", [0, 1, 37, 79, 80])
def test_an_added_check_parses_it_alone_and_takes_every_other_spec_as_it_was(tmp_path, parsed, at):
    """Only the added item is parsed (with the head); the checks before and after it are the last load's own
    spec objects, found by position (the texts' common prefix and suffix), not looked up one by one."""
    path = tmp_path / "pulse.yaml"
    items = [item(i, 0) for i in range(80)]
    memo = Memo()
    path.write_text(text_of(HEAD, items))
    before = load_config(path, ENV, memo).checks
    added = item(500, 1)
    path.write_text(text_of(HEAD, [*items[:at], added, *items[at:]]))
    parsed.clear()
    after = load_config(path, ENV, memo).checks
    assert after == load_config(path, ENV).checks
    assert [c.name for c in after] == [c.name for c in before[:at]] + ["c500"] + [c.name for c in before[at:]]
    assert all(new is old for new, old in zip([*after[:at], *after[at + 1 :]], before, strict=True))
    # the head (is it a bare `checks:`?), then it with the added item, or with it and the item it was written before
    assert parsed[0] == HEAD and parsed[1] in (HEAD + added, HEAD + added + "".join(items[at : at + 1]))
    assert len(parsed) == 2


def loaded(path: Path, items: list[str]) -> Memo:
    """The memo of a good load of HEAD and items, written to path."""
    memo = Memo()
    path.write_text(text_of(HEAD, items))
    load_config(path, ENV, memo)
    return memo


def test_removing_the_last_checks_and_editing_the_first_reuse_the_rest(tmp_path, parsed):
    path = tmp_path / "pulse.yaml"
    items = [item(i, i % 3) for i in range(20)]
    memo = loaded(path, items)
    for edited in (items[:15], [item(0, 1).replace("team: b", "team: z"), *items[1:15]], items[1:15]):
        path.write_text(text_of(HEAD, edited))
        parsed.clear()
        assert load_config(path, ENV, memo) == load_config(path, ENV)
        assert len(parsed) <= 2 and all(len(text) < len(HEAD) + 200 for text in parsed)  # never the whole list


def test_a_head_whose_defaults_follow_the_environment_rebuilds_every_check_in_the_new_context(tmp_path):
    head = "version: 1\ndefaults: {labels: {stage: '${STAGE}'}}\nchecks:\n"
    items = [item(i, 0) for i in range(10)]
    path, memo = tmp_path / "pulse.yaml", Memo()
    path.write_text(text_of(head, items))
    load_config(path, {"STAGE": "a"}, memo)
    path.write_text(text_of(head, [*items, item(10, 0)]))
    reloaded = load_config(path, {"STAGE": "b"}, memo)
    assert reloaded == load_config(path, {"STAGE": "b"})
    assert {dict(c.labels)["stage"] for c in reloaded.checks} == {"b"}


def test_a_check_with_keys_of_several_types_is_refused_as_the_whole_load_refuses_it(tmp_path):
    """`1:` beside `name:`: the memo's canonical text of the item cannot sort its keys, which raised a
    TypeError at a reload (the agent refused it with that instead of the schema's error at its place)."""
    path = tmp_path / "pulse.yaml"
    memo = loaded(path, [item(0, 0)])
    path.write_text(text_of(HEAD, [item(0, 0), "  - {name: b, url: 'http://127.0.0.1:9/b', 1: x}\n"]))
    refused = outcome(path, ENV, memo)
    assert refused == outcome(path, ENV, None)
    assert any("checks[1][1]: unknown key '1'" in e for e in refused)


def test_a_reused_check_that_asked_this_machine_asks_it_again(tmp_path):
    """A check whose build read a file (ca_file) is built again at every load: a reload after the file went
    away refuses what a fresh load refuses, at the same place, and accepts again once it is back."""
    from pulse_agent.validators import SHELL_VALIDATORS

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    path = tmp_path / "pulse.yaml"
    head = "version: 1\nchecks:\n"
    a = f"  - {{name: a, url: 'https://127.0.0.1:9/', ca_file: '{ca}'}}\n"
    b = "  - {name: b, url: 'http://127.0.0.1:9/b'}\n"

    def names_or_errors(memo: Memo | None) -> list[str]:
        try:
            return [c.name for c in load_config(path, {}, memo, validators=SHELL_VALIDATORS).checks]
        except ConfigInvalid as exc:
            return [str(e) for e in exc.errors]

    memo = Memo()
    path.write_text(head + a)
    assert names_or_errors(memo) == ["a"]
    ca.unlink()
    for text in (head + a + b, head + b + a):  # added after it, and before it (its position moves)
        path.write_text(text)
        refused = names_or_errors(memo)
        assert refused == names_or_errors(None) and "ca_file" in refused[0] and "is not a readable file" in refused[0]
    ca.write_text("x")
    assert names_or_errors(memo) == ["b", "a"]
    path.write_text(head + a + b)
    ca.unlink()
    assert names_or_errors(memo) == names_or_errors(None) != ["a", "b"]
