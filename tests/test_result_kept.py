"""The agent keeps each check's last result packed (`kept`), and gives back one equal field for field, of the
same types, to the API, the status page and `pulse-agent check`."""

from __future__ import annotations

from dataclasses import fields

from hypothesis import given, settings
from hypothesis import strategies as st

from pulse_agent.live.events import EventHub
from pulse_agent.pipeline import ResultPipeline
from pulse_agent.result import ERROR_KINDS, Result, from_kept, kept
from pulse_agent.web.metrics import Metrics
from tests.conftest import spec

FLOATS = st.one_of(st.none(), st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, 1e-300, 1764661200.123456]))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)
RESULTS = st.builds(
    Result,
    check=st.just("c1"),
    ts=st.floats(allow_nan=False),
    ok=st.booleans(),
    degraded=st.booleans(),
    status_code=st.one_of(st.none(), st.integers(100, 599)),
    response_time_ms=FLOATS,
    error_kind=st.one_of(st.none(), st.sampled_from(ERROR_KINDS)),
    error=st.one_of(st.none(), st.text(max_size=40)),
    attempts=st.integers(1, 10),
    scheduled_ts=FLOATS,
    dns_ms=FLOATS,
    connect_ms=FLOATS,
    tls_ms=FLOATS,
    first_byte_ms=FLOATS,
    cert_expires=FLOATS,
    maintenance=st.booleans(),
    http_version=st.sampled_from([None, "1.0", "1.1", "2"]),
    tls_version=st.sampled_from([None, "1.2", "1.3"]),
    details=st.one_of(st.none(), st.dictionaries(st.text(max_size=5), JSON, max_size=4)),
)


def same(a: object, b: object) -> bool:
    """Equal, of the same types all the way down (True is not 1, 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, float):
        return a.hex() == b.hex()  # type: ignore[attr-defined]
    return a == b


@settings(max_examples=500, deadline=None)
@given(RESULTS)
def test_a_kept_result_comes_back_equal_field_for_field(result: Result):
    packed = kept(result, "c1")
    assert isinstance(packed, bytes)
    back = from_kept("c1", packed)
    assert back == result and all(same(getattr(back, f.name), getattr(result, f.name)) for f in fields(Result))


def test_what_marshal_cannot_write_as_it_is_is_kept_as_the_result():
    class Code(int):
        pass

    odd = Result("c1", 1.0, True, status_code=Code(200))
    assert kept(odd, "c1") is odd and from_kept("c1", odd) is odd
    other = Result("c2", 1.0, True)
    assert kept(other, "c1") is other  # the check's name is not written: one of another name stays whole


async def test_the_pipeline_answers_the_last_result_as_it_came():
    check = spec("http://127.0.0.1:1/", name="c1")
    pipeline = ResultPipeline(Metrics(), EventHub())
    pipeline.set_checks([check])
    assert pipeline.last("c1") is None
    first = Result("c1", 1764661200.25, False, status_code=503, response_time_ms=12.5, error_kind="status", error="status 503 not in [2xx]")
    second = Result("c1", 1764661260.25, True, status_code=200, response_time_ms=3.25, details={"answers": ["a", 1, None]})
    for result in (first, second):
        assert await pipeline.finished(check, result) == result
        assert pipeline.last("c1") == result and pipeline.status(check, 1764661300.0, False).last_result == result
    pipeline.set_checks([])
    assert pipeline.last("c1") is None
