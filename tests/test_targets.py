"""A URL's target is its origin's, cached, with its own path cut out per run: the same as parsing it whole,
and nothing kept per URL."""

from __future__ import annotations

import gc

from hypothesis import given, settings
from hypothesis import strategies as st

from pulse_agent.probe import connect
from pulse_agent.probe.connect import forget_targets, target_of
from pulse_agent.probe.target import Target
from pulse_agent.probe.wire import ProbeFailure

SCHEMES = st.sampled_from(["http://", "https://", "HTTPS://", "hTtp://", "ftp://", "http:/", "http:", "", " http://"])
NETLOCS = st.sampled_from(
    ["127.0.0.1", "127.0.0.1:8080", "h:80", "h:443", "H.Example", "u:p%40w@h", "u@h:1", "[::1]:9", "[::1", "::1]",
     "h:99999", "h:x", "", "b\u00fccher.example", "h\t", "a b", "[v1.x]", "xn--a", "h#", "@", ":8"]
)  # fmt: skip
RESTS = st.text(alphabet="/?#a%20\u00e9 \t\r\n\x01[]:@&=;", max_size=12)


def outcome(parse, url: str) -> object:
    """What parse makes of url: its target, or the failure it raises."""
    try:
        return parse(url)
    except ProbeFailure as exc:
        return (exc.failure.kind, exc.failure.message)


@settings(max_examples=2000, deadline=None)
@given(SCHEMES, NETLOCS, RESTS)
def test_a_target_cut_from_its_cached_origin_is_the_whole_parse(scheme, netloc, rest):
    url = scheme + netloc + rest
    assert outcome(target_of, url) == outcome(connect._parse, url)


def test_examples_parse_as_before():
    assert target_of("http://127.0.0.1:8080/c1?q=1#frag") == Target(False, "127.0.0.1", 8080, "127.0.0.1:8080", "/c1?q=1", True, None)
    assert target_of("https://h.example/a?#x").path == "/a" and target_of("https://h.example?q").path == "/?q"
    assert target_of("http://h/caf\u00e9 x").path == "/caf%C3%A9%20x"
    assert target_of("https://u:p@h:443").authorization == connect.basic_credentials("u", "p")


def test_nothing_is_kept_per_url():
    forget_targets()
    kept = [target_of(f"http://127.0.0.1:1/kept-{i}") for i in range(3)]
    for i in range(1000):
        target_of(f"http://127.0.0.1:1/run-{i}?k={i}")
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, Target) and o.host == "127.0.0.1" and o.port == 1]
    assert sorted(t.path for t in alive) == ["/", "/kept-0", "/kept-1", "/kept-2"]  # the origin, and what we hold
    assert all(t.host is kept[0].host for t in alive)
    del alive, kept
    forget_targets()
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Target) and o.port == 1 and o.path == "/"]
