"""The prober's HTTP/1.1 client on the wire: framing, encodings, interim answers, credentials and redirects."""

import asyncio
import gc
import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from werkzeug import Response as WzResponse

from pulse_agent.config.model import Expect
from pulse_agent.probe.connect import target_of
from pulse_agent.probe.wire import request_bytes
from tests.conftest import misbehaving, scripted, spec

GZ = gzip.compress(b"compressed ok")
BOMB = gzip.compress(b"0" * (2 * 1024 * 1024))  # 2 MiB inflated from about 2 KiB

# answer bytes -> (ok, status, error_kind) with the body expected to be exactly "<body>"
ANSWERS = [
    ("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<body>", "<body>", (True, 200, None)),
    ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<bo\r\n3\r\ndy>\r\n0\r\n\r\n", "<body>", (True, 200, None)),
    ("until close", b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n<body>", "<body>", (True, 200, None)),
    ("interim 100", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 6\r\n\r\n<body>", "<body>", (True, 201, None)),
    (
        "gzip",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(GZ), GZ),
        "compressed ok",
        (True, 200, None),
    ),
    (
        "deflate",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s" % (len(zlib.compress(b"z")), zlib.compress(b"z")),
        "z",
        (True, 200, None),
    ),
    (
        "latin-1",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Length: 4\r\n\r\ncaf\xe9",
        "caf\u00e9",
        (True, 200, None),
    ),
    ("no body 204", b"HTTP/1.1 204 No Content\r\n\r\n", "", (True, 204, None)),
    (
        "gzip bomb",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(BOMB), BOMB),
        "",
        (False, None, "body_too_large"),
    ),
    ("broken gzip", b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope", "", (False, None, "protocol")),
    ("chunk cut", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<bo\r\n", "", (False, None, "reset")),
    ("bad status line", b"HTTP/1.1 2OO OK\r\n\r\n", "", (False, None, "protocol")),
]


@pytest.mark.parametrize(("answer", "body", "want"), [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS])
async def test_response_framing_and_encodings(prober, answer, body, want):
    async with scripted(answer) as url:
        r = await prober.run(spec(url, timeout=3, expect=Expect(body_matches=f"\\A{body}\\Z")))
    assert (r.ok, r.status_code, r.error_kind) == want, r.error


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """What the cyclic collector found unreachable meanwhile (kept to look at instead of freed)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[object] = []
    try:
        yield found
    finally:
        gc.collect()
        found.extend(gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)


async def test_a_run_leaves_no_reader_for_the_cyclic_collector(prober):
    """Whatever the answer (framed, cut, refused, never sent), a run's reader and parser are freed when it
    ends: a cycle per run is promoted through the collector's generations and lengthens the agent's
    full collections, which stall the event loop (docs/performance.md)."""
    with cyclic_garbage() as garbage:
        for _, answer, _, _ in ANSWERS:
            async with scripted(answer) as url:
                await prober.run(spec(url, timeout=3))
        async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n") as url:
            await prober.run(spec(url, method="HEAD", timeout=3))
        for mode in ("hang", "reset", "garbage", "many-headers", "headers-then-close"):
            async with misbehaving(mode) as url:
                await prober.run(spec(url, timeout=0.3))
        await asyncio.sleep(0.05)  # the closed connections' connection_lost callbacks run
    left = sorted({type(o).__name__ for o in garbage} & {"_Reader", "HttpResponseParser", "RawResponse"})
    assert left == [], left


async def test_head_does_not_wait_for_the_body_its_content_length_announces(prober):
    async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n") as url:
        r = await prober.run(spec(url, method="HEAD", timeout=3))
    assert (r.ok, r.status_code) == (True, 200), r.error


async def test_the_request_on_the_wire(prober):
    seen: list[bytes] = []
    async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", seen) as url:
        await prober.run(spec(url, headers=(("User-Agent", "mine/1"), ("X-Token", "abc"))))
        port = url.rsplit(":", 1)[1].strip("/")
    lines = seen[0].decode("latin-1").split("\r\n")
    assert lines[0] == "GET / HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in lines and "Connection: close" in lines and "X-Token: abc" in lines
    assert [line for line in lines if line.lower().startswith("user-agent")] == ["User-Agent: mine/1"]  # the check's own wins


def test_request_bytes_and_targets():
    assert request_bytes("POST", "/x?a=1", [("Host", "h")], b"{}") == b"POST /x?a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"
    assert request_bytes("PUT", "/", [], None).endswith(b"Content-Length: 0\r\n\r\n")
    assert b"Content-Length" not in request_bytes("GET", "/", [], None)
    t = target_of("https://user:p%40ss@[::1]:8443/a%20b?q=1")
    assert (t.tls, t.host, t.port, t.host_header, t.path, t.ip) == (True, "::1", 8443, "[::1]:8443", "/a%20b?q=1", True)
    assert t.authorization == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert target_of("http://example.com").host_header == "example.com" and target_of("http://example.com").path == "/"
    assert target_of("https://b\u00fccher.example/").host == "xn--bcher-kva.example"


async def test_credentials_in_the_url_are_sent_as_basic_auth(httpserver, prober):
    httpserver.expect_request("/", headers={"Authorization": "Basic dXNlcjpwQHNz"}).respond_with_data("ok")
    r = await prober.run(spec(httpserver.url_for("/").replace("http://", "http://user:p%40ss@")))
    assert r.ok, r.error


async def test_credentials_follow_redirects_on_the_same_origin_only(httpserver, prober):
    seen: list[bytes] = []
    async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", seen) as elsewhere:
        httpserver.expect_request("/start").respond_with_data("", status=302, headers={"Location": "/same"})
        httpserver.expect_request("/same", headers={"Authorization": "Bearer t"}).respond_with_data(
            "", status=307, headers={"Location": elsewhere}
        )
        r = await prober.run(spec(httpserver.url_for("/start"), bearer_token="t"))
    assert (r.ok, r.status_code) == (True, 200), r.error
    assert b"authorization" not in seen[0].lower()


async def test_see_other_after_post_is_followed_with_a_get_without_body(httpserver, prober):
    httpserver.expect_request("/form", method="POST").respond_with_data("", status=303, headers={"Location": "/done"})
    httpserver.expect_request("/done", method="GET").respond_with_handler(
        lambda req: WzResponse("got " + req.method + " " + str(len(req.get_data())))
    )
    r = await prober.run(spec(httpserver.url_for("/form"), method="POST", body=b"a=1", expect=Expect(body_contains="got GET 0")))
    assert r.ok, r.error


async def test_a_kept_alive_connection_the_server_closed_is_replaced(prober):
    """The server answers keep-alive, then closes while idle: the next run connects anew and succeeds."""
    async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as url:
        first = await prober.run(spec(url, reuse_connections=True))
        await asyncio.sleep(0.05)  # the server's FIN arrives
        second = await prober.run(spec(url, reuse_connections=True))
    assert first.ok and second.ok, (first.error, second.error)
    assert second.connect_ms is not None  # a new connection


def test_parsed_urls_of_one_host_share_its_texts():
    """The URL cache holds a target per checked URL: one host's name and Host header are one text each."""
    a, b = target_of("http://127.0.0.1:8080/a"), target_of("http://127.0.0.1:" + "8080/b")
    assert (a.host, a.host_header, b.path) == ("127.0.0.1", "127.0.0.1:8080", "/b")
    assert a.host is b.host and a.host_header is b.host_header
