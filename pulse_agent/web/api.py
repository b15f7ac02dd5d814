"""The agent API under /api/v1 and POST /-/reload: checks, results, run-now, incidents, live events.

Answers never carry secrets: no header values, bodies, credentials or notifier URLs, and URLs
show no user info and no query values (pulse_agent.redact).
"""

from __future__ import annotations

import hmac
import json
import math
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from pulse_agent.config.model import CheckSpec
from pulse_agent.durations import parse_duration
from pulse_agent.redact import redact_url
from pulse_agent.report import MAX_EPOCH, ReportError, ReportRequest, UnknownCheck, epoch_field
from pulse_agent.result import from_iso, iso
from pulse_agent.store import queries
from pulse_agent.store.db import QueriesBusy
from pulse_agent.view import AgentView, AlertingClosed, StoreClosed
from pulse_agent.web.pieces import JSON, json_list_pieces, serve_pieces
from pulse_agent.web.sse import event_stream, sse

T = TypeVar("T")
PROTECTED = re.compile(r"^/api/|^/-/")
MAX_LIMIT = 10_000
AGENT_NAME = socket.gethostname()  # written in exports: this agent's name, never a caller's
SUMMARIES_PER_PIECE = 25  # checks in one piece of GET /api/v1/checks: about a millisecond of the event loop (100 were 4-10 ms)


