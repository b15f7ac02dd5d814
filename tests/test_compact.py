"""A worker's compact checks: each gives back a spec equal field for field, with the same types and exact
values (pickled alike), to the one the agent sent; checks written alike share their values."""

from __future__ import annotations

import pickle
from dataclasses import fields, replace
from pathlib import Path

import pytest

from pulse_agent.compact import compact
from pulse_agent.config import load_config
from pulse_agent.config.model import CheckSpec, Expect, Retries
from pulse_agent.schedule import Interval
from pulse_agent.workers import pack, read_message

ROOT = Path(__file__).resolve().parent.parent


def exact(spec: CheckSpec) -> bytes:
    """spec's field values as bytes that tell 1 from 1.0 and 0.0 from -0.0."""
    return pickle.dumps(tuple(getattr(spec, f.name) for f in fields(CheckSpec)))


def through_a_frame(specs: list[CheckSpec]) -> list[CheckSpec]:
    """specs as a worker unpickles them from a "checks" frame."""
    import asyncio

    async def read() -> list[CheckSpec]:
        reader = asyncio.StreamReader()
        reader.feed_data(pack(("checks", specs, [], False)))
        reader.feed_eof()
        message = await read_message(reader)
        assert message is not None
        return list(message[1])

    return asyncio.run(read())


def varied() -> list[CheckSpec]:
    base = CheckSpec("a", "http://127.0.0.1:1/a", timeout=5.0)
    return [
        base,
        replace(base, name="b", url="http://127.0.0.1:1/b"),
        replace(base, name="int-timeout", timeout=5),  # equal to 5.0, not the same value
        replace(base, name="negative-zero", timeout=-0.0),
        replace(base, name="zero", timeout=0.0),
        replace(base, name="headers", headers=(("X-A", "1"),), env_headers=frozenset({"x-a"})),
        replace(base, name="retries", retries=Retries(3, 1, 30.0)),  # 1 where the default has 1.0
        replace(base, name="expect", expect=Expect(max_response_time=0.8, body_contains="ok")),
        replace(base, name="schedule", schedule=Interval(30.0, "30s")),
        replace(base, name="off", enabled=False, body=b"x", method="POST"),
        replace(base, name="none", ca_file=None, slo=99.9),
        replace(base, name="tcp", kind="tcp", url="tcp://127.0.0.1:1", send=b"PING\r\n"),
    ]


@pytest.mark.parametrize("source", ["varied", "examples/full.yaml", "pulse.yaml"])
def test_every_compact_check_gives_back_the_spec_it_was_made_from_exactly(source: str) -> None:
    env = {"BACKUP_PUSH_TOKEN": "a-token-of-16-chars-or-more"}
    specs = varied() if source == "varied" else list(load_config(ROOT / source, env).checks)
    assert len(specs) >= 2
    for order in (specs, specs[::-1]):  # each spec once the template, once not
        received = through_a_frame(order)
        for sent, check in zip(order, compact(received), strict=True):
            again = check.spec()
            assert again == sent and exact(again) == exact(sent), sent.name
            assert (check.name, check.schedule, check.enabled) == (sent.name, sent.schedule, sent.enabled)


def test_checks_written_alike_share_their_numbers_and_parts_and_keep_only_what_differs() -> None:
    specs = through_a_frame([CheckSpec(f"c{i}", f"http://127.0.0.1:1/c{i}", timeout=5.0, max_body_size=2048) for i in range(50)])
    assert specs[1].timeout is not specs[2].timeout  # pickle gives each its own number
    checks = compact(specs)
    made = [c.spec() for c in checks]
    assert all(m.timeout is made[0].timeout and m.max_body_size is made[0].max_body_size for m in made)
    assert all(c._values is c.spec().url for c in checks[1:])  # the URL: all that differs from the template, kept alone


def test_compact_checks_compare_as_their_specs() -> None:
    a, b = compact(varied()[:2])
    again = compact([varied()[1]])[0]
    assert b == again and a != b
    assert compact([replace(varied()[1], timeout=6.0)])[0] != b


def test_a_value_equal_to_the_templates_but_not_the_same_is_kept_its_own() -> None:
    template = CheckSpec("a", "http://127.0.0.1:1/a", timeout=0.0, retries=Retries(2, 1.0))
    others = [replace(template, name="b", timeout=-0.0), replace(template, name="c", timeout=0), replace(template, name="d", retries=Retries(2, 1))]
    for sent, check in zip(others, compact(through_a_frame([template, *others]))[1:], strict=True):
        assert exact(check.spec()) == exact(sent), sent.name


def test_a_check_differing_by_one_tuple_or_by_nothing_gives_back_its_spec() -> None:
    template = CheckSpec("a", "http://127.0.0.1:1/a", headers=(("X-A", "1"),))
    one_tuple = replace(template, name="b", headers=(("X-B", "2"), ("X-C", "3")))  # the lone differing value is a tuple
    nothing = replace(template, name="c")
    two = replace(template, name="d", url="http://127.0.0.1:1/d", headers=())
    received = through_a_frame([template, one_tuple, nothing, two])
    for sent, check in zip([template, one_tuple, nothing, two], compact(received), strict=True):
        assert check.spec() == sent and exact(check.spec()) == exact(sent)
