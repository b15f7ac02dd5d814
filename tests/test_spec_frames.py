"""Specs in worker frames: every kind of check, with every kind of nested value, arrives equal to what
was sent (the frames pickle slotted dataclasses as their fields, not through dataclasses' own state)."""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import fields, is_dataclass
from pathlib import Path

from pulse_agent.config import load_config, parse_config
from pulse_agent.config.model import AgentSpec
from pulse_agent.workers import pack, read_message

ROOT = Path(__file__).resolve().parent.parent

MORE_KINDS = """\
version: 1
notifiers:
  pager: {urls: ['json://127.0.0.1:1/']}
maintenance: [{schedule: 'at 2026-11-22T12:00:00Z', duration: 45s}]
checks:
  - {name: d, url: 'dns://127.0.0.1:53', dns: {name: example.com, type: A}, expect: {rcode: NOERROR, answer_count: '>= 1'}}
  - {name: i, url: 'icmp://127.0.0.1', icmp: {count: 3, interval: 1s}, expect: {max_packet_loss: 10}}
  - name: s
    url: 'http://127.0.0.1/x'
    method: POST
    body: {a: [1, 2.5, null]}
    headers: {X-Token: '${PULSE_TEST_TOKEN}', Accept: text/plain}
    schedule: '0 */5 * * * *'
    slo: {objective: 99.9, burn_rate_alerts: {page: [pager]}}
    expect: {status: [200, 2xx, 200-204], json: {'$.a': '>= 1'}, body_matches: 'o+k', headers: {content-type: 'text/*'}}
    alert: {notify: [pager], remind_every: 1h}
    labels: {team: web}
  - {name: t, url: 'tcp://127.0.0.1:25', send: "HELO ${PULSE_TEST_TOKEN}\\r\\n", expect: {receive: '/^220/'}}
"""


def _same(a: object, b: object) -> bool:
    """Equal, of the same types all the way down (== alone would take a list for a tuple's twin)."""
    if type(a) is not type(b):
        return False
    if is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return a == b


def _through_a_frame(message: tuple[object, ...]) -> tuple[object, ...]:
    async def read() -> tuple[object, ...] | None:
        reader = asyncio.StreamReader()
        reader.feed_data(pack(message))
        reader.feed_eof()
        return await read_message(reader)

    got = asyncio.run(read())
    assert got is not None
    return got


def _specs(monkeypatch) -> AgentSpec:
    monkeypatch.setenv("PULSE_TEST_TOKEN", "s3cret")
    full = load_config(ROOT / "examples" / "full.yaml", placeholders=True)
    more = parse_config(MORE_KINDS, "more.yaml")
    return AgentSpec("x", checks=full.checks + more.checks, modules=full.modules)


def test_every_kind_of_check_crosses_a_frame_unchanged(monkeypatch):
    spec = _specs(monkeypatch)
    assert {c.kind for c in spec.checks} == {"http", "tcp", "tls", "dns", "icmp", "push"}
    sent = ("checks", list(spec.checks), ["gone"], True)
    got = _through_a_frame(sent)
    assert _same(got, sent)
    assert _same(pickle.loads(pickle.dumps(spec.checks)), got[1] and tuple(got[1]))  # as the standard pickle has it
    ran = _through_a_frame(("run", 7, spec.modules[0].template, 1.5))
    assert _same(ran, ("run", 7, spec.modules[0].template, 1.5))


def test_a_frame_shares_what_the_specs_share(monkeypatch):
    checks = list(_specs(monkeypatch).checks)
    got = _through_a_frame(("checks", checks + checks, [], False))[1]
    assert got[0] is got[len(checks)]  # one object sent twice arrives as one object


def test_a_checks_frame_of_many_pickles_arrives_whole_and_in_order(monkeypatch):
    import pulse_agent.workers

    monkeypatch.setattr(pulse_agent.workers, "SPECS_PER_PICKLE", 4)  # the specs travel as several pickles
    checks = list(_specs(monkeypatch).checks)
    assert len(checks) > 8
    sent = ("checks", checks, ["gone"], True)
    got = _through_a_frame(sent)
    assert _same(got, sent) and [c.name for c in got[1]] == [c.name for c in checks]
