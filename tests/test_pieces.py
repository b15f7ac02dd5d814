"""Large answers served in pieces with the event loop running between two: /metrics of many checks and
GET /api/v1/checks, each the same body as a single render would give."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
from prometheus_client import CONTENT_TYPE_LATEST

from pulse_agent.config.model import CheckSpec
from pulse_agent.view import CheckStatus
from pulse_agent.web.api import SUMMARIES_PER_PIECE, api_routes
from pulse_agent.web.app import make_app, serve
from pulse_agent.web.exposition import FAMILIES
from pulse_agent.web.metrics import Metrics
from pulse_agent.web.pieces import json_list_pieces
from pulse_agent.web.sse import BATCH
from tests.conftest import spec
from tests.test_api_port import FakeView
from tests.test_metrics_exposition import N, many_checks


class Loop:
    """Counts passes of the event loop while it runs (a task that yields at every pass)."""

    turns = 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Loop]:
        stop = asyncio.Event()

        async def spin() -> None:
            while not stop.is_set():
                self.turns += 1
                await asyncio.sleep(0)

        spinner = asyncio.create_task(spin())
        try:
            yield self
        finally:
            stop.set()
            await spinner


def test_json_pieces_are_json_dumps_of_the_whole_object():
    for n in (0, 1, 2 * SUMMARIES_PER_PIECE + 3):
        items = [{"name": f"c{i}", "labels": {"é": 'say "hi"'}, "up": i % 2 == 0} for i in range(n)]
        for per_piece in (1, 7, SUMMARIES_PER_PIECE):
            pieces = list(json_list_pieces("checks", items, lambda x: x, per_piece))
            assert b"".join(pieces).decode() == json.dumps({"checks": items})
            assert len(pieces) == 2 + -(-n // per_piece)


async def test_metrics_is_served_in_pieces_with_the_event_loop_running_between_two():
    loop = Loop()
    at_piece: list[int] = []

    class Watched(Metrics):
        def exposition(self) -> Iterator[bytes]:
            for piece in super().exposition():
                at_piece.append(loop.turns)
                yield piece

    m = many_checks(kind=Watched)
    runner, port = await serve(make_app(m, lambda: (True, "ok")), "127.0.0.1:0")
    try:
        async with loop.running(), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            response = await client.get("/metrics")
            head = await client.head("/metrics")
    finally:
        await runner.cleanup()
    assert response.status_code == 200 and response.headers["content-type"] == CONTENT_TYPE_LATEST
    per_check = response.content.split(b"# HELP process_")[0]  # then the agent-wide series
    assert per_check == m.render().split(b"# HELP process_")[0]
    first = at_piece[: sum(-(-N // checks) for _, _, _, checks in FAMILIES) + 1]  # the GET's (the HEAD made its own)
    assert all(b > a for a, b in itertools.pairwise(first))  # the loop ran between every two pieces
    assert head.status_code == 200 and head.content == b""


class ManyChecks(FakeView):
    """FakeView with many checks, noting the event loop's pass at which each summary was made."""

    def __init__(self, n: int, loop: Loop) -> None:
        super().__init__()
        self._checks = tuple(spec(f"http://example.invalid/{i}", name=f"c{i}") for i in range(n))
        self.loop, self.asked_at = loop, Counter[int]()

    def status(self, check: CheckSpec) -> CheckStatus:
        self.asked_at[self.loop.turns] += 1
        return super().status(check)


async def test_the_list_of_checks_is_served_in_pieces_with_the_event_loop_running_between_two():
    loop = Loop()
    n = 2 * SUMMARIES_PER_PIECE + 3
    view = ManyChecks(n, loop)
    runner, port = await serve(make_app(Metrics(), lambda: (True, "ok"), api_routes(view)), "127.0.0.1:0")
    try:
        async with loop.running(), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            response = await client.get("/api/v1/checks")
    finally:
        await runner.cleanup()
    assert response.status_code == 200 and response.headers["content-type"] == "application/json; charset=utf-8"
    listing = response.json()["checks"]
    assert [c["name"] for c in listing] == [f"c{i}" for i in range(n)] and listing[1]["url"] == "http://example.invalid/1"
    assert sorted(view.asked_at.values(), reverse=True) == [SUMMARIES_PER_PIECE, SUMMARIES_PER_PIECE, 3]  # three passes
    assert max(view.asked_at.values()) <= 25  # about 1 ms of the loop a pass (100 summaries held it 4-10 ms at 1,000 checks/s)


async def test_events_published_together_arrive_in_order_with_what_a_slow_listener_missed():
    view = FakeView()
    runner, port = await serve(make_app(Metrics(), lambda: (True, "ok"), api_routes(view)), "127.0.0.1:0")
    n = BATCH + 10  # more than one write's worth
    seen: list[tuple[str, dict]] = []
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
            client.stream("GET", "/api/v1/events") as stream,
        ):
            lines = stream.aiter_lines()
            assert await anext(lines) == ": connected"
            for i in range(n + 1000):  # all at once: the queue holds 1,000, the rest are counted as dropped
                view.hub.publish("result", {"i": i})
            kind = ""
            async for line in lines:
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    seen.append((kind, json.loads(line[6:])))
                    if seen[-1][1] == {"i": 999}:
                        view.hub.publish("result", {"i": "after"})  # the listener caught up: queued again
                    elif seen[-1][1] == {"i": "after"}:
                        break
    finally:
        view.hub.close()
        await runner.cleanup()
    assert [d["i"] for k, d in seen if k == "result"] == [*range(1000), "after"]
    assert seen[0] == ("dropped", {"events": n})  # counted before the first was taken: reported before it



async def _chunk(reader: asyncio.StreamReader) -> bytes:
    """The next chunk of a chunked HTTP body."""
    size = int((await reader.readline()).split(b";")[0], 16)
    return (await reader.readexactly(size + 2))[:-2]


async def test_events_published_one_by_one_go_out_many_to_a_send():
    view = FakeView()
    runner, port = await serve(make_app(Metrics(), lambda: (True, "ok"), api_routes(view)), "127.0.0.1:0")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    chunks: list[bytes] = []
    try:
        writer.write(b"GET /api/v1/events HTTP/1.1\r\nHost: agent\r\n\r\n")
        while await asyncio.wait_for(reader.readline(), 10) != b"\r\n":
            pass  # the head
        assert await asyncio.wait_for(_chunk(reader), 10) == b": connected\n\n"
        for i in range(40):  # as runs finish: an event, then a pass of the event loop (the stream could send each)
            view.hub.publish("result", {"i": i})
            await asyncio.sleep(0)
        while sum(c.count(b"event: ") for c in chunks) < 40:
            chunks.append(await asyncio.wait_for(_chunk(reader), 10))
    finally:
        view.hub.close()
        writer.close()
        await runner.cleanup()
    data = [json.loads(line[6:])["i"] for c in chunks for line in c.split(b"\n") if line.startswith(b"data: ")]
    assert data == list(range(40))
    assert len(chunks) <= 10, [c.count(b"event: ") for c in chunks]  # 2 on an idle machine; a send per event: 40
