"""One table of wire cases run against our prober and against httpx, the reference client.

Each case is a pair of raw HTTP/1.1 origins on 127.0.0.1 (A, and B for cross-origin redirects)
and one request. Both clients must come to the same observable outcome: the error kind (None for
a 2xx answer, "status" for another status), the status, the decoded body, and the requests the
origins saw. Where httpx comes to another outcome, the case says so, and the choice is listed in
docs/probes.md under "Where we differ from httpx" (a test below checks the list).
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pulse_agent.config.model import CheckSpec, Transport
from pulse_agent.probe.http import Prober, _request_headers
from pulse_agent.result import Failure
from tests.wire_servers import Origin, Seen, origin

WATCHED = ("host", "authorization", "proxy-authorization", "cookie", "x-api-key", "x-name")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "probes.md"

OK2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
GZ = gzip.compress(b"zipped")
ZL = zlib.compress(b"zlib")
RAW_DEFLATE = zlib.compress(b"raw")[2:-4]


def redirect(status: int, location: str) -> bytes:
    return b"HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (status, location.encode("utf-8"))


def echo(seen: Seen) -> bytes:
    """An answer saying which method and body the request had."""
    text = f"{seen.method} {seen.body.decode()}".encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text)


@dataclass(frozen=True)
class Case:
    """A request, the origins' answers, and the outcome both clients must come to."""

    name: str
    routes: dict[str, object]  # origin A: request target -> answer; "{B}" in a Location is origin B's URL
    want: tuple[object, ...]  # (kind, status, body, seen): seen lists "A GET /x header=value ..."
    other: dict[str, object] = field(default_factory=dict)  # origin B
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    env_headers: frozenset[str] = frozenset()  # headers whose values came from ${VAR}s
    httpx: tuple[object, ...] | None = None  # httpx's outcome, where it differs
    differs: str | None = None  # the docs/probes.md entry naming the difference
    via_httpx: tuple[object, ...] | None = None  # our httpx transport's outcome, where it differs from the fast path's
    transport_differs: str | None = None  # the docs/probes.md entry naming that difference


