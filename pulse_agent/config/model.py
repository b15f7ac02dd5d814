"""The typed config: frozen dataclasses that the rest of the agent reads."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from pulse_agent.config.dns import DnsCheck
from pulse_agent.config.icmp import IcmpCheck
from pulse_agent.listen import DEFAULT_LISTEN
from pulse_agent.names import bucket
from pulse_agent.schedule import Cron, Interval, OneShot, Schedule

Pairs = tuple[tuple[str, str], ...]
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Missed = Literal["skip", "run_once"]
Delivery = Literal["at_least_once", "at_most_once"]
LogFormat = Literal["json", "text"]
LogLevel = Literal["debug", "info", "warning", "error"]
MetricsDetail = Literal["full", "compact"]
CheckKind = Literal["http", "tcp", "tls", "dns", "icmp", "push"]  # one per probe module (probe/kinds.py); the schema's branch sets it

_SHARD = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")
_STATUS = re.compile(r"([1-5])xx|([1-5]\d\d)(?:-([1-5]\d\d))?")


@dataclass(frozen=True, slots=True)
class StatusRange:
    """Accepted status codes low..high inclusive, as the user wrote them."""

    low: int
    high: int
    text: str

    @classmethod
    def parse(cls, value: int | str) -> StatusRange:
        """200 -> 200..200, "2xx" -> 200..299, "200-204" -> 200..204."""
        return _status_range(value)

    @classmethod
    def _parse(cls, value: int | str) -> StatusRange:
        if isinstance(value, int):
            return cls(value, value, str(value))
        m = _STATUS.fullmatch(value.strip())
        if m is None:
            raise ValueError(f"{value!r} is not a status code, class (2xx) or range (200-299)")
        if m.group(1):
            low = int(m.group(1)) * 100
            return cls(low, low + 99, value)
        low, high = int(m.group(2)), int(m.group(3) or m.group(2))
        if high < low:
            raise ValueError(f"range {value!r} ends before it starts")
        return cls(low, high, value)

    def matches(self, code: int) -> bool:
        """Whether code is in this range."""
        return self.low <= code <= self.high


@lru_cache(maxsize=1024)
def _status_range(value: int | str) -> StatusRange:
    return StatusRange._parse(value)  # frozen, so one object serves every check that writes the same status


@dataclass(frozen=True, slots=True)
class JsonRule:
    """One expect.json entry: compare the value at a JSONPath with `op` ("==", "<", "exists", ...)."""

    op: str
    value: object
    text: str  # as written, for messages


HttpVersion = Literal["1.0", "1.1", "2"]
TlsVersion = Literal["1.2", "1.3"]
Starttls = Literal["smtp", "imap", "ftp"]  # protocols a tls:// check can upgrade with STARTTLS (probe/starttls.py)
Transport = Literal["fast", "httpx"]  # our HTTP/1.1 client, or httpx (HTTP/2, proxies): chosen when the spec is built


@dataclass(frozen=True, slots=True)
class Expect:
    """What a healthy response looks like."""

    status: tuple[StatusRange, ...] = (StatusRange(200, 299, "2xx"),)
    max_response_time: float | None = None
    degraded_response_time: float | None = None
    body_contains: str | None = None
    body_not_contains: str | None = None
    body_matches: str | None = None
    json: tuple[tuple[str, JsonRule], ...] = ()
    headers: Pairs = ()
    certificate_valid_for: float | None = None
    http_version: HttpVersion | None = None  # the protocol the final response must have come over
    tls_version: TlsVersion | None = None  # the TLS version it must have been negotiated with
    max_duration: float | None = None  # push checks: longest /start -> success a job may take
    receive: str | None = None  # tcp/tls: text, or /regex/ (RE2), the bytes read after connecting (and sending) must hold


@dataclass(frozen=True, slots=True)
class PushSpec:
    """A push check's side of the deal: how far from its due time a ping may come, and the secret it carries."""

    grace: float = 3600.0
    token: str = field(default="", repr=False)  # a secret: never shown


@dataclass(frozen=True, slots=True)
class TlsSpec:
    """TLS settings of a check beyond verification: a client certificate, the server name, a floor version."""

    cert_file: str | None = None
    key_file: str | None = None  # None: the key is in cert_file
    server_name: str | None = None  # SNI and the name the certificate is checked against, on the check's own origin
    min_version: TlsVersion | None = None