def bearer_auth(token: str | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware: with a token set, /api/* and /-/* need `Authorization: Bearer <token>` (the
    scheme in any case, RFC 9110; compared in constant time; the header is the only place read)."""
    expected = token.encode() if token else b""

    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if expected and PROTECTED.match(request.path) and not hmac.compare_digest(bearer_of(request), expected):
            return _error(401, "missing or wrong bearer token", headers={"WWW-Authenticate": 'Bearer realm="pulse-agent"'})
        return await handler(request)

    return check


def bearer_of(request: web.Request) -> bytes:
    """The credentials of an `Authorization: Bearer ...` header (any case of the scheme), as sent; b"" otherwise."""
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return b""
    # Header bytes that are not UTF-8 arrive as surrogates: kept as sent, so they simply do not match.
    return credentials.strip().encode("utf-8", "surrogateescape")


def api_routes(agent: AgentView) -> list[web.RouteDef]:
    """Every API route, bound to one agent."""

    async def list_checks(request: web.Request) -> web.StreamResponse:
        # In pieces: a thousand checks' summaries are tens of milliseconds of the loop that runs them.
        summaries = json_list_pieces("checks", list(agent.checks()), lambda c: _check_summary(agent, c), SUMMARIES_PER_PIECE)
        return await serve_pieces(request, summaries, JSON)

    async def get_check(request: web.Request) -> web.Response:
        return web.json_response(_check_summary(agent, _check(agent, request)))

    async def check_results(request: web.Request) -> web.Response:
        spec = _check(agent, request)
        since, limit = _since(request, agent.now()), _limit(request)
        rows = await _read(agent, lambda con: queries.results(con, spec.name, since, limit))
        return web.json_response({"check": spec.name, "results": rows})

    async def run_check(request: web.Request) -> web.Response:
        spec = _check(agent, request)
        if spec.kind == "push":
            return _error(409, f"check {spec.name!r} is a push check: its job runs elsewhere and pings /push/{spec.name}")
        result = await agent.run_now(spec)
        if result is None:
            return _error(409, f"check {spec.name!r} is running already; try again when it has finished")
        return web.json_response(result.to_json())

    async def list_incidents(request: web.Request) -> web.Response:
        open_only = request.query.get("open", "false").lower() in ("1", "true", "yes")
        check, limit = request.query.get("check"), _limit(request)
        rows = await _read(agent, lambda con: queries.incidents(con, open_only=open_only, check=check, limit=limit))
        return web.json_response({"incidents": rows})

    async def events(request: web.Request) -> web.StreamResponse:
        return await event_stream(request, agent.subscribe, lambda item: sse(*item))

    async def report(request: web.Request) -> web.Response:
        try:
            question = ReportRequest.from_json(await _json_body(request))
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            report = await _unless_closed(agent.report(question))
        except UnknownCheck as exc:
            return _error(404, str(exc))
        except ReportError as exc:
            return _error(400, str(exc))
        except QueriesBusy as exc:
            return _error(503, str(exc), headers={"Retry-After": "5"})
        return web.json_response(text=report.json_text())  # each row's JSON as DuckDB wrote it: no dict per row

    async def export_results(request: web.Request) -> web.Response:
        export_dir = agent.export_dir()
        if export_dir is None:
            return _error(403, "this agent has no agent.export_dir: its API writes no files")
        out = str(Path(export_dir).absolute())
        try:
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise ValueError("give a JSON object")
            start, end = epoch_field(body, "start"), epoch_field(body, "end")
        except ValueError as exc:
            return _error(400, f"malformed export request: {exc}")
        asked = body.get("out")
        if asked is not None and (not isinstance(asked, str) or not _same_dir(asked, out)):
            return _error(403, f"this agent exports only into its agent.export_dir {out!r}, not {str(asked)[:200]!r}")
        try:
            done = await _unless_closed(agent.export(out, start, end, AGENT_NAME))
        except ReportError as exc:
            return _error(400, str(exc))
        except QueriesBusy as exc:
            return _error(503, str(exc), headers={"Retry-After": "5"})
        return web.json_response({"rows": done.results, "out": out, "agent": AGENT_NAME, "exported": asdict(done)})

    async def reload(_: web.Request) -> web.Response:
        outcome = await agent.reload("api")
        return web.json_response(outcome.to_json(), status=200 if outcome.ok else 400)

    async def list_silences(_: web.Request) -> web.Response:
        now = agent.now()
        return web.json_response({"silences": [s.to_json(now) for s in _started(agent.silences)]})

    async def add_silence(request: web.Request) -> web.Response:
        try:
            silence = await _unless_closed(agent.add_silence(await request.json()))
        except ValueError as exc:  # malformed JSON included
            return _error(400, str(exc))
        return web.json_response(silence.to_json(agent.now()), status=201)

    async def expire_silence(request: web.Request) -> web.Response:
        silence = await _unless_closed(agent.expire_silence(request.match_info["id"]))
        if silence is None:
            return _error(404, f"no silence with id {request.match_info['id']!r}")
        return web.json_response(silence.to_json(agent.now()))

    async def ack_incident(request: web.Request) -> web.Response:
        body = await _optional_body(request)
        incident = await _unless_closed(agent.ack(request.match_info["id"], body.get("author")))
        if incident is None:
            return _error(404, f"no open incident with id {request.match_info['id']!r}")
        return web.json_response({"id": incident.id, "check": incident.check, "acked_at": iso(incident.acked_at or 0),
                                  "acked_by": incident.acked_by})  # fmt: skip

    async def pause_check(request: web.Request) -> web.Response:
        spec, body = _check(agent, request), await _optional_body(request)
        pause = await _unless_closed(agent.pause(spec, body.get("author"), body.get("reason")))
        return web.json_response({"check": spec.name, "paused": pause.to_json()})

    async def resume_check(request: web.Request) -> web.Response:
        spec = _check(agent, request)
        if not await _unless_closed(agent.resume(spec)):
            return _error(409, f"check {spec.name!r} is not paused")
        return web.json_response({"check": spec.name, "paused": None})

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(text=openapi_text(), content_type="application/json")

    return [
        web.get("/api/v1/checks", list_checks),
        web.get("/api/v1/checks/{name}", get_check),
        web.get("/api/v1/checks/{name}/results", check_results),
        web.post("/api/v1/checks/{name}/run", run_check),
        web.get("/api/v1/incidents", list_incidents),
        web.get("/api/v1/events", events),
        web.post("/api/v1/report", report),
        web.post("/api/v1/export", export_results),
        web.get("/api/v1/silences", list_silences),
        web.post("/api/v1/silences", add_silence),
        web.delete("/api/v1/silences/{id}", expire_silence),
        web.post("/api/v1/incidents/{id}/ack", ack_incident),
        web.post("/api/v1/checks/{name}/pause", pause_check),
        web.post("/api/v1/checks/{name}/resume", resume_check),
        web.get("/api/v1/openapi.json", openapi),
        web.post("/-/reload", reload),
    ]


def openapi_text() -> str:
    """The OpenAPI 3.1 document of this API, as shipped in the package."""
    return resources.files("pulse_agent.web").joinpath("openapi.json").read_text(encoding="utf-8")


def _check_summary(agent: AgentView, spec: CheckSpec) -> dict[str, Any]:
    status = agent.status(spec)
    incident, last, due, pause = status.incident, status.last_result, status.next_due, status.paused
    return {
        "name": spec.name,
        "kind": spec.kind,
        "url": redact_url(spec.url) if spec.kind != "push" else None,  # a push check has none: it is called
        "method": spec.method if spec.kind == "http" else None,
        "schedule": spec.schedule.text,
        "timezone": spec.timezone,
        "timeout_s": spec.timeout if spec.kind != "push" else None,
        "enabled": spec.enabled,
        "labels": dict(spec.labels),
        "alert": {
            "notify": list(spec.alert.notify),
            "failure_threshold": spec.alert.failure_threshold,
            "success_threshold": spec.alert.success_threshold,
            "remind_every_s": spec.alert.remind_every,
            "send_on_resolved": spec.alert.send_on_resolved,
            "notify_on_degraded": spec.alert.notify_on_degraded,
        },
        "state": {
            "running": status.running,
            "in_maintenance": status.in_maintenance,
            "consecutive_failures": status.consecutive_failures,
            "consecutive_successes": status.consecutive_successes,
            "degraded": status.degraded,
            "incident": None
            if incident is None
            else {
                "id": incident.id,
                "opened_at": iso(incident.opened_at),
                "first_error_kind": incident.first_error_kind,
                "first_error": incident.first_error,
                "acked_at": iso(incident.acked_at) if incident.acked_at is not None else None,
                "acked_by": incident.acked_by,
                "held": incident.held,
            },
        },
        "paused": pause.to_json() if pause is not None else None,
        "next_due": iso(due) if due is not None else None,
        "last_result": last.to_json() if last is not None else None,
    }


def _check(agent: AgentView, request: web.Request) -> CheckSpec:
    name = request.match_info["name"]
    spec = agent.check(name)
    if spec is None:
        raise _http_error(web.HTTPNotFound, f"no check named {name!r}")
    return spec


async def _read(agent: AgentView, query: Callable[[Any], T]) -> T:
    """A read-only query's answer; 503 while the database is not open."""
    return await _unless_closed(agent.read(query))


async def _unless_closed(answer: Awaitable[T]) -> T:
    """What answer gives; 503 while the database is not open or alerting has not started."""
    try:
        return await answer
    except (StoreClosed, AlertingClosed) as exc:
        raise _http_error(web.HTTPServiceUnavailable, str(exc)) from None


def _started(ask: Callable[[], T]) -> T:
    """What ask gives; 503 while alerting has not started."""
    try:
        return ask()
    except AlertingClosed as exc:
        raise _http_error(web.HTTPServiceUnavailable, str(exc)) from None


async def _optional_body(request: web.Request) -> dict[str, str | None]:
    """{author, reason} from an optional JSON body; strings or absent."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise _http_error(web.HTTPBadRequest, 'the body must be JSON, like {"author": "ana", "reason": "deploy"}') from None
    if not isinstance(body, dict) or not all(isinstance(body.get(k), (str, type(None))) for k in ("author", "reason")):
        raise _http_error(web.HTTPBadRequest, "give author and reason as strings")
    return {k: body.get(k) for k in ("author", "reason")}


def _since(request: web.Request, now: float) -> float | None:
    """?since=ISO-8601 instant, or a duration back from now (since=1h); not before 1970."""
    text = request.query.get("since")
    if not text:
        return None
    for parse in (lambda t: now - parse_duration(t), from_iso):
        try:
            since = parse(text)
        except (ValueError, OverflowError):
            continue
        if math.isfinite(since) and 0 <= since <= MAX_EPOCH:
            return since
    raise _http_error(
        web.HTTPBadRequest, f"since={text[:100]!r}: give an ISO-8601 time after 1970 (2026-11-22T10:00:00Z) or a duration (1h)"
    )


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", "100")
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= MAX_LIMIT:
        raise _http_error(web.HTTPBadRequest, f"limit={text[:100]!r}: give a whole number from 1 to {MAX_LIMIT}")
    return int(text)


async def _json_body(request: web.Request) -> object:
    """The request body as JSON; ValueError saying it is not (bad JSON, not UTF-8)."""
    try:
        return await request.json()
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise ValueError(f"the body is not JSON: {str(exc)[:200]}") from None


def _same_dir(a: str, b: str) -> bool:
    return Path(a).absolute() == Path(b).absolute() if Path(a).is_absolute() else False


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _http_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")
