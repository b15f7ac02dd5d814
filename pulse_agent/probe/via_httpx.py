"""The second transport: one request through httpx (HTTP/2 by ALPN, forward proxies), answered as a RawResponse.

The prober keeps everything else for both transports: retries, the total timeout around the
whole attempt, redirects (so credentials stay on their origin by the same rule), content
decoding and the assertions. This module only makes one exchange, and measures what httpx lets
it see through httpcore's trace events: TCP connect (DNS included: httpx resolves inside it),
TLS and first byte. Its one entry point is `HttpxTransport.exchange`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import httpx

from pulse_agent.config.model import CheckSpec
from pulse_agent.probe.cert import peer_cert_not_after
from pulse_agent.probe.connect import Target
from pulse_agent.probe.phases import PhaseClock
from pulse_agent.probe.tlsconf import Contexts, settings_key, version_name
from pulse_agent.probe.wire import ProbeFailure, RawResponse, check_names, fail, request_bytes
from pulse_agent.redact import redact_url
from pulse_agent.sizes import format_size

HTTP_VERSIONS = {"HTTP/2": "2", "HTTP/1.1": "1.1", "HTTP/1.0": "1.0"}


class HttpxTransport:
    """httpx clients by proxy, TLS settings, HTTP version and connection reuse; each made once, closed by close()."""

    def __init__(self) -> None:
        self._clients: dict[tuple[object, ...], httpx.AsyncClient] = {}
        self._contexts = Contexts()  # not the fast path's: httpcore sets ALPN on the contexts it is given
        self._closing: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Close every client and its connections."""
        clients, self._clients = self._clients, {}
        await _close_all(clients.values())
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def forget(self) -> None:
        """Drop every client (and its key, which holds a proxy URL with credentials); runs in flight
        keep theirs until they finish, new runs make new ones. Closed in the background."""
        if self._clients:
            clients, self._clients = self._clients, {}
            task = asyncio.get_running_loop().create_task(_close_all(clients.values()))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def exchange(
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
        """One request and its response (undecoded body, at most spec.max_body_size); ProbeFailure otherwise."""
        head = (("Host", host or target.host_header), *headers)
        check_names(spec.headers)
        request_bytes(method, target.path, head, body)  # refuses, as the fast path does, what must never be written
        proxy = proxy_for(spec, target)
        try:
            client = self._client(spec, proxy, target)
        except (ValueError, httpx.InvalidURL) as exc:  # HTTP_PROXY is the environment's, never validated
            raise fail("connect", f"cannot use proxy {redact_url(proxy or '')}: {exc}") from None
        url = f"{'https' if target.tls else 'http'}://{target.host_header}{target.path}"
        trace = _Trace(clock)
        extensions: dict[str, Any] = {"trace": trace, "sni_hostname": server_name}
        request = client.build_request(
            method, url, headers=[(n.encode(), v.encode()) for n, v in head], content=body, extensions=extensions
        )
        try:
            response = await client.send(request, stream=True)
            try:
                _refuse_smuggling(response)
                raw = await _read(response, spec.max_body_size, method == "HEAD")
            finally:
                await response.aclose()
        except (httpx.HTTPError, ssl.SSLError) as exc:  # httpcore lets an SSLError on read through as it is
            raise failure_of(exc, proxy) from None
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        clock.cert_not_after = peer_cert_not_after(stream) if ssl_object is not None else None
        clock.tls_version = version_name(ssl_object)
        clock.headers = trace.headers_at or time.perf_counter()
        return RawResponse(
            status=response.status_code,
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in reversed(response.headers.raw)},
            body=raw,
            headers_at=clock.headers,
            reusable=False,
            http_version=HTTP_VERSIONS.get(response.http_version, response.http_version),
        )

    def _client(self, spec: CheckSpec, proxy: str | None, target: Target) -> httpx.AsyncClient:
        h2 = spec.http_version == "2"
        key = (proxy, h2, spec.reuse_connections, *(settings_key(spec) if target.tls else ()))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = httpx.AsyncClient(
                verify=self._contexts.get(spec) if target.tls else True,
                http2=h2,
                proxy=proxy,
                trust_env=False,  # the environment is read by proxy_for, and only when the check asks
                timeout=None,  # the prober's total timeout bounds the whole attempt
                follow_redirects=False,  # the prober follows them, with its credential rules
                limits=httpx.Limits(max_keepalive_connections=None if spec.reuse_connections else 0),
            )
            del client.headers["Connection"]  # the other defaults are replaced by the prober's own headers
        return client


