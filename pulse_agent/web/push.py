"""/push/{check}: a push check's pings (GET or POST), like healthchecks.io: success, /start, /fail and an
exit code /{0-255}. The check's own push.token authenticates (`?token=` or `Authorization: Bearer`),
never the API token; a caller without the right token learns nothing of which checks exist."""

from __future__ import annotations

import hmac

from aiohttp import web

from pulse_agent.probe.push import Signal
from pulse_agent.view import PushReceiver, StoreClosed
from pulse_agent.web.api import bearer_of

_NO_TOKEN = b"\0" * 32  # compared against when there is no such check, so both answers take alike


def push_routes(agent: PushReceiver) -> list[web.RouteDef]:
    """The push routes, bound to one agent."""

    async def receive(request: web.Request) -> web.Response:
        name, tail = request.match_info["check"], request.match_info.get("signal", "")
        parsed = _signal(tail)
        if parsed is None:
            return _answer(404, "not found: /push/NAME[/start|/fail|/EXIT_CODE]")
        signal, code = parsed
        given = bearer_of(request) or request.query.get("token", "").encode("utf-8", "surrogateescape")
        if not given:
            return _answer(401, "a push needs its check's token: ?token=... or Authorization: Bearer ...")
        try:
            spec = agent.push_check(name)
            expected = spec.push.token.encode() if spec is not None and spec.push is not None else _NO_TOKEN
            if not hmac.compare_digest(given, expected) or spec is None:
                return _answer(404, "no push check of that name takes this token")
            result = await agent.push(spec, signal, code)
        except StoreClosed as exc:  # starting or stopping: curl --retry tries again on a 503
            return _answer(503, str(exc), {"Retry-After": "1"})
        if result is None:
            return _answer(200, "OK: started" if signal == "start" else "OK")
        return _answer(200, "OK" if result.ok else f"OK: recorded as failed ({result.error_kind})")

    paths = ("/push/{check}", "/push/{check}/{signal}")
    return [web.route(method, path, receive) for path in paths for method in ("GET", "POST")]


def _signal(tail: str) -> tuple[Signal, int | None] | None:
    """'' -> success, start, fail, or an exit code 0..255; None for anything else."""
    if tail in ("", "start", "fail"):
        return tail or "success", None  # type: ignore[return-value]
    if tail.isascii() and tail.isdigit() and len(tail) <= 3 and int(tail) <= 255:
        return "exit", int(tail)
    return None


def _answer(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers={"Cache-Control": "no-store", **(headers or {})})
