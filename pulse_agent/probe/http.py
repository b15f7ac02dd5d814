"""The HTTP prober: runs one check (with retries) over aiohttp and returns a Result."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

import aiohttp

from pulse_agent import __version__
from pulse_agent.config.model import CheckSpec
from pulse_agent.durations import format_duration
from pulse_agent.probe.expect import Failure, Response, evaluate
from pulse_agent.result import Result

MAX_BODY = 1024 * 1024
MAX_REDIRECTS = 10
USER_AGENT = f"pulse-agent/{__version__}"

log = logging.getLogger("pulse_agent.probe")


class Prober:
    """Runs checks over one shared aiohttp session; a fresh connection per request."""

    def __init__(self, *, wall: Callable[[], float] = time.time, max_body: int = MAX_BODY) -> None:
        self._wall = wall
        self._max_body = max_body
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # force_close: like blackbox_exporter, connect (and TLS) time is part of every result.
            connector = aiohttp.TCPConnector(force_close=True, limit=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, spec: CheckSpec, scheduled_ts: float | None = None) -> Result:
        """Run spec once, retrying failed attempts, and judge the last attempt."""
        started = self._wall()
        attempts = max(1, spec.retries.attempts)
        for attempt in range(1, attempts + 1):
            outcome = await self.attempt(spec)
            if isinstance(outcome, Failure):
                failures, degraded, response = [outcome], False, None
            else:
                response = outcome
                failures, degraded = evaluate(spec.expect, response, self._wall())
            if not failures or attempt == attempts:
                break
            await asyncio.sleep(spec.retries.backoff * 2 ** (attempt - 1))
        return Result(
            check=spec.name,
            ts=started,
            ok=not failures,
            degraded=degraded and not failures,
            status_code=response.status_code if response else None,
            response_time_ms=round(response.elapsed * 1000, 3) if response else None,
            error_kind=failures[0].kind if failures else None,
            error="; ".join(f.message for f in failures) if failures else None,
            attempts=attempt,
            scheduled_ts=scheduled_ts,
        )

    async def attempt(self, spec: CheckSpec) -> Response | Failure:
        """One HTTP exchange within the check's timeout: the response facts, or why there are none."""
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(spec.timeout):
                async with self._client().request(
                    spec.method,
                    spec.url,
                    headers=dict(spec.headers),
                    data=spec.body,
                    max_redirects=MAX_REDIRECTS,
                ) as resp:
                    body = await _read_capped(resp.content, self._max_body)
                    if body is None:
                        return Failure("body_too_large", f"body larger than {_size(self._max_body)}")
                    return Response(
                        status_code=resp.status,
                        headers=resp.headers,
                        body=body,
                        elapsed=time.perf_counter() - t0,
                        charset=resp.charset or "utf-8",
                        cert_not_after=_cert_not_after(resp),
                    )
        except TimeoutError:
            return Failure("timeout", f"no complete response within {format_duration(spec.timeout)}")
        except aiohttp.ClientError as exc:
            return classify(exc)
        except Exception as exc:  # a bug of ours must fail this run only, never the agent
            log.exception("probe of %s failed unexpectedly", spec.name)
            return Failure("internal", f"internal error: {type(exc).__name__}: {exc}")


def classify(exc: aiohttp.ClientError) -> Failure:
    """Map an aiohttp error to a stable error_kind and a human message."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Failure("dns", f"cannot resolve {exc.host}: {exc.os_error.strerror or exc.os_error}")
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return Failure("tls", f"TLS failed: {_reason(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure("connect", f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}")
    if isinstance(exc, aiohttp.TooManyRedirects):
        return Failure("redirects", f"more than {MAX_REDIRECTS} redirects")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure("reset", "server closed the connection without a complete response")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure("reset", f"response body cut short: {_reason(exc)}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return Failure("protocol", f"invalid HTTP response: {exc.message}")
    if isinstance(exc, aiohttp.ClientOSError):
        return Failure("reset", f"connection error: {exc.strerror or exc}")
    if isinstance(exc, aiohttp.InvalidURL):
        return Failure("connect", f"invalid URL: {exc}")
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


def _cert_not_after(resp: aiohttp.ClientResponse) -> float | None:
    """Expiry of the verified peer certificate, for https responses."""
    if resp.connection is None or resp.connection.transport is None:
        return None
    ssl_object = resp.connection.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    return ssl.cert_time_to_seconds(cert["notAfter"]) if cert and "notAfter" in cert else None


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "os_error", None) or exc.__cause__ or exc
    return str(getattr(inner, "reason", None) or inner)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"