async def _close_all(clients: Iterable[httpx.AsyncClient]) -> None:
    for client in clients:
        await client.aclose()


def proxy_for(spec: CheckSpec, target: Target) -> str | None:
    """The proxy a request to target goes through: proxy_url, or HTTP(S)_PROXY unless NO_PROXY names the host."""
    if spec.proxy_url:
        return spec.proxy_url
    if not spec.proxy_from_environment:
        return None
    proxies = getproxies_environment()
    proxy = proxies.get("https" if target.tls else "http")
    if not proxy or proxy_bypass_environment(f"{target.host}:{target.port}", proxies):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"  # proxy:3128, as curl reads it


def _refuse_smuggling(response: httpx.Response) -> None:
    """Content-Length with Transfer-Encoding fails with protocol, as on the fast path (h11 lets Transfer-Encoding win)."""
    names = {name.lower() for name, _ in response.headers.raw}
    if b"content-length" in names and b"transfer-encoding" in names:
        raise fail("protocol", "invalid HTTP response: Content-Length together with Transfer-Encoding")


async def _read(response: httpx.Response, limit: int, head_only: bool) -> bytes:
    """The body as sent (content-encoded), failing once it passes limit without reading the rest."""
    if head_only:
        return b""
    chunks, size = [], 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise fail("body_too_large", f"body larger than {format_size(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)


class _Trace:
    """httpcore's trace events as PhaseClock marks (the last connection's: a proxy's CONNECT comes first)."""

    def __init__(self, clock: PhaseClock) -> None:
        self.clock = clock
        self.headers_at: float | None = None

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        clock = self.clock
        if event == "connection.connect_tcp.started":
            clock.conn_start = now
        elif event == "connection.connect_tcp.complete":
            clock.tcp_done = now
        elif event.endswith("start_tls.complete"):
            clock.tls_done = now
        elif event.endswith("send_request_headers.started") and clock.sent is None:
            clock.sent = now  # a proxy's CONNECT counts: the request may then have left, so at_most_once is not retried
        elif event.endswith("receive_response_headers.complete"):
            self.headers_at = now


def failure_of(exc: Exception, proxy: str | None) -> ProbeFailure:
    """httpx's exception as one of our error kinds, saying what failed."""
    cause = _root(exc)
    via = f" (through proxy {redact_url(proxy)})" if proxy else ""
    if isinstance(exc, httpx.ProxyError):
        return fail("connect", f"the proxy refused the request{via}: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return fail("timeout", f"httpx timed out: {exc}")
    if isinstance(cause, ssl.SSLCertVerificationError):
        return fail("tls", f"certificate not trusted: {cause.verify_message or cause.reason}")
    if isinstance(cause, ssl.SSLError):
        return fail("tls", f"TLS failed: {cause.reason or cause}")
    if isinstance(cause, socket.gaierror):
        return fail("dns" if not proxy else "connect", f"cannot resolve{' the proxy' if proxy else ''}{via}: {cause.strerror or cause}")
    if isinstance(exc, httpx.ConnectError):
        return fail("connect", f"cannot connect{via}: {_reason(cause)}")
    if isinstance(exc, httpx.LocalProtocolError):
        return fail("internal", f"request not sent: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc)
        cut = any(word in text.lower() for word in ("disconnected", "incomplete", "peer closed", "without sending", "connectionterminated"))
        return fail("reset" if cut else "protocol", f"{'server closed the connection' if cut else 'invalid HTTP response'}: {text}")
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
        return fail("reset", f"connection error{via}: {_reason(cause)}")
    return fail("protocol", f"{type(exc).__name__}: {exc}")


def _root(exc: BaseException) -> BaseException:
    """The exception httpx's started from (httpcore re-raises as its own, from the original)."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return seen


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