CASES = [
    # framing
    Case("content-length", {"/": b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<body>"}, (None, 200, b"<body>", ["A GET /"])),
    Case(
        "chunked",
        {"/": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<bo\r\n3;ext=1\r\ndy>\r\n0\r\nTrailer: x\r\n\r\n"},
        (None, 200, b"<body>", ["A GET /"]),
    ),
    Case("close-delimited", {"/": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n<body>"}, (None, 200, b"<body>", ["A GET /"])),
    Case("http/1.0", {"/": b"HTTP/1.0 200 OK\r\n\r\nold"}, (None, 200, b"old", ["A GET /"])),
    Case("no reason phrase", {"/": b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"}, (None, 200, b"ok", ["A GET /"])),
    Case("body cut short", {"/": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"}, ("reset", None, None, ["A GET /"])),
    Case(
        "chunk cut short", {"/": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<bo\r\n"}, ("reset", None, None, ["A GET /"])
    ),
    Case("no answer", {"/": b""}, ("reset", None, None, ["A GET /"])),
    Case("not http", {"/": b"SSH-2.0-OpenSSH_9.6\r\n\r\n"}, ("protocol", None, None, ["A GET /"])),
    Case("bad status", {"/": b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"}, ("protocol", None, None, ["A GET /"])),
    Case(
        "conflicting content-lengths",
        {"/": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"},
        ("protocol", None, None, ["A GET /"]),
    ),
    Case(
        "chunked and content-length",
        {"/": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
        ("protocol", None, None, ["A GET /"]),
        httpx=(None, 200, b"ok", ["A GET /"]),
        differs="Content-Length with Transfer-Encoding",
    ),
    # encodings
    Case(
        "gzip",
        {"/": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(GZ), GZ)},
        (None, 200, b"zipped", ["A GET /"]),
    ),
    Case(
        "gzip chunked",
        {"/": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(GZ), GZ)},
        (None, 200, b"zipped", ["A GET /"]),
    ),
    Case(
        "deflate (zlib)",
        {"/": b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s" % (len(ZL), ZL)},
        (None, 200, b"zlib", ["A GET /"]),
    ),
    Case(
        "deflate (raw)",
        {"/": b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s" % (len(RAW_DEFLATE), RAW_DEFLATE)},
        (None, 200, b"raw", ["A GET /"]),
    ),
    Case(
        "broken gzip",
        {"/": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"},
        ("protocol", None, None, ["A GET /"]),
    ),
    Case(
        "unknown encoding",
        {"/": b"HTTP/1.1 200 OK\r\nContent-Encoding: x-mine\r\nContent-Length: 3\r\n\r\nabc"},
        (None, 200, b"abc", ["A GET /"]),
    ),
    # 1xx, 204, 304, HEAD
    Case("100 continue", {"/": b"HTTP/1.1 100 Continue\r\n\r\n" + OK2}, (None, 200, b"ok", ["A GET /"])),
    Case(
        "103 early hints", {"/": b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + OK2}, (None, 200, b"ok", ["A GET /"])
    ),
    Case("204", {"/": b"HTTP/1.1 204 No Content\r\n\r\n"}, (None, 204, b"", ["A GET /"])),
    Case("304", {"/": b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n'}, ("status", 304, b"", ["A GET /"])),
    Case("HEAD", {"/": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"}, (None, 200, b"", ["A HEAD /"]), method="HEAD"),
    Case("500", {"/": b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\ndown"}, ("status", 500, b"down", ["A GET /"])),
    # redirects and method changes
    *(
        Case(f"{status} GET", {"/": redirect(status, "/to"), "/to": echo}, (None, 200, b"GET ", ["A GET /", "A GET /to"]))
        for status in (301, 302, 303, 307, 308)
    ),
    *(
        Case(
            f"{status} POST",
            {"/": redirect(status, "/to"), "/to": echo},
            (None, 200, b"POST a=1" if keeps else b"GET ", ["A POST / body=a=1", "A POST /to body=a=1" if keeps else "A GET /to"]),
            method="POST",
            body=b"a=1",
        )
        for status, keeps in ((301, False), (302, False), (303, False), (307, True), (308, True))
    ),
    Case(
        "303 PUT", {"/": redirect(303, "/to"), "/to": echo}, (None, 200, b"GET ", ["A PUT / body=x", "A GET /to"]), method="PUT", body=b"x"
    ),
    Case("303 HEAD", {"/": redirect(303, "/to"), "/to": OK2}, (None, 200, b"", ["A HEAD /", "A HEAD /to"]), method="HEAD"),
    Case(
        "relative location",
        {"/a/b": redirect(302, "../c?x=1"), "/c?x=1": OK2},
        (None, 200, b"ok", ["A GET /a/b", "A GET /c?x=1"]),
        path="/a/b",
    ),
    Case("no location", {"/": b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"}, ("status", 302, b"", ["A GET /"])),
    Case("loop", {"/": redirect(302, "/")}, ("redirects", None, None, ["A GET /"] * 4)),
    Case("to ftp", {"/": redirect(302, "ftp://127.0.0.1/file")}, ("redirects", None, None, ["A GET /"])),
    Case("to another origin", {"/": redirect(301, "{B}/there")}, (None, 200, b"ok", ["A GET /", "B GET /there"]), other={"/there": OK2}),
    Case("utf-8 location", {"/": redirect(302, "/caf\u00e9"), "/caf%C3%A9": OK2}, (None, 200, b"ok", ["A GET /", "A GET /caf%C3%A9"])),
    # request targets (item 7)
    Case("utf-8 path", {"/caf%C3%A9": OK2}, (None, 200, b"ok", ["A GET /caf%C3%A9"]), path="/caf\u00e9"),
    Case(
        "cjk path and query",
        {"/%E6%97%A5%E6%9C%AC?q=%C3%A4": OK2},
        (None, 200, b"ok", ["A GET /%E6%97%A5%E6%9C%AC?q=%C3%A4"]),
        path="/\u65e5\u672c?q=\u00e4",
    ),
    Case("escapes kept", {"/a%20b%2Fc": OK2}, (None, 200, b"ok", ["A GET /a%20b%2Fc"]), path="/a%20b%2Fc"),
    Case(
        "stray percent",
        {"/100%25": OK2},
        (None, 200, b"ok", ["A GET /100%25"]),
        path="/100%",
        httpx=("status", 404, b"", ["A GET /100%"]),
        differs="A stray % in a URL",
    ),
    Case("space and quote", {"/a%20b?q=%22x%22": OK2}, (None, 200, b"ok", ["A GET /a%20b?q=%22x%22"]), path='/a b?q="x"'),
    Case("fragment not sent", {"/p?q=1": OK2}, (None, 200, b"ok", ["A GET /p?q=1"]), path="/p?q=1#part"),
    # request headers (item 7)
    Case("host header", {"/": OK2}, (None, 200, b"ok", ["A GET / host=api.example"]), headers=(("Host", "api.example"),)),
    Case(
        "host header, redirect to another origin",
        {"/": redirect(302, "{B}/")},
        (None, 200, b"ok", ["A GET / host=api.example", "B GET /"]),
        other={"/": OK2},
        headers=(("Host", "api.example"),),
    ),
    Case(
        "same-origin redirect keeps credentials",
        {"/": redirect(302, "/in"), "/in": OK2},
        (None, 200, b"ok", ["A GET / authorization=Bearer t cookie=s=1", "A GET /in authorization=Bearer t cookie=s=1"]),
        headers=(("Authorization", "Bearer t"), ("Cookie", "s=1")),
        httpx=(None, 200, b"ok", ["A GET / authorization=Bearer t cookie=s=1", "A GET /in authorization=Bearer t"]),
        differs="Cookie on a same-origin redirect",
    ),
    Case(
        "cross-origin redirect drops credentials",
        {"/": redirect(307, "{B}/")},
        (
            None,
            200,
            b"ok",
            ["A GET / authorization=Bearer t proxy-authorization=Basic p cookie=s=1 x-api-key=k x-name=n", "B GET / x-name=n"],
        ),
        other={"/": OK2},
        headers=(("Authorization", "Bearer t"), ("Proxy-Authorization", "Basic p"), ("Cookie", "s=1"), ("X-Api-Key", "k"), ("X-Name", "n")),
        env_headers=frozenset({"x-api-key"}),
        httpx=(
            None,
            200,
            b"ok",
            [
                "A GET / authorization=Bearer t proxy-authorization=Basic p cookie=s=1 x-api-key=k x-name=n",
                "B GET / proxy-authorization=Basic p x-api-key=k x-name=n",
            ],
        ),
        differs="Proxy-Authorization and ${VAR} headers on a cross-origin redirect",
    ),
    Case(
        "utf-8 header value",
        {"/": OK2},
        (None, 200, b"ok", ["A GET / x-name=Jos\u00e9 \u65e5\u672c"]),
        headers=(("X-Name", "Jos\u00e9 \u65e5\u672c"),),
        httpx=("unsendable", None, None, []),
        differs="Non-ASCII header values",
    ),
    Case("line break in a header value", {"/": OK2}, ("unsendable", None, None, []), headers=(("X-Name", "a\r\nInjected: 1"),)),
    Case("header name not a token", {"/": OK2}, ("unsendable", None, None, []), headers=(("X Name", "a"),)),
    # response header edge cases
    Case(
        "repeated and empty headers",
        {"/": b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\nX-Empty:\r\nContent-Length: 2\r\n\r\nok"},
        (None, 200, b"ok", ["A GET /"]),
    ),
    Case("space before colon", {"/": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"}, ("protocol", None, None, ["A GET /"])),
    Case(
        "obs-fold",
        {"/": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 2\r\n\r\nok"},
        ("protocol", None, None, ["A GET /"]),
        httpx=(None, 200, b"ok", ["A GET /"]),
        differs="Folded header lines (obs-fold)",
        via_httpx=(None, 200, b"ok", ["A GET /"]),
        transport_differs="Folded header lines through httpx",
    ),
    Case("bare LF", {"/": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"}, (None, 200, b"ok", ["A GET /"])),
]


def outcome_of(kind: str | None, status: int | None, body: bytes | None, a: Origin, b: Origin) -> tuple[object, ...]:
    """The observable outcome: kind, status, body and what the origins saw (their own host not shown)."""
    seen = []
    for label, site in (("A", a), ("B", b)):
        for s in site.seen:
            parts = [f"{label} {s.method} {s.target}"]
            parts += [f"{h}={s.headers[h]}" for h in WATCHED if h in s.headers and not (h == "host" and s.headers[h] == site.netloc)]
            parts += [f"body={s.body.decode()}"] if s.body else []
            seen.append(" ".join(parts))
    return (kind, status, body, seen)


def _routes(routes: dict[str, object], a: Origin, b: Origin) -> dict[str, object]:
    out: dict[str, object] = {}
    for target, answer in routes.items():
        if isinstance(answer, bytes):
            answer = answer.replace(b"{B}", b.url.encode()).replace(b"{A}", a.url.encode())
        out[target] = answer
    return out


async def run_ours(case: Case, url: str, transport: Transport = "fast") -> tuple[str | None, int | None, bytes | None]:
    """The prober's exchange (redirects followed, within the timeout) on one of its transports, as (kind, status, body)."""
    check = CheckSpec(
        transport=transport,
        name="c",
        url=url,
        method=case.method,
        headers=case.headers,
        body=case.body,
        env_headers=case.env_headers,
        timeout=3,
        max_redirects=3,
    )
    prober = Prober()
    try:
        attempt = await prober._attempt(check, _request_headers(check))
    finally:
        await prober.close()
    outcome = attempt.outcome
    if isinstance(outcome, Failure):
        unsendable = outcome.kind == "internal" and outcome.message.startswith("request not sent")
        return ("unsendable" if unsendable else outcome.kind, None, None)
    return (None if 200 <= outcome.status_code < 300 else "status", outcome.status_code, outcome.body)


async def run_httpx(case: Case, url: str) -> tuple[str | None, int | None, bytes | None]:
    """httpx's exchange as (kind, status, body), its exceptions mapped to our error kinds."""
    try:
        async with httpx.AsyncClient(follow_redirects=True, max_redirects=3, timeout=3) as client:
            r = await client.request(case.method, url, headers=list(case.headers), content=case.body)
            return (None if 200 <= r.status_code < 300 else "status", r.status_code, r.content)
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return ("unsendable", None, None)
    except httpx.TimeoutException:
        return ("timeout", None, None)
    except httpx.ConnectError:
        return ("connect", None, None)
    except (httpx.TooManyRedirects, httpx.UnsupportedProtocol):  # the table's own URLs are all http
        return ("redirects", None, None)
    except httpx.DecodingError:
        return ("protocol", None, None)
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        cut = re.search(r"disconnected|incomplete|peer closed|without sending", str(exc), re.I)
        return ("reset" if cut or isinstance(exc, httpx.ReadError) else "protocol", None, None)


async def outcome(case: Case, client: str) -> tuple[object, ...]:
    async with origin() as b, origin() as a:
        a.routes.update(_routes(case.routes, a, b))
        b.routes.update(_routes(case.other, a, b))
        url = a.url + case.path
        if client == "httpx":
            kind, status, body = await run_httpx(case, url)
        else:
            kind, status, body = await run_ours(case, url, "httpx" if client == "ours via httpx" else "fast")
    return outcome_of(kind, status, body, a, b)


@pytest.mark.parametrize("client", ["ours", "ours via httpx", "httpx"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_conformance(case: Case, client: str) -> None:
    """Both of our transports and the reference client, on every case."""
    want = case.httpx if client == "httpx" and case.httpx is not None else case.want
    if client == "ours via httpx" and case.via_httpx is not None:
        want = case.via_httpx
    assert await outcome(case, client) == want


def test_every_difference_between_transports_is_documented() -> None:
    section = DOCS.read_text().split("## Where the transports differ", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^- \*\*(.+?)\*\*", section, re.M))
    assert all(c.transport_differs for c in CASES if c.via_httpx is not None)
    assert {c.transport_differs for c in CASES if c.transport_differs} <= listed


def test_every_difference_from_httpx_is_documented() -> None:
    section = DOCS.read_text().split("## Where we differ from httpx", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^- \*\*(.+?)\*\*", section, re.M))
    differences = {c.differs for c in CASES if c.differs}
    assert all(c.differs for c in CASES if c.httpx is not None)
    assert differences <= listed, differences - listed
