"""A config directory: every *.yaml / *.yml merged, conflicts named with both files."""

import pytest

from pulse_agent.config import ConfigInvalid, load_config


def write(root, **files):
    root.mkdir(exist_ok=True)
    for name, text in files.items():
        (root / name.replace("__", ".")).write_text(text)
    return root


def errors(root) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        load_config(root)
    return [str(e) for e in info.value.errors]


def test_files_merge_in_name_order(tmp_path):
    root = write(
        tmp_path / "conf",
        base__yaml="version: 1\nagent: {listen: '127.0.0.1:0'}\ndefaults: {timeout: 3s}\nnotifiers:\n  ops: {urls: ['json://127.0.0.1:9/x']}\n",
        api__yaml="version: 1\nchecks:\n  - {name: api, url: 'http://127.0.0.1/api', alert: {notify: [ops]}}\n",
        web__yml="version: 1\nchecks:\n  - {name: web, url: 'http://127.0.0.1/'}\nmaintenance: [{schedule: '@daily', duration: 1h}]\n",
        notes__txt="not a config",
        _hidden="",
    )
    (root / ".editor-swap.yaml").write_text("version: [broken")
    spec = load_config(root)
    assert [c.name for c in spec.checks] == ["api", "web"]  # api.yaml, base.yaml, web.yml
    assert all(c.timeout == 3 for c in spec.checks)  # defaults from another file apply
    assert spec.agent.listen == "127.0.0.1:0"
    assert [n.name for n in spec.notifiers] == ["ops"]
    assert len(spec.checks[0].maintenance) == 1  # top-level windows from any file
    assert spec.source == str(root) and len(spec.digest) == 12


def test_the_digest_follows_content_not_time(tmp_path):
    root = write(tmp_path / "conf", a__yaml="version: 1\n")
    before = load_config(root).digest
    (root / "a.yaml").write_text("version: 1\n")
    assert load_config(root).digest == before
    (root / "b.yaml").write_text("version: 1\nchecks: []\n")
    assert load_config(root).digest != before


def test_conflicts_name_both_files_and_errors_keep_file_local_numbers(tmp_path):
    root = write(
        tmp_path / "conf",
        a__yaml="version: 1\nagent: {listen: '127.0.0.1:1'}\nnotifiers:\n  ops: {urls: ['json://127.0.0.1:9/x']}\nchecks:\n  - {name: api, url: 'http://127.0.0.1/'}\n",
        b__yaml=(
            "version: 1\nagent: {listen: '127.0.0.1:2'}\nnotifiers:\n  ops: {urls: ['json://127.0.0.1:9/y']}\n"
            "checks:\n  - {name: web, url: 'http://127.0.0.1/'}\n  - {name: api, url: 'http://127.0.0.1/', timeout: 0}\n"
        ),
    )
    a, b = root / "a.yaml", root / "b.yaml"
    assert errors(root) == [
        f"{b}:2:9: agent.listen: set in two files (first in {a}:2:9); set each setting in one file",
        f"{b}:4:3: notifiers.ops: notifier 'ops' is defined twice (first in {a}:4:3); names must be unique across files",
        f"{b}:7:12: checks[1].name: duplicate check name 'api' (first at {a}:6:12)",
        f"{b}:7:52: checks[1].timeout: must be more than 0",
    ]


def test_each_file_is_checked_by_the_schema_on_its_own(tmp_path):
    root = write(
        tmp_path / "conf", a__yaml="version: 1\nchecks: []\n", b__yaml="checks:\n  - {name: x, url: 'http://127.0.0.1/', tiemout: 1s}\n"
    )
    b = root / "b.yaml"
    assert errors(root) == [
        f"{b}:1:1: missing required key 'version'",
        f"{b}:2:41: checks[0].tiemout: unknown key 'tiemout'; did you mean 'timeout'?",
    ]


def test_an_empty_directory_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert errors(tmp_path / "empty") == [f"config directory '{tmp_path / 'empty'}' has no *.yaml or *.yml files"]


