"""The HTTP prober: runs one check (with retries and redirects) and returns a Result."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from pulse_agent import __version__
from pulse_agent.clock import Clock, SystemClock, sleep_until
from pulse_agent.config.model import CheckSpec
from pulse_agent.durations import format_duration
from pulse_agent.probe.connect import Allow, Pool, Resolver, keep_alive_for, open_connection, target_of
from pulse_agent.probe.expect import Response, evaluate
from pulse_agent.probe.phases import PhaseClock, Phases
from pulse_agent.probe.retry import JITTER, backoff, may_retry
from pulse_agent.probe.syntax import host_name
from pulse_agent.probe.target import Target
from pulse_agent.probe.tlsconf import Contexts, settings_key
from pulse_agent.probe.wire import (
    Connection,
    ProbeFailure,
    RawResponse,
    basic_credentials,
    charset_of,
    check_names,
    decode_body,
    fail,
    request_bytes,
)
from pulse_agent.result import Failure, Result

USER_AGENT = f"pulse-agent/{__version__}"
REDIRECTS = frozenset((301, 302, 303, 307, 308))
DEFAULT_HEADERS = (("User-Agent", USER_AGENT), ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"))
FRAMING = frozenset(("host", "content-length", "connection", "transfer-encoding"))  # written by the prober itself
CROSS_ORIGIN_DROPPED = frozenset(("authorization", "proxy-authorization", "cookie"))  # never sent to another origin

log = logging.getLogger("pulse_agent.probe")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP exchange: the response facts or why there are none, its phases, and whether it was sent."""

    outcome: Response | Failure
    phases: Phases
    request_sent: bool


class Exchange(Protocol):
    """One request and its response on some transport (the prober does the rest: retries, timeout, redirects, judging)."""

    async def __call__(
        self,
        spec: CheckSpec,
        target: Target,
        method: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes | None,
        clock: PhaseClock,
        host: str | None,
        server_name: str,
    ) -> RawResponse: ...


