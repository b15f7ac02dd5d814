"""aiohttp.web application of the agent: /metrics, /healthz, /readyz, and the API routes given to it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from pulse_agent.config.model import AgentSettings
from pulse_agent.listen import api_exposure, split_listen
from pulse_agent.web.api import bearer_auth
from pulse_agent.web.limits import IDLE_TIMEOUT_S, BoundedSite, InboundBudget, body_deadline, inbound_budget, raise_nofile
from pulse_agent.web.metrics import Metrics
from pulse_agent.web.pieces import serve_pieces

log = logging.getLogger("pulse_agent.agent")


def make_app(
    metrics: Metrics,
    ready: Callable[[], tuple[bool, str]],
    routes: Sequence[web.RouteDef] = (),
    token: str | None = None,
) -> web.Application:
    """The web application; `ready` says whether the agent can do its work, and why not; `routes`
    (the API) are guarded by the bearer token when one is set."""

    async def metrics_handler(request: web.Request) -> web.StreamResponse:
        # On the loop in bounded pieces, letting due runs start between them: a render in a thread
        # would hold the GIL for most of a large exposition and slow every run due meanwhile.
        return await serve_pieces(request, metrics.exposition(), CONTENT_TYPE_LATEST)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, reason = ready()
        return web.Response(text=f"{reason}\n", status=200 if ok else 503)

    app = web.Application(middlewares=[bearer_auth(token), body_deadline])
    app.add_routes(routes)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def inbound_plan(listen: str, settings: AgentSettings) -> InboundBudget:
    """The web surface's descriptor budget (the limit raised first); logs what an operator must know
    before the agent serves: an API open to anyone, a descriptor limit too low for the runs."""
    if api_exposure(listen, settings.api_token, settings.insecure_api) == "insecure":
        log.warning("the API is open to anyone who can reach the listen address: agent.insecure_api is true and "
                    "agent.api_token is not set", extra={"listen": listen})  # fmt: skip
    budget = inbound_budget(raise_nofile(), settings.max_concurrency)
    if budget.tight:
        fields = {"nofile": budget.nofile, "max_concurrency": settings.max_concurrency}
        log.warning("the file-descriptor limit is low for agent.max_concurrency: runs may fail with 'Too many open files'; "
                    "raise it (ulimit -n, LimitNOFILE=)", extra=fields)  # fmt: skip
    return budget


async def serve(
    app: web.Application, listen: str, budget: InboundBudget | None = None, metrics: Metrics | None = None
) -> tuple[web.AppRunner, int]:
    """Start serving app on listen within budget (web/limits.py), open and refused connections
    counted in metrics; return the runner and the bound port."""
    budget = budget or inbound_budget(raise_nofile(), 256)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=IDLE_TIMEOUT_S)
    await runner.setup()
    host, port = split_listen(listen)
    site = BoundedSite(runner, host, port, budget, metrics.http_connections_refused.inc if metrics else None)
    await site.start()
    if metrics is not None:
        metrics.http_connections.set_function(lambda: site.open_connections)
    return runner, site.port
