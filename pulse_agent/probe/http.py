"""The HTTP prober: runs one check (with retries) over aiohttp and returns a Result."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from pulse_agent import __version__
from pulse_agent.backoff import doubling
from pulse_agent.config.model import CheckSpec
from pulse_agent.durations import format_duration
from pulse_agent.probe.expect import Failure, Response, evaluate
from pulse_agent.probe.phases import PhaseClock, Phases, timed_connector, trace_config
from pulse_agent.result import Result
from pulse_agent.sizes import format_size

USER_AGENT = f"pulse-agent/{__version__}"
JITTER = 0.2  # up to +20% on each backoff, so retries of many checks do not align

log = logging.getLogger("pulse_agent.probe")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP exchange: the response facts or why there are none, its phases, and whether it was sent."""

    outcome: Response | Failure
    phases: Phases
    request_sent: bool


class Prober:
    """Runs checks over shared aiohttp sessions: a fresh connection per request unless the check reuses them."""

    def __init__(self, *, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._ssl: dict[tuple[bool, str | None], ssl.SSLContext | bool] = {}

    def _client(self, reuse: bool) -> aiohttp.ClientSession:
        """The session for fresh connections (the default: like blackbox_exporter, connect and TLS
        time are part of every result), or the one keeping connections alive between runs."""
        session = self._sessions.get(reuse)
        if session is None:
            session = self._sessions[reuse] = aiohttp.ClientSession(
                connector=timed_connector(force_close=not reuse, limit=0, keepalive_timeout=90.0 if reuse else None),
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
                trace_configs=[trace_config()],
            )
        return session

    def _ssl_for(self, spec: CheckSpec) -> ssl.SSLContext | bool:
        """Verification setting of a check; one context per distinct CA file, built once."""
        key = (spec.tls_verify, spec.ca_file)
        if key not in self._ssl:
            self._ssl[key] = False if not spec.tls_verify else ssl.create_default_context(cafile=spec.ca_file)
        return self._ssl[key]

    async def close(self) -> None:
        """Close the sessions and their connections."""
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

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
            await asyncio.sleep(backoff(spec, number) * (1 + random.uniform(0, JITTER)))
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
        )

    async def _attempt(self, spec: CheckSpec, headers: dict[str, str]) -> Attempt:
        """One HTTP exchange within the check's timeout."""
        with PhaseClock(tls=spec.url[:6].lower() == "https:") as clock:
            outcome = await self._exchange(spec, headers, clock)
        return Attempt(outcome, clock.phases(), clock.request_sent)

    async def _exchange(self, spec: CheckSpec, headers: dict[str, str], clock: PhaseClock) -> Response | Failure:
        try:
            async with asyncio.timeout(spec.timeout):
                async with self._client(spec.reuse_connections).request(
                    spec.method,
                    spec.url,
                    headers=headers,
                    data=spec.body,
                    allow_redirects=spec.follow_redirects,
                    max_redirects=spec.max_redirects,
                    ssl=self._ssl_for(spec) if clock.tls else True,
                    trace_request_ctx=clock,
                ) as resp:
                    clock.headers = time.perf_counter()
                    body = await _read_capped(resp.content, spec.max_body_size)
                    if body is None:
                        return Failure("body_too_large", f"body larger than {format_size(spec.max_body_size)}")
                    return Response(
                        status_code=resp.status,
                        headers=resp.headers,
                        body=body,
                        elapsed=time.perf_counter() - clock.start,
                        charset=resp.charset or "utf-8",
                        cert_not_after=clock.cert_not_after,
                    )
        except TimeoutError:
            return Failure("timeout", f"no complete response within {format_duration(spec.timeout)}")
        except aiohttp.ClientError as exc:
            return classify(exc, spec)
        except Exception as exc:  # a bug of ours must fail this run only, never the agent
            log.exception("probe of %s failed unexpectedly", spec.name)
            return Failure("internal", f"internal error: {type(exc).__name__}: {exc}")


def may_retry(delivery: str, request_sent: bool) -> bool:
    """at_least_once retries any failure; at_most_once only when the request never left this machine."""
    return delivery == "at_least_once" or not request_sent


def backoff(spec: CheckSpec, attempt: int) -> float:
    """Wait after the given failed attempt, before jitter: doubling, capped at max_backoff."""
    return doubling(spec.retries.backoff, spec.retries.max_backoff, attempt)


def run_budget(spec: CheckSpec) -> float:
    """Longest one run can take: every attempt's timeout plus every wait between attempts, jitter included."""
    attempts = max(1, spec.retries.attempts)
    waits = sum(backoff(spec, n) for n in range(1, attempts)) * (1 + JITTER)
    return spec.timeout * attempts + waits


def _request_headers(spec: CheckSpec) -> dict[str, str]:
    """Headers of every attempt of one run (one Idempotency-Key shared by all of them)."""
    headers = dict(spec.headers)
    if spec.bearer_token:
        headers["Authorization"] = f"Bearer {spec.bearer_token}"
    elif spec.basic_auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(spec.basic_auth).encode("utf-8")).decode("ascii")
    if spec.idempotency_key:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return headers


def classify(exc: aiohttp.ClientError, spec: CheckSpec | None = None) -> Failure:
    """Map an aiohttp error to a stable error_kind and a human message (never with secrets)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Failure("dns", f"cannot resolve {exc.host}: {exc.os_error.strerror or exc.os_error}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        return Failure("tls", f"certificate not trusted: {reason}")
    if isinstance(exc, aiohttp.ClientSSLError):
        return Failure("tls", f"TLS failed: {_reason(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure("connect", f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}")
    if isinstance(exc, aiohttp.TooManyRedirects):
        limit = spec.max_redirects if spec else "the allowed"
        return Failure("redirects", f"more than {limit} redirects")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure("reset", "server closed the connection without a complete response")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure("reset", f"response body cut short: {_reason(exc)}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return Failure("protocol", f"invalid HTTP response: {exc.message}")
    if isinstance(exc, aiohttp.ClientOSError):
        return Failure("reset", f"connection error: {exc.strerror or exc}")
    if isinstance(exc, aiohttp.InvalidURL):
        return Failure("connect", "invalid URL")
    return Failure("protocol", f"{type(exc).__name__}: {exc}")


async def _read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds limit (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "os_error", None) or exc.__cause__ or exc
    return str(getattr(inner, "reason", None) or inner)
