"""Responses written in pieces with a pass of the event loop between two, so a large answer (/metrics
of many checks, the list of every check) never keeps due runs waiting for long."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

JSON = "application/json; charset=utf-8"  # what web.json_response answers


async def serve_pieces(request: web.Request, pieces: Iterable[bytes], content_type: str) -> web.StreamResponse:
    """One response whose body is pieces, each produced and written in a pass of the event loop of its own."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the client left
        for piece in pieces:
            if piece:
                await response.write(piece)
            await asyncio.sleep(0)
        await response.write_eof()
    return response


def json_list_pieces(key: str, items: Sequence[T], encode: Callable[[T], Any], per_piece: int) -> Iterator[bytes]:
    """`{key: [encode(item), ...]}` exactly as json.dumps writes it, per_piece items a piece."""
    yield f"{{{json.dumps(key)}: [".encode()
    for start in range(0, len(items), per_piece):
        text = ", ".join([json.dumps(encode(item)) for item in items[start : start + per_piece]])
        yield (text if start == 0 else ", " + text).encode()
    yield b"]}"
