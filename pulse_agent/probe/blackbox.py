"""blackbox_exporter's /probe contract: request parameters -> a probe; one Result -> its metric names. Pure."""

from __future__ import annotations

import math

from pulse_agent.result import Result

DEFAULT_MODULE = "http_2xx"  # what blackbox_exporter probes with when the request names no module
SCRAPE_TIMEOUT_OFFSET = 0.5  # blackbox's default --timeout-offset: time left for the answer to travel back
MIN_TIMEOUT = 0.1


def target_url(target: str) -> str:
    """The URL to probe: like blackbox_exporter, a target without a scheme is http://."""
    return target if "://" in target else f"http://{target}"


def probe_timeout(module_timeout: float, scrape_timeout: str | None) -> float:
    """The module's timeout, but within Prometheus' X-Prometheus-Scrape-Timeout-Seconds less the offset
    (blackbox's rule); ValueError naming the header when its value is not a number of seconds."""
    if scrape_timeout is None or not scrape_timeout.strip():
        return module_timeout
    try:
        seconds = float(scrape_timeout)
    except ValueError:
        raise ValueError(f"X-Prometheus-Scrape-Timeout-Seconds: {scrape_timeout[:40]!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"X-Prometheus-Scrape-Timeout-Seconds: {scrape_timeout[:40]!r} is not a positive number of seconds")
    limit = seconds - SCRAPE_TIMEOUT_OFFSET if seconds > SCRAPE_TIMEOUT_OFFSET + MIN_TIMEOUT else seconds / 2
    return max(MIN_TIMEOUT, min(module_timeout, limit))


def _s(ms: float | None) -> float:
    return ms / 1000 if ms is not None else 0.0


def http_phases(result: Result) -> dict[str, float]:
    """blackbox's probe_http_duration_seconds phases from a result's marks (of its last hop; processing is
    request sent to first byte, so it includes earlier hops of a redirect chain)."""
    dns, connect, tls = _s(result.dns_ms), _s(result.connect_ms), _s(result.tls_ms)
    first_byte, total = _s(result.first_byte_ms), _s(result.response_time_ms)
    processing = max(0.0, first_byte - dns - connect - tls) if result.first_byte_ms is not None else 0.0
    transfer = max(0.0, total - first_byte) if result.first_byte_ms is not None and result.response_time_ms is not None else 0.0
    phases = {"resolve": dns, "connect": connect, "tls": tls, "processing": processing, "transfer": transfer}
    return {phase: round(seconds, 6) for phase, seconds in phases.items()}  # marks are in microseconds


def _gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{labels} {value!r}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def render_probe(result: Result, duration: float) -> str:
    """The exposition blackbox_exporter's http prober answers, for one result (text format 0.0.4)."""
    tls = result.tls_ms is not None or result.cert_expires is not None
    out = [
        _gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds", [("", _s(result.dns_ms))]),
        _gauge("probe_duration_seconds", "Returns how long the probe took to complete in seconds", [("", duration)]),
        _gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex", [("", 1.0 if result.error_kind == "body" else 0.0)]),
        _gauge(
            "probe_http_duration_seconds",
            "Duration of http request by phase, summed over all redirects",
            [(f'{{phase="{phase}"}}', seconds) for phase, seconds in http_phases(result).items()],
        ),
        _gauge("probe_http_ssl", "Indicates if SSL was used for the final redirect", [("", 1.0 if tls else 0.0)]),
        _gauge("probe_http_status_code", "Response HTTP status code", [("", float(result.status_code or 0))]),
        _gauge("probe_http_version", "Returns the version of HTTP of the probe response", [("", _http_version(result))]),
    ]
    if result.tls_version is not None:
        out.append(_gauge("probe_tls_version_info", "Returns the TLS version used or NaN when unknown",
                          [(f'{{version="TLS {result.tls_version}"}}', 1.0)]))  # fmt: skip
    if result.cert_expires is not None:
        out.append(_gauge("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime", [("", result.cert_expires)]))
    out.append(_gauge("probe_success", "Displays whether or not the probe was a success", [("", 1.0 if result.ok else 0.0)]))
    return "".join(out)


def _http_version(result: Result) -> float:
    """probe_http_version's value: 1.1, 2 (blackbox writes HTTP/2 as 2), 0 without a response."""
    return float(result.http_version) if result.http_version and result.status_code else 0.0


def debug_text(module: str, url: str, timeout: float, result: Result) -> str:
    """What `debug=true` adds (like blackbox_exporter's): how the probe went, in words."""
    verdict = "succeeded" if result.ok else f"failed: {result.error_kind}: {result.error}"
    return f"Module {module}, target {url}, timeout {timeout:g}s\nProbe {verdict}\n\nMetrics that would have been returned:\n"