@dataclass(frozen=True, slots=True)
class Retries:
    """Total attempts per run and the wait before the first retry (doubling)."""

    attempts: int = 1
    backoff: float = 1.0
    max_backoff: float = 30.0


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """When a check opens and resolves incidents and whom it tells."""

    notify: tuple[str, ...] = ()
    failure_threshold: int = 3
    success_threshold: int = 2
    remind_every: float = 0.0
    send_on_resolved: bool = True
    notify_on_degraded: bool = False


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Opens at each firing of `start` and stays open `duration` seconds."""

    start: Cron | OneShot
    duration: float

    def span(self, ts: float) -> tuple[float, float]:
        """(last opening at or before ts, next opening after ts); infinities where there is none."""
        opened, following = self.start.previous_due(ts), self.start.next_due(ts)
        return (-math.inf if opened is None else opened, math.inf if following is None else following)

    def covers(self, ts: float, span: tuple[float, float] | None = None) -> bool:
        """Whether ts falls inside one of this window's openings (span: this window's span around ts, if known)."""
        return ts < (span or self.span(ts))[0] + self.duration


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """An SLO burn-rate window pair: fire `severity` when both windows (seconds) burn at least `factor`."""

    long: float
    short: float
    factor: float
    severity: Literal["page", "ticket"]


@dataclass(frozen=True, slots=True)
class SloAlerts:
    """slo.burn_rate_alerts with slo.window: which pairs fire and whom they tell."""

    window: float  # the SLO window the budget covers, seconds
    pairs: tuple[BurnWindow, ...]
    page: tuple[str, ...] = ()
    ticket: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A SQL alert rule: one alert instance per row its query returns."""

    name: str
    sql: str
    notify: tuple[str, ...]
    every: float = 60.0
    window: float = 3600.0  # `results` holds the rows of (now - window, now)
    hold: float = 0.0  # `for`: seconds a row must persist before its instance fires
    description: str = ""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One HTTP check, defaults merged in."""

    name: str
    url: str = field(repr=False)  # may carry user:password or query secrets
    method: Method = "GET"
    headers: Pairs = field(default=(), repr=False)  # may carry secrets
    body: bytes | None = None
    schedule: Schedule = field(default_factory=lambda: Interval(60.0, "60s"))
    timezone: str = "UTC"
    missed: Missed = "skip"
    timeout: float = 10.0
    retries: Retries = Retries()
    delivery: Delivery = "at_least_once"
    idempotency_key: bool = False
    max_body_size: int = 1024 * 1024
    follow_redirects: bool = True
    reuse_connections: bool = False  # keep-alive between runs (connect/TLS then mostly not measured)
    max_redirects: int = 10
    tls_verify: bool = True
    ca_file: str | None = None
    tls: TlsSpec = TlsSpec()
    http_version: Literal["1.1", "2"] = "1.1"  # "2" offers h2 by ALPN (https) and falls back to 1.1 when the server does not speak it
    proxy_url: str | None = field(default=None, repr=False)  # may carry user:password
    proxy_from_environment: bool = False  # HTTP_PROXY / HTTPS_PROXY / NO_PROXY, read at each run
    transport: Transport = "fast"
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    env_headers: frozenset[str] = frozenset()  # lower-case names of headers valued from ${VAR}s: not sent to other origins
    expect: Expect = Expect()
    alert: AlertSpec = AlertSpec()
    labels: Pairs = ()
    enabled: bool = True
    maintenance: tuple[MaintenanceWindow, ...] = ()  # the top-level windows, then the check's own
    slo: float | None = None  # objective, percent of runs ok
    depends_on: tuple[str, ...] = ()  # checks whose failure holds back this check's notifications
    slo_alerts: SloAlerts | None = None  # slo.burn_rate_alerts
    kind: CheckKind = "http"  # which probe runs it
    push: PushSpec | None = None  # push checks: pinged, never probed
    send: bytes | None = field(default=None, repr=False)  # tcp/tls: written once connected (may carry a password: AUTH ...)
    starttls: Starttls | None = None  # tls: upgrade a plain connection with this protocol's STARTTLS first
    send_hidden: tuple[bytes, ...] = field(default=(), repr=False)  # words of a ${VAR} send masked in what is shown of answers
    dns: DnsCheck | None = None  # dns:// checks: the query and its expectations
    icmp: IcmpCheck | None = None  # icmp:// checks: how to ping and the packet loss allowed

    def in_maintenance(self, ts: float) -> bool:
        """Whether ts falls in one of this check's maintenance windows."""
        return any(w.covers(ts) for w in self.maintenance)


