"""The status page's routes: /status (and /), its public live feed, GET /api/v1/status, and badges.

They see the agent through one small object (StatusSource), and show only what page.py lets out:
names, states, figures, times and error kinds, never URLs, headers or error text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import duckdb
from aiohttp import web

from pulse_agent.config.model import CheckSpec, StatusPageSpec
from pulse_agent.live.events import Subscription
from pulse_agent.result import from_iso
from pulse_agent.status import badge as badges
from pulse_agent.status import html, page, sql
from pulse_agent.view import CheckStatus, StoreClosed
from pulse_agent.web.limits import body_deadline
from pulse_agent.web.sse import event_stream, sse

T = TypeVar("T")
BADGE_MAX_AGE_S = 60
FIGURES_TTL_S = 10.0
MAX_CACHED = 4096  # entries (the page's, and one per badged check)
NOT_ENABLED = "the status page is not enabled (add status_page: {enabled: true} to the config)"


class StatusSource(Protocol):
    """What the status page needs of a running agent."""

    def now(self) -> float:
        """The agent's clock."""
        ...

    def checks(self) -> tuple[CheckSpec, ...]:
        """Every check of the running config."""
        ...

    def status_page(self) -> StatusPageSpec | None:
        """The running config's status_page settings."""
        ...

    def status(self, spec: CheckSpec) -> CheckStatus:
        """The status of one check (its newest result since start, whether in maintenance)."""
        ...

    async def read(self, query: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """A read-only query's answer; StoreClosed while the database is not open."""
        ...

    def subscribe(self) -> AbstractContextManager[Subscription]:
        """Live events (results, incidents) until the agent stops."""
        ...


def live_of(source: StatusSource, spec: CheckSpec, now: float) -> page.Live:
    """A check's live state from the agent."""
    status = source.status(spec)
    last = status.last_result
    if last is None:
        return page.Live(None, in_maintenance=status.in_maintenance)
    return page.Live(last.ts, last.ok, last.degraded, last.response_time_ms, status.in_maintenance)


class FiguresCache:
    """Stored figures per set of checks for FIGURES_TTL_S of the agent's clock: at 1,000 checks the
    queries take a while, and uptime over a day moves little in seconds (live states never wait)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[float, sql.Figures]] = {}

    async def get(self, source: StatusSource, names: list[str], unseen: list[str], now: float) -> sql.Figures:
        """The figures of names (newest stored results of unseen), at most FIGURES_TTL_S old."""
        key = (tuple(names), tuple(unseen))
        hit = self._entries.get(key)
        if hit is not None and 0 <= now - hit[0] < FIGURES_TTL_S:
            return hit[1]
        try:
            figures = await source.read(lambda con: sql.figures(con, names, now, need_last=unseen))
        except StoreClosed:
            raise web.HTTPServiceUnavailable(text="the database is not open; try again in a moment\n") from None
        if len(self._entries) >= MAX_CACHED:
            self._entries.clear()
        self._entries[key] = (now, figures)
        return figures


async def status_data(source: StatusSource, settings: StatusPageSpec, cache: FiguresCache, only: str | None = None) -> dict[str, Any]:
    """The page's data (of one check when only is given), built off the event loop."""
    now = source.now()
    checks = [c for c in page.visible(settings, source.checks()) if only is None or c.name == only]
    live = {c.name: live_of(source, c, now) for c in checks}
    figures = await cache.get(source, [c.name for c in checks], [n for n, v in live.items() if v.last_ts is None], now)
    return await asyncio.to_thread(page.status_data, settings, checks, live, figures, now)


def status_routes(source: StatusSource) -> list[web.RouteDef]:
    """The page, its feed and script, its data and the badges, bound to source."""
    cache = FiguresCache()

    def settings() -> StatusPageSpec:
        spec = source.status_page()
        if spec is None or not spec.enabled:
            raise web.HTTPNotFound(text=NOT_ENABLED + "\n")
        return spec

    async def page_html(request: web.Request) -> web.Response:
        data = await status_data(source, settings(), cache)
        body = await asyncio.to_thread(html.render, data, source.now(), "/status/events")
        response = web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-cache"})
        response.enable_compression()
        return response

    async def script(_: web.Request) -> web.Response:
        settings()
        return web.Response(text=html.static_text("status.js"), content_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=300"})  # fmt: skip

    async def data(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(json.dumps, await status_data(source, settings(), cache))
        response = web.Response(text=body, content_type="application/json", headers={"Cache-Control": "no-cache"})
        response.enable_compression()
        return response

    async def events(request: web.Request) -> web.StreamResponse:
        settings()
        return await event_stream(request, source.subscribe, lambda event: public_event(source, *event))

    async def badge(request: web.Request) -> web.Response:
        spec = settings()
        name, kind, file = request.match_info["check"], request.match_info.get("kind", "status"), request.match_info["file"]
        window, _, ext = file.rpartition(".")
        if (kind == "status" and window != "status") or (kind != "status" and window not in sql.WINDOWS) or ext not in ("svg", "json"):
            windows = ", ".join(sql.WINDOWS)
            raise web.HTTPNotFound(
                text=f"no such badge: use status.svg, uptime/{{{windows}}}.svg or response-time/{{{windows}}}.svg (or .json)\n"
            )
        check = next((c for c in page.visible(spec, source.checks()) if c.name == name), None)
        if check is None:
            raise web.HTTPNotFound(text=f"no check named {name!r} on the status page\n")
        data = await status_data(source, spec, cache, only=name)
        entry = next(c for g in data["groups"] for c in g["checks"])
        made = badges.badge(entry, kind, None if kind == "status" else window)  # type: ignore[arg-type]
        body, content_type = (made.svg(), "image/svg+xml") if ext == "svg" else (made.json(), "application/json")
        tag = badges.etag(body)
        headers = {"Cache-Control": f"public, max-age={BADGE_MAX_AGE_S}", "ETag": tag}
        if tag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(text=body, content_type=content_type, headers=headers)

    return [
        web.get("/", page_html),
        web.get("/status", page_html),
        web.get("/status/status.js", script),
        web.get("/status/events", events),
        web.get("/api/v1/status", data),
        web.get("/badge/{check}/{file}", badge),
        web.get("/badge/{check}/{kind:uptime|response-time}/{file}", badge),
    ]


def public_event(source: StatusSource, kind: str, data: dict[str, Any]) -> bytes | None:
    """What of an agent event the public feed may carry: a shown check's new state, or that its incidents changed."""
    spec = source.status_page()
    check = _by_name(source.checks()).get(str(data.get("check")))
    if spec is None or check is None or not spec.shows(check):
        return None
    if kind == "result":
        now = source.now()
        live = page.Live(
            from_iso(data["ts"]), bool(data["ok"]), bool(data["degraded"]), data.get("response_time_ms"), check.in_maintenance(now)
        )
        return sse(
            "state", {"check": check.name, "state": page.state_of(live), "ts": data["ts"], "response_time_ms": live.response_time_ms}
        )
    if kind == "incident":
        return sse("incident", {"check": check.name, "event": data.get("event")})
    return None


@lru_cache(maxsize=4)
def _by_name(checks: tuple[CheckSpec, ...]) -> dict[str, CheckSpec]:
    """Checks by name, built once per config (a reload gives a new tuple)."""
    return {c.name: c for c in checks}


def public_app(source: StatusSource) -> web.Application:
    """The application of status_page.listen: the page, its feed, its data and the badges, nothing else."""
    app = web.Application(middlewares=[body_deadline])
    app.add_routes(status_routes(source))
    return app
