"""/push/{check}: a push check's pings (GET or POST), like healthchecks.io: success, /start, /fail and an
exit code /{0-255}. The check's own push.token authenticates (`?token=` or `Authorization: Bearer`),
never the API token; a caller without the right token learns nothing of which checks exist."""

from __future__ import annotations

import hmac

from aiohttp import web

from pulse_agent.config.model import CheckSpec
from pulse_agent.probe import push
from pulse_agent.probe.push import PushState, Signal
from pulse_agent.result import iso
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

    async def state(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            spec = agent.push_check(name)
        except StoreClosed as exc:
            return web.json_response({"error": str(exc)}, status=503)
        known = agent.push_state(name) if spec is not None else None
        if spec is None or known is None:
            return web.json_response({"error": f"no push check named {name!r}"}, status=404)
        return web.json_response(state_json(spec, known))

    paths = ("/push/{check}", "/push/{check}/{signal}")
    routes = [web.route(method, path, receive) for path in paths for method in ("GET", "POST")]
    return [*routes, web.get("/api/v1/checks/{name}/push", state, allow_head=False)]  # behind the API token, like /api/*


def state_json(spec: CheckSpec, state: PushState) -> dict[str, object]:
    """A push check's state as the API answers it (no token)."""
    due = push.due(spec, state)
    grace = spec.push.grace if spec.push is not None else 0.0

    def at(ts: float | None) -> str | None:
        return None if ts is None else iso(ts)

    return {
        "check": spec.name,
        "next_due": at(due),
        "deadline": at(None if due is None else due + grace),
        "grace_s": grace,
        "since": iso(state.since),
        "last_ping": at(state.last_ping),
        "started": at(state.started),
    }


def _signal(tail: str) -> tuple[Signal, int | None] | None:
    """'' -> success, start, fail, or an exit code 0..255; None for anything else."""
    if tail in ("", "start", "fail"):
        return tail or "success", None  # type: ignore[return-value]
    if tail.isascii() and tail.isdigit() and len(tail) <= 3 and int(tail) <= 255:
        return "exit", int(tail)
    return None


def _answer(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers={"Cache-Control": "no-store", **(headers or {})})