def test_a_memo_changes_no_answer_and_keeps_only_what_the_last_load_used(tmp_path):
    from pulse_agent.config import Memo

    cfg = tmp_path / "pulse.yaml"
    checks = [f"  - {{name: c{i}, url: 'http://127.0.0.1/{i}', timeout: {i + 1}s}}" for i in range(50)]
    cfg.write_text("version: 1\ndefaults: {schedule: 30s}\nchecks:\n" + "\n".join(checks) + "\n")
    memo = Memo()
    first = load_config(cfg, memo=memo)
    assert first == load_config(cfg) and len(memo.specs) == 50 and len(memo.valid) == 50
    again = load_config(cfg, memo=memo)
    assert all(a is b for a, b in zip(first.checks, again.checks, strict=True))  # reused, so the diff is cheap

    cfg.write_text(
        "version: 1\ndefaults: {schedule: 30s}\nchecks:\n"
        + "\n".join([*checks[:10], "  - {name: c10, url: 'http://x/', timeout: 0}"])
        + "\n"
    )
    with pytest.raises(ConfigInvalid) as info:
        load_config(cfg, memo=memo)  # a remembered valid check does not hide a new error
    assert [str(e) for e in info.value.errors] == [f"{cfg}:14:44: checks[10].timeout: must be more than 0"]
    assert len(memo.specs) == 50  # a failed load forgets nothing

    cfg.write_text("version: 1\ndefaults: {schedule: 45s}\nchecks:\n" + "\n".join(checks[:10]) + "\n")
    changed = load_config(cfg, memo=memo)
    assert changed == load_config(cfg) and all(c.schedule.text == "45s" for c in changed.checks)  # defaults are part of the key
    assert len(memo.specs) == 10 and len(memo.documents) == 0  # only what this load used (one file: no document kept)


def test_a_memo_reuses_the_specs_of_unchanged_files_and_rebuilds_what_an_edit_touches(tmp_path):
    from pulse_agent.config import Memo

    def part(k: int, timeout: str = "5s") -> str:
        return "version: 1\nchecks:\n" + "".join(f"  - {{name: c{k}-{i}, url: 'http://127.0.0.1/{i}', timeout: {timeout}}}\n" for i in range(5))

    root = write(tmp_path / "conf", a__yaml="version: 1\ndefaults: {schedule: 30s}\n", b__yaml=part(1), c__yaml=part(2))
    memo = Memo()
    first = load_config(root, memo=memo)
    (root / "c.yaml").write_text(part(2, "4s"))
    edited = load_config(root, memo=memo)
    assert edited == load_config(root)  # the memo changes no answer
    assert all(a is b for a, b in zip(first.checks[:5], edited.checks[:5], strict=True))  # b.yaml: reused
    assert [c.timeout for c in edited.checks[5:]] == [4.0] * 5
    (root / "a.yaml").write_text("version: 1\ndefaults: {schedule: 45s}\n")  # defaults are part of every check's key
    again = load_config(root, memo=memo)
    assert again == load_config(root) and {c.schedule.text for c in again.checks} == {"45s"}
    assert len(memo.specs) == len(memo.items) == 10  # only what the last load used


def test_positions_in_a_directory_point_into_each_file(tmp_path):
    from pulse_agent.config.files import read_sources
    from pulse_agent.config.load import parse_document
    from pulse_agent.config.merge import merge_documents

    root = write(tmp_path / "conf", a__yaml="version: 1\nchecks:\n  - {name: x, url: 'http://h/'}\n", b__yaml="version: 1\n\nchecks:\n  - name: y\n    url: 'http://h/'\n")
    docs = [parse_document(s.text, s.name, {}) for s in read_sources(root)]
    merged = merge_documents(docs, str(root))
    a, b = str(root / "a.yaml"), str(root / "b.yaml")
    assert str(merged.values[("checks", 1, "url")]) == f"{b}:5:10" and str(merged.keys[("checks", 1, "name")]) == f"{b}:4:5"
    assert str(merged.values[("checks",)]) == f"{a}:3:3"  # the first file that has it
    assert merged.local_path(("checks", 1, "url")) == ("checks", 0, "url")
    assert len(merged.values) == len(docs[0].values) + len(docs[1].values) - 3  # (), version, checks: once
    assert ("checks", 2) not in merged.values and merged.where(("checks", 1, "nope")) == merged.values[("checks", 1)]


def test_a_single_file_memo_reuses_specs_by_text_and_holds_no_parsed_items(tmp_path):
    from pulse_agent.config import Memo

    def text(timeout: str) -> str:
        return "version: 1\nchecks:\n" + "".join(f"  - {{name: c{i}, url: 'http://127.0.0.1/{i}', timeout: {timeout if i == 0 else '5s'}}}\n" for i in range(5))

    path = tmp_path / "pulse.yaml"
    path.write_text(text("5s"))
    memo = Memo()
    first = load_config(path, memo=memo)
    path.write_text(text("4s"))
    edited = load_config(path, memo=memo)
    assert edited == load_config(path) and edited.checks[0].timeout == 4.0
    assert all(a is b for a, b in zip(first.checks[1:], edited.checks[1:], strict=True))  # unchanged checks: reused
    # A single file's document is not remembered, so no item of it comes back as the same object: none is held.
    assert len(memo.specs) == 5 and memo.items == {}
