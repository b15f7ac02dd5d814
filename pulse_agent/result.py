"""The outcome of one check run: what is stored, exported, logged and alerted on."""

from __future__ import annotations

import marshal
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, Literal, get_args

# The closed set of error_kind values; docs/probes.md explains each (a test keeps them in step).
ErrorKind = Literal[
    "timeout",  # no complete response within the check's timeout
    "dns",  # the host name did not resolve
    "connect",  # TCP connection refused or unreachable
    "tls",  # TLS handshake or certificate verification failed
    "reset",  # the server closed or reset the connection before a complete response
    "protocol",  # the answer was not valid HTTP (or not the protocol a STARTTLS names)
    "redirects",  # more redirects than allowed
    "body_too_large",  # the body exceeded the size limit
    "status",  # status code not expected
    "latency",  # slower than expect.max_response_time
    "body",  # body_contains / body_matches failed
    "json",  # body not JSON, or a JSONPath value differs
    "header",  # an expected header is missing or differs
    "certificate",  # the peer certificate expires too soon
    "version",  # the negotiated HTTP or TLS version is not the expected one
    "late",  # push checks: no ping by the due time + grace
    "signal",  # push checks: the job signalled failure (/fail) or a non-zero exit code
    "receive",  # tcp/tls: the bytes read do not hold expect.receive
    "starttls",  # tls: the server answered but did not agree to STARTTLS
    "internal",  # a fault in pulse-agent itself; please report it
    "rcode",  # a DNS response code other than the expected one
    "answer",  # DNS answers, their count or the authoritative flag not as expected
    "packet_loss",  # more ICMP echo requests unanswered than expect.max_packet_loss allows
]
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a run failed: a kind of the closed set, and what was expected and what came."""

    kind: ErrorKind
    message: str


@dataclass(frozen=True, slots=True)
class Result:
    """One finished run of a check (after retries)."""

    check: str
    ts: float  # run start, epoch seconds
    ok: bool
    degraded: bool = False
    status_code: int | None = None
    response_time_ms: float | None = None
    error_kind: str | None = None
    error: str | None = None
    attempts: int = 1
    scheduled_ts: float | None = None
    dns_ms: float | None = None  # phases of the last attempt's last hop
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    cert_expires: float | None = None  # epoch seconds, https with verification
    maintenance: bool = False  # ran inside a maintenance window: stored, never alerted on
    http_version: str | None = None  # of the final response: "1.0", "1.1", "2"
    tls_version: str | None = None  # negotiated for the final response: "1.2", "1.3"; None over http
    details: dict[str, Any] | None = None  # kind-specific facts (DNS answers, ICMP RTTs, push exit code): JSON, docs/probes.md

    def phases(self) -> dict[str, float | None]:
        """Phase timings by name, total included."""
        return {"dns": self.dns_ms, "connect": self.connect_ms, "tls": self.tls_ms,
                "first_byte": self.first_byte_ms, "total": self.response_time_ms}  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready mapping with ISO-8601 UTC timestamps."""
        out = {name: getattr(self, name) for name in self.__slots__}
        out["ts"] = iso(self.ts)
        out["scheduled_ts"] = iso(self.scheduled_ts) if self.scheduled_ts is not None else None
        out["cert_expires"] = iso(self.cert_expires) if self.cert_expires is not None else None
        return out


_KEPT = attrgetter(*Result.__slots__[1:])  # every value but the check's name, in the order Result takes them


def kept(result: Result, name: str) -> bytes | Result:
    """result as the agent keeps the last one of the check called name: its values but the name, marshalled (a
    third of the object with its own floats); result itself when its check is another or marshal cannot write
    a value exactly as it is (a subclass of int or str, say)."""
    if result.check != name:
        return result
    try:
        return marshal.dumps(_KEPT(result))
    except ValueError:
        return result


def from_kept(name: str, value: bytes | Result) -> Result:
    """The result `kept` made value of, equal to it field for field."""
    return value if isinstance(value, Result) else Result(name, *marshal.loads(value))


def iso(ts: float) -> str:
    """Epoch seconds -> ISO-8601 UTC with milliseconds: datetime's text, made once per second (every streamed
    result and API summary writes two; docs/performance.md)."""
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)  # as datetime.fromtimestamp rounds, then isoformat cuts to milliseconds
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    return f"{_iso_second(int(whole))}.{us // 1000:03d}Z"


@lru_cache(maxsize=256)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds").removesuffix("+00:00")


def utc(ts: float | None) -> datetime | None:
    """Epoch seconds as an aware UTC datetime for DuckDB (None stays None)."""
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def from_iso(text: str) -> float:
    """ISO-8601 (Z or an offset) -> epoch seconds; ValueError saying what to write otherwise."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time such as 2026-11-22T10:00:00Z") from None
