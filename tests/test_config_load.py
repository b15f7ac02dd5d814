import pytest
import yaml

from pulse_agent.config.errors import Position
from pulse_agent.config.load import parse_document


def load(text, env=None):
    return parse_document(text, "p.yaml", env or {})


@pytest.mark.parametrize(
    ("yaml_value", "env", "expected"),
    [
        ("${PORT}", {"PORT": "8080"}, 8080),  # plain scalar: type resolved after expansion
        ('"${PORT}"', {"PORT": "8080"}, "8080"),  # quoted: stays a string
        ("${PORT:-9000}", {}, 9000),
        ("${FLAG:-true}", {}, True),
        ("http://${HOST:-localhost}:${PORT:-80}/x", {"HOST": "h"}, "http://h:80/x"),
        ("$${LITERAL}", {"LITERAL": "no"}, "${LITERAL}"),
        ("${EMPTY:-}", {}, None),
        ("'${A}${B}'", {"A": "x", "B": "y"}, "xy"),
        ("'price: $5'", {}, "price: $5"),
    ],
)
def test_env_expansion(yaml_value, env, expected):
    doc = load(f"v: {yaml_value}\n", env)
    assert doc.errors == []
    assert doc.data["v"] == expected


def test_unset_variable_is_an_error_naming_it_and_its_place():
    doc = load("a: 1\nb:\n  c: ${API_TOKEN}\n")
    [error] = doc.errors
    assert str(error) == "p.yaml:3:6: b.c: environment variable API_TOKEN is not set; set it or write ${API_TOKEN:-default}"


def test_bad_variable_reference():
    [error] = load("a: ${1BAD}\n").errors
    assert "bad variable reference ${1BAD}" in error.message


def test_positions_of_values_and_keys():
    doc = load("version: 1\nchecks:\n  - name: a\n    url: http://x\n")
    assert doc.values[("checks", 0, "url")] == Position("p.yaml", 4, 10)
    assert doc.keys[("checks", 0, "url")] == Position("p.yaml", 4, 5)
    assert doc.where(("checks", 0, "missing")) == Position("p.yaml", 3, 5)


def test_duplicate_key_is_an_error_at_the_second():
    doc = load("a: 1\nb: 2\na: 3\n")
    assert [str(e) for e in doc.errors] == ["p.yaml:3:1: a: duplicate key 'a' (first at line 1)"]
    assert doc.data == {"a": 1, "b": 2}


def test_yaml_syntax_error_has_a_place():
    [error] = load("a: [1, 2\nb: 3\n").errors
    assert error.position is not None and error.position.line == 2
    assert error.message.startswith("invalid YAML:")


def test_empty_file():
    [error] = load("# only a comment\n").errors
    assert "empty" in error.message


def test_merge_keys_and_anchors():
    doc = load("base: &b {timeout: 5s, method: GET}\nc: {<<: *b, method: POST}\n")
    assert doc.errors == []
    assert doc.data["c"] == {"timeout": "5s", "method": "POST"}


def test_unsafe_tags_are_refused():
    doc = load("a: !!python/object/apply:os.system ['true']\n")
    assert doc.errors and doc.data["a"] is None


def test_loading_leaves_garbage_collection_alone_and_the_shell_pause_nests(tmp_path, monkeypatch):
    import gc

    from pulse_agent.config import load_config
    from pulse_agent.gc_policy import gc_paused

    cfg = tmp_path / "p.yaml"
    cfg.write_text("version: 1\nchecks:\n  - {name: a, url: 'http://127.0.0.1:1/'}\n")
    switched: list[str] = []
    with monkeypatch.context() as m:
        m.setattr(gc, "disable", lambda: switched.append("disable"))
        m.setattr(gc, "enable", lambda: switched.append("enable"))
        assert load_config(cfg).checks[0].name == "a"
    assert switched == []  # loading is pure: it leaves the process-wide collector to the shell (cmd_run)
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a nested pause does not switch collection back on early
    assert gc.isenabled()


def test_every_value_and_key_has_the_place_yaml_gives_it():
    text = "version: 1\nchecks:\n  - {name: a, url: 'http://x', expect: {status: [200, 2xx]}}\n  - name: b\n    labels: {t: 1}\n"
    doc = load(text)
    want_values, want_keys = {}, {}

    def walk(node, path):  # the reference: PyYAML's own node marks
        want_values.setdefault(path, Position("p.yaml", node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                want_keys[(*path, k.value)] = Position("p.yaml", k.start_mark.line + 1, k.start_mark.column + 1)
                walk(v, (*path, k.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    walk(yaml.compose(text), ())
    assert dict(doc.values) == want_values and len(doc.values) == len(want_values) > 10
    assert dict(doc.keys) == want_keys and ("checks", 1, "labels", "t") in doc.keys
    assert doc.values.get(("nowhere",)) is None and ("nowhere",) not in doc.values
