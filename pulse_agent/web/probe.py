"""GET /probe?target=URL&module=NAME: one probe with a `modules:` template, answered in blackbox_exporter's
metric names. Not an open proxy: a target must match the module's allowed_targets (403 otherwise)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from aiohttp import web

from pulse_agent.config.model import CheckSpec, ModuleSpec
from pulse_agent.probe.allow import AllowedTargets, url_of
from pulse_agent.probe.blackbox import DEFAULT_MODULE, debug_text, probe_timeout, render_probe, target_url
from pulse_agent.probe.connect import target_of
from pulse_agent.probe.http import Prober
from pulse_agent.probe.target import Target
from pulse_agent.probe.wire import ProbeFailure
from pulse_agent.result import Result

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"  # the format render_probe writes, as blackbox_exporter answers


@dataclass(frozen=True, slots=True)
class _Module:
    spec: ModuleSpec
    allowed: AllowedTargets
    prober: Prober  # its own: every connection it makes is judged by this module's allowed_targets


class ProbeEndpoint:
    """The modules of the running config (asked of `modules` at each probe), their probers, and the bound
    on probes in flight."""

    def __init__(self, modules: Callable[[], tuple[ModuleSpec, ...]], max_concurrency: int) -> None:
        self._running = modules
        self._seen: tuple[ModuleSpec, ...] | None = None  # the modules self._modules was built from
        self._modules: dict[str, _Module] = {}
        self._slots = asyncio.Semaphore(max_concurrency)
        self._closing: set[asyncio.Task[None]] = set()

    def _current(self) -> dict[str, _Module]:
        """The running config's modules; after a reload, unchanged ones keep their prober."""
        modules = self._running()
        if modules is not self._seen:
            self._seen = modules
            self._set_modules(modules)
        return self._modules

    def _set_modules(self, modules: tuple[ModuleSpec, ...]) -> None:
        old, self._modules = self._modules, {}
        for spec in modules:
            kept = old.pop(spec.name, None)
            if kept is not None and kept.spec == spec:
                self._modules[spec.name] = kept
            else:
                allowed = AllowedTargets.parse(spec.allowed_targets)
                self._modules[spec.name] = _Module(spec, allowed, Prober(allow=allowed.allows))
        for gone in old.values():  # a reload dropped or changed it: close its kept-alive connections
            task = asyncio.get_running_loop().create_task(gone.prober.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every module's kept-alive connections."""
        for module in self._modules.values():
            await module.prober.close()

    def routes(self) -> list[web.RouteDef]:
        """The /probe route."""
        return [web.get("/probe", self._handle)]

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.query.get("module") or DEFAULT_MODULE
        modules = self._current()
        module = modules.get(name)
        if module is None:
            return _text(400, f"unknown module {name!r} (modules: {', '.join(sorted(modules)) or 'none are configured'})")
        raw = request.query.get("target", "")
        if not raw:
            return _text(400, "the target parameter is missing")
        try:
            target = target_of(target_url(raw))
            timeout = probe_timeout(module.spec.template.timeout, request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
        except (ProbeFailure, ValueError) as exc:
            return _text(400, exc.failure.message if isinstance(exc, ProbeFailure) else str(exc))
        if target.authorization is not None:
            return _text(400, "a target must not carry user:password; put credentials in the module")
        url = url_of(target)
        if not await _allowed(module.allowed, target):
            return _text(403, f"{url} is not in the allowed_targets of module {name!r}")
        started = time.perf_counter()
        result = await self._probe(replace(module.spec.template, url=url, timeout=timeout), module.prober, timeout)
        if result is None:
            return _text(503, f"too many probes in flight: none could start within {timeout:g}s")
        body = render_probe(result, time.perf_counter() - started)
        if request.query.get("debug") == "true":
            return web.Response(text=debug_text(name, url, timeout, result) + body, content_type="text/plain")
        return web.Response(body=body.encode(), headers={"Content-Type": EXPOSITION})

    async def _probe(self, spec: CheckSpec, prober: Prober, timeout: float) -> Result | None:
        """One run within the timeout (retries included); None when no slot freed up in time."""
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except TimeoutError:
            return None
        try:
            async with asyncio.timeout_at(deadline):
                return await prober.run(spec)
        except TimeoutError:
            return Result(spec.name, time.time(), False, error_kind="timeout", error=f"no result within {timeout:g}s (retries included)")
        finally:
            self._slots.release()


async def _allowed(allowed: AllowedTargets, target: Target) -> bool:
    """Whether the target's URL matches a glob, or every address its host resolves to now is in a CIDR.
    A name that does not resolve is let through: the probe fails at DNS, and the prober judges again the
    addresses it actually connects to."""
    if allowed.url_allowed(url_of(target)):
        return True
    if not allowed.networks:
        return False
    if target.ip:
        return allowed.addresses_allowed([target.host])
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return True
    return allowed.addresses_allowed([str(info[4][0]) for info in infos])


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")