@dataclass(frozen=True, slots=True)
class NotifierSpec:
    """A named alert destination: Apprise URLs and optional templates."""

    name: str
    urls: tuple[str, ...] = field(repr=False)  # Apprise URLs carry tokens
    title: str | None = None
    body: str | None = None
    backoff: float = 5.0
    max_backoff: float = 300.0
    give_up_after: float = 86400.0
    timeout: float = 10.0
    group_by: tuple[str, ...] = ()  # label names, or "check"; empty: one message per event
    group_wait: float = 30.0
    group_interval: float = 300.0


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Settings of the agent process itself."""

    listen: str = DEFAULT_LISTEN
    database: str = "pulse.duckdb"
    max_concurrency: int = 256
    workers: int | Literal["auto"] = "auto"  # probe processes; 0: the agent probes itself
    log_format: LogFormat = "json"
    log_level: LogLevel = "info"
    api_token: str | None = field(default=None, repr=False)  # guards /api/* and /-/*
    shard: str = "1/1"  # K/N of the checks this agent runs
    retention: float = 30 * 86400.0  # raw results, seconds
    rollup: float = 400 * 86400.0  # hourly aggregates, seconds
    location: str | None = None  # exported as the `location` label of every per-check series
    metrics_detail: MetricsDetail = "full"  # compact: no per-phase, protocol or next-run series (large agents)
    export_dir: str | None = None  # the only directory POST /api/v1/export writes to (none: the API does not export)
    insecure_api: bool = False  # allow an open API on a non-loopback listen address
    query_timeout: float = 30.0  # seconds a report or user query may run before it is interrupted
    query_memory_limit: int = 1 << 30  # bytes: DuckDB's memory_limit of the agent's database


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    """A /probe module: a check template (name = the module's, no url) and the targets it may reach."""

    name: str
    template: CheckSpec
    allowed_targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StatusPageSpec:
    """status_page: what the public page, its data and the badges show."""

    enabled: bool = True
    title: str = "Status"
    description: str = ""
    logo_url: str | None = None
    labels: Pairs = ()  # selector: every key = value must hold; () shows every enabled check
    group_by: str | None = None
    listen: str | None = None  # a separate address serving only the page, badges and status data
    names: Pairs = ()  # check name -> public name

    def shows(self, check: CheckSpec) -> bool:
        """Whether check is on the page (and has badges)."""
        return check.enabled and all(pair in check.labels for pair in self.labels)

    def public_name(self, check: str) -> str:
        """The name the page shows for check."""
        return dict(self.names).get(check, check)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """A whole validated config."""

    source: str
    agent: AgentSettings = AgentSettings()
    digest: str = ""  # content hash of the file(s), set by load_config
    checks: tuple[CheckSpec, ...] = ()
    notifiers: tuple[NotifierSpec, ...] = ()
    modules: tuple[ModuleSpec, ...] = ()
    status_page: StatusPageSpec | None = None  # None: no status_page block
    rules: tuple[RuleSpec, ...] = ()
    unset_variables: tuple[str, ...] = ()  # validate without secrets: the ${VAR}s run will need set

    def check(self, name: str) -> CheckSpec | None:
        """The check called name, if any."""
        return next((c for c in self.checks if c.name == name), None)


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (1-based, as written: "2/4")."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """ "2/4" -> Shard(2, 4); ValueError saying what to write otherwise."""
        m = _SHARD.fullmatch(text.strip())
        if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise ValueError(f"{text!r} is not a shard: write K/N with 1 <= K <= N, e.g. 2/4")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, check: str) -> bool:
        """Whether this shard runs the check called check (every name has exactly one shard)."""
        return self.count == 1 or bucket(check, self.count) == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