class Prober:
    """The HTTP probe: runs checks on a fresh connection per request (like blackbox_exporter) unless the
    check reuses them. Result times and retry waits follow `clock`; `jitter` draws from [0, 1).

    Two transports: our HTTP/1.1 client (the fast path), and httpx for checks whose spec.transport
    says so (HTTP/2, proxies), decided when the spec was built.
    """

    kind = "http"

    def __init__(
        self, *, clock: Clock | None = None, jitter: Callable[[], float] | None = None,
        resolve: Resolver | None = None, allow: Allow | None = None,
    ) -> None:  # fmt: skip
        self._clock = clock or SystemClock()
        self._wall = self._clock.time
        self._jitter = jitter or random.Random().random  # its own generator: no process-wide random state
        self._resolve = resolve  # host, port -> addresses; None: the system resolver
        self._allow = allow  # judges every connection (redirect hops too); None: any target
        self._pool = Pool()
        self._ssl = Contexts()
        self._httpx: Any = None  # the httpx transport, made (and httpx imported) for the first check that needs it

    async def close(self) -> None:
        """Close kept-alive connections."""
        self._pool.close()
        if self._httpx is not None:
            await self._httpx.close()

    def forget(self) -> None:
        """Drop the httpx clients: each was made with a check's proxy credentials and TLS settings."""
        if self._httpx is not None:
            self._httpx.forget()

    def _exchange_for(self, spec: CheckSpec) -> Exchange:
        """The transport the spec chose."""
        if spec.transport == "fast":
            return self._exchange
        if self._allow is not None:  # validate refuses httpx settings in /probe modules; never judge a target half-way
            raise fail("internal", "a check with allowed targets cannot run through httpx")
        if self._httpx is None:
            from pulse_agent.probe.via_httpx import HttpxTransport

            self._httpx = HttpxTransport()
        return self._httpx.exchange

    async def run(self, spec: CheckSpec, scheduled_ts: float | None = None) -> Result:
        """Run spec once, retrying as its retries and delivery allow, and judge the last attempt."""
        started = self._wall()
        headers = _request_headers(spec)
        attempts = max(1, spec.retries.attempts)
        for number in range(1, attempts + 1):
            attempt = await self._attempt(spec, headers)
            if isinstance(attempt.outcome, Failure):
                failures, degraded, response = [attempt.outcome], False, None
            else:
                response = attempt.outcome
                failures, degraded = evaluate(spec.expect, response, self._wall())
            if not failures or number == attempts or not may_retry(spec.delivery, attempt.request_sent):
                break
            await sleep_until(self._clock, self._clock.time() + backoff(spec, number) * (1 + JITTER * self._jitter()))
        phases = attempt.phases
        return Result(
            check=spec.name,
            ts=started,
            ok=not failures,
            degraded=degraded and not failures,
            status_code=response.status_code if response else None,
            response_time_ms=round(response.elapsed * 1000, 3) if response else None,
            error_kind=failures[0].kind if failures else None,
            error="; ".join(f.message for f in failures) if failures else None,
            attempts=number,
            scheduled_ts=scheduled_ts,
            dns_ms=phases.dns_ms,
            connect_ms=phases.connect_ms,
            tls_ms=phases.tls_ms,
            first_byte_ms=phases.first_byte_ms,
            cert_expires=response.cert_not_after if response else None,
            http_version=response.http_version if response else None,
            tls_version=response.tls_version if response else None,
        )

    async def _attempt(self, spec: CheckSpec, headers: tuple[tuple[str, str], ...]) -> Attempt:
        """One HTTP exchange, redirects followed, within the check's timeout."""
        clock = PhaseClock()
        try:
            async with asyncio.timeout(spec.timeout):
                outcome: Response | Failure = await self._follow(spec, headers, clock)
        except ProbeFailure as exc:
            outcome = exc.failure
        except TimeoutError:
            outcome = Failure("timeout", f"no complete response within {format_duration(spec.timeout)}")
        except Exception as exc:  # a bug of ours must fail this run only, never the agent
            log.exception("probe of %s failed unexpectedly", spec.name)
            outcome = Failure("internal", f"internal error: {type(exc).__name__}: {exc}")
        return Attempt(outcome, clock.phases(), clock.request_sent)

    async def _follow(self, spec: CheckSpec, headers: tuple[tuple[str, str], ...], clock: PhaseClock) -> Response:
        """The final response of spec's request, following redirects as the check allows."""
        url, method, body = spec.url, spec.method, spec.body
        exchange = self._exchange_for(spec)
        target = target_of(url)
        origin = target.origin
        host = _host_header(spec)
        own_name = spec.tls.server_name or (host_name(host) if host else None)  # SNI on the check's own origin
        for hop in range(spec.max_redirects + 1):
            own = target.origin == origin
            hop_headers = _for_origin(headers, target, own, spec.env_headers)
            server_name = (own_name if own else None) or target.host
            raw = await exchange(spec, target, method, hop_headers, body, clock, host if own else None, server_name)
            location = raw.headers.get("location")
            if not (spec.follow_redirects and raw.status in REDIRECTS and location):
                return Response(
                    status_code=raw.status,
                    headers=raw.headers,
                    body=decode_body(raw.headers.get("content-encoding"), raw.body, spec.max_body_size),
                    elapsed=time.perf_counter() - clock.start,
                    charset=charset_of(raw.headers.get("content-type")),
                    cert_not_after=clock.cert_not_after,
                    http_version=raw.http_version,
                    tls_version=clock.tls_version if target.tls else None,
                )
            if hop == spec.max_redirects:
                break
            if raw.status == 303 or (raw.status in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
                headers = tuple(h for h in headers if h[0].lower() != "content-type")
            url = urljoin(url, _location(location))
            target = _redirect_target(url)
            clock.new_hop()
        raise fail("redirects", f"more than {spec.max_redirects} redirects")

    async def _exchange(
        self,
        spec: CheckSpec,
        target: Target,
        method: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes | None,
        clock: PhaseClock,
        host: str | None,
        server_name: str,
    ) -> RawResponse:
        """One request and its response on a kept-alive connection, else (or when that one turns out stale) a new one.

        host: the check's own Host header, on the check's origin only; server_name: the TLS server name (SNI).
        """
        keep = spec.reuse_connections
        head = (("Host", host or target.host_header), *headers, ("Connection", "keep-alive" if keep else "close"))
        check_names(spec.headers)
        request = request_bytes(method, target.path, head, body)  # a request that cannot be written is never sent
        key = (target.origin, server_name, *settings_key(spec))
        connection = self._pool.take(key) if keep else None
        if connection is not None:
            try:
                return await self._send(spec, key, connection, request, method, clock)
            except ProbeFailure as exc:
                # The server closed the idle connection as the request went out (RFC 9112 9.3.1): once more on a
                # new one, within the same attempt and timeout, when repeating the request is allowed.
                if exc.failure.kind != "reset" or connection.replied or spec.delivery != "at_least_once":
                    raise
        context = self._ssl.get(spec) if target.tls else None
        connection = await open_connection(target, context, clock, server_name, self._resolve, self._allow)
        return await self._send(spec, key, connection, request, method, clock)

    async def _send(
        self, spec: CheckSpec, key: tuple[object, ...], connection: Connection, request: bytes, method: str, clock: PhaseClock
    ) -> RawResponse:
        """Write request on connection and read its response; keep the connection when the check and server allow."""
        clock.cert_not_after = connection.cert_not_after
        clock.tls_version = connection.tls_version
        try:
            pending = connection.send(request, head_only=method == "HEAD", limit=spec.max_body_size)
            clock.sent = time.perf_counter()
            raw = await pending
        except BaseException:
            connection.close()
            raise
        clock.headers = raw.headers_at
        if spec.reuse_connections and raw.reusable and not connection.closed:
            self._pool.give(key, connection, keep_alive_for(raw.headers.get("keep-alive")))
        else:
            connection.close()
        return raw


def _request_headers(spec: CheckSpec) -> tuple[tuple[str, str], ...]:
    """Headers of every attempt of one run (one Idempotency-Key shared by all of them); the check's own win."""
    own = {name.lower() for name, _ in spec.headers}
    headers = [h for h in DEFAULT_HEADERS if h[0].lower() not in own]
    headers.extend(h for h in spec.headers if h[0].lower() not in FRAMING)
    if spec.bearer_token:
        headers.append(("Authorization", f"Bearer {spec.bearer_token}"))
    elif spec.basic_auth:
        headers.append(("Authorization", basic_credentials(*spec.basic_auth)))
    if spec.idempotency_key:
        headers.append(("Idempotency-Key", str(uuid.uuid4())))
    return tuple(headers)


def _host_header(spec: CheckSpec) -> str | None:
    """The Host header the check sets, if any."""
    return next((value for name, value in spec.headers if name.lower() == "host"), None) if spec.headers else None


def _for_origin(
    headers: tuple[tuple[str, str], ...], target: Target, own: bool, env_headers: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """headers for target: credentials, cookies and values from ${VAR}s only go to the check's own origin;
    user:password in a URL is Basic auth."""
    if target.authorization is None and own:
        return headers  # nearly every run: nothing to change
    if not own:
        headers = tuple(h for h in headers if (name := h[0].lower()) not in CROSS_ORIGIN_DROPPED and name not in env_headers)
    if target.authorization and not any(h[0].lower() == "authorization" for h in headers):
        headers = (*headers, ("Authorization", target.authorization))
    return headers


def _location(value: str) -> str:
    """A Location header as text: UTF-8 bytes (sent raw by some servers) read as UTF-8, not Latin-1."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _redirect_target(url: str) -> Target:
    """Where a redirect points; ProbeFailure 'redirects' when it cannot be followed (ftp:, no host, ...)."""
    try:
        return target_of(url)
    except ProbeFailure as exc:
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme and scheme not in ("http", "https"):
            raise fail("redirects", f"redirect not followed: {scheme}: URLs cannot be checked (only http and https)") from None
        raise fail("redirects", f"redirect not followed: {exc.failure.message}") from None
