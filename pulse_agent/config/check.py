"""One check's settings -> CheckSpec: its kind's keys, defaults merged and blamed where they came
from, every value checked (all problems reported, each with its place). Pure: what lies outside the
text (files, Apprise, sockets) is asked of the Validators the shell passes in."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from pulse_agent.config import slo_rules
from pulse_agent.config.dns import dns_check
from pulse_agent.config.errors import KeyPath
from pulse_agent.config.expectations import compile_jsonpath, header_rule_problem, parse_json_rule
from pulse_agent.config.icmp import icmp_check
from pulse_agent.config.kinds import for_kind, kind_of, misplaced, scheme_problem
from pulse_agent.config.load import Document, FromEnv
from pulse_agent.config.model import (
    AlertSpec,
    CheckSpec,
    Delivery,
    Expect,
    MaintenanceWindow,
    Retries,
    StatusRange,
    TlsSpec,
)
from pulse_agent.config.push import push_settings
from pulse_agent.config.stream import stream_settings
from pulse_agent.config.transport import proxy_url_problem, transport_of
from pulse_agent.durations import parse_duration
from pulse_agent.probe.regex import regex_problem
from pulse_agent.probe.syntax import header_problem
from pulse_agent.redact import redact_url
from pulse_agent.schedule import Interval, ScheduleError, parse_schedule, time_zone
from pulse_agent.sizes import parse_size

DEFAULT_SCHEDULE = "60s"
DEFAULT_TIMEOUT = "10s"


def merge_defaults(defaults: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    """Check settings over defaults; mappings merge key by key, everything else is replaced."""
    merged = dict(defaults)
    for key, value in check.items():
        base = merged.get(key)
        merged[key] = merge_defaults(base, value) if isinstance(base, dict) and isinstance(value, dict) else value
    return merged


Problem = Callable[[str], "str | None"]  # a value -> why it cannot be used, or None


def _no_problem(_: str) -> str | None:
    return None


def _no_cert_problem(_cert: str, _key: str | None) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Validators:
    """The checks that look beyond the config text (the file system, Apprise): the shell passes them in;
    without them those values are taken as written."""

    file: Problem = _no_problem  # a ca_file path -> why it is not a readable file
    notifier_url: Problem = _no_problem  # an Apprise URL -> why Apprise cannot use it
    icmp: Problem = _no_problem  # an icmp:// URL -> why this process cannot send ICMP echo requests
    rule_sql: Problem = _no_problem  # a rule's SQL -> why DuckDB cannot run it against the store's tables
    client_cert: Callable[[str, str | None], str | None] = _no_cert_problem  # tls.cert_file, key_file -> why ssl cannot load them


NO_VALIDATORS = Validators()
# Validators' checks whose answer depends on this machine now (files, privileges), not only on the installed
# code: what they accepted once is asked again at every load (a reload, a report's remembered config).
MACHINE_CHECKS = ("file", "client_cert", "icmp")


def noting(validators: Validators, note: Callable[[str, tuple[str | None, ...]], None]) -> Validators:
    """validators with each call of a MACHINE_CHECKS check passed to note(kind, arguments) first."""

    def noted(kind: str) -> Callable[..., str | None]:
        check = getattr(validators, kind)

        def call(*args: str | None) -> str | None:
            note(kind, args)
            return check(*args)  # type: ignore[no-any-return]

        return call

    return replace(validators, **{kind: noted(kind) for kind in MACHINE_CHECKS})


# Label names pulse-agent or Prometheus set themselves; a check label with one of them would clash or be renamed.
RESERVED_LABELS = frozenset(("check", "location", "job", "instance"))


def label_name_problem(name: str) -> str | None:
    """Why a check label name cannot be a Prometheus label of pulse_check_info; None when it can."""
    if name.startswith("__"):
        return f"label name {name!r} is reserved: names starting with __ are Prometheus' own"
    if name in RESERVED_LABELS:
        return f"label name {name!r} is reserved (check, location, job and instance are set by pulse-agent or Prometheus)"
    return None


def converted_value(parse: Any, value: Any, fail: Any, default: Any) -> Any:
    """parse(value), or default after fail(reason) when it cannot be read (the schema lets ${...} through)."""
    try:
        return parse(value)
    except (ValueError, TypeError, OverflowError) as exc:
        fail(str(exc))
        return default


def maintenance_windows(doc: Document, path: KeyPath, raw: list[dict[str, Any]] | None) -> tuple[MaintenanceWindow, ...]:
    """Maintenance windows at path; problems go to doc.errors."""
    windows = []
    for j, item in enumerate(raw or ()):
        tz = item.get("timezone", "UTC")
        try:
            time_zone(tz)
        except ScheduleError as exc:
            doc.error((*path, j, "timezone"), str(exc))
            continue
        try:
            start = parse_schedule(item["schedule"], tz)
        except ScheduleError as exc:
            doc.error((*path, j, "schedule"), str(exc))
            continue
        if isinstance(start, Interval):
            doc.error(
                (*path, j, "schedule"),
                f"{item['schedule']!r} is an interval; a window opens at times: use cron, a calendar phrase or 'at <time>'",
            )
            continue
        duration = converted_value(parse_duration, item["duration"], lambda msg, j=j: doc.error((*path, j, "duration"), msg), None)
        if duration is None:
            continue
        if duration <= 0:
            doc.error((*path, j, "duration"), "must be more than 0")
            continue
        windows.append(MaintenanceWindow(start, duration))
    return tuple(windows)


def shared_part(parsed: dict[tuple[Any, ...], Any], cls: Callable[..., Any], *args: Any) -> Any:
    """cls(*args) of a frozen class (or a pure parse to one): one object per load (parsed: a dict that lives
    for one load) for equal arguments of the same types, so that checks written alike share their parts."""
    key = (cls, *args, *map(type, args))  # 1, 1.0 and True are equal keys but not the same value
    try:
        return parsed[key]
    except KeyError:
        value = parsed[key] = cls(*args)
        return value
    except TypeError:  # an unhashable argument
        return cls(*args)


class CheckBuilder:
    """Checks and types one check's settings, blaming defaults for values that came from there."""

    def __init__(
        self, doc: Document, path: KeyPath, raw: dict[str, Any], defaults: dict[str, Any], clean: Any, validators: Validators,
        parsed: dict[tuple[Any, ...], Any] | None = None,
    ) -> None:  # fmt: skip
        self.validators = validators
        self.doc, self.path, self.raw, self.defaults, self.clean = doc, path, raw, defaults, clean
        self.spotless = clean(())  # no error anywhere in the document: every value is clean
        self.parsed = {} if parsed is None else parsed  # see shared(); one dict for the checks of one load
        self.kind = kind_of(raw)
        self.merged = merge_defaults(for_kind(self.kind or "http", defaults), raw)
        self.failed = False

    def shared(self, cls: Callable[..., Any], *args: Any) -> Any:
        """cls(*args) of a frozen class (or a pure parse to one), shared by the checks of this load (shared_part)."""
        return shared_part(self.parsed, cls, *args)

    def origin(self, *keys: str) -> KeyPath:
        """Key path of the value the check uses: its own, or the one in defaults."""
        node: Any = self.raw
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return ("defaults", *keys)
            node = node[key]
        return (*self.path, *keys)

    def get(self, *keys: str, default: Any = None) -> Any:
        """The merged value at keys, or default when absent or already reported by the schema."""
        node: Any = self.merged
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        if not self.spotless and not self.clean(self.origin(*keys)):
            self.failed = True
            return default
        return node

    def fail(self, keys: tuple[str | int, ...], message: str) -> None:
        """Report a problem at keys; a value that is a placeholder (validate without secrets) is no failure."""
        cut = next((n for n, k in enumerate(keys) if isinstance(k, int)), len(keys))  # origin() places the keys up to a list index
        path = (*self.origin(*(k for k in keys[:cut] if isinstance(k, str))), *keys[cut:])
        if self.doc.error(path, message):
            self.failed = True

    def converted(self, keys: tuple[str, ...], parse: Any, default: Any) -> Any:
        """parse(the value at keys, else default), or default after reporting why it cannot be read."""
        # shared: equal timeouts and sizes are one number, not one per check (in the agent and in each worker)
        value = self.get(*keys, default=default)
        return converted_value(lambda v: self.shared(parse, v), value, lambda msg: self.fail(keys, msg), parse(default))

    def build(self, notifiers: set[str], windows: tuple[MaintenanceWindow, ...]) -> CheckSpec | None:
        url = self.get("url", default="")
        if self.kind is None and self.clean(self.origin("url")):
            self.fail(("url",), scheme_problem(url) or "names no kind of check")
        for keys, reason in misplaced(self.kind or "http", self.raw):
            self.fail(keys, reason)
        try:
            parts = urlsplit(url)
            if url and not parts.hostname:
                self.fail(("url",), f"{redact_url(url)!r} has no host")
            parts.port  # noqa: B018  (raises on a port that is not a number from 0 to 65535)
        except ValueError as exc:
            self.fail(("url",), f"{redact_url(url)!r}: {exc}")
            parts = urlsplit("")
        timeout = self.converted(("timeout",), parse_duration, DEFAULT_TIMEOUT)
        if timeout <= 0:
            self.fail(("timeout",), "must be more than 0")
        tz = self.get("timezone", default="UTC")
        try:
            time_zone(tz)
        except ScheduleError as exc:
            self.fail(("timezone",), str(exc))
            tz = "UTC"
        schedule = None
        try:
            schedule = self.shared(parse_schedule, self.get("schedule", default=DEFAULT_SCHEDULE), tz)
        except ScheduleError as exc:
            self.fail(("schedule",), str(exc))
            if not self.failed:  # a placeholder: structure is all validate can check; show it as written
                schedule = Interval(parse_duration(DEFAULT_SCHEDULE), str(self.get("schedule")))
        for j, target in enumerate(self.get("alert", "notify", default=[])):
            if target not in notifiers:
                have = ", ".join(sorted(notifiers)) or "none are defined"
                self.fail(("alert", "notify", j), f"unknown notifier {str(target)[:60]!r} (notifiers: {have})")
        expect = self.expect(parts.scheme)
        ca_file = self.get("ca_file")
        if ca_file is not None and (problem := self.validators.file(ca_file)) is not None:
            self.fail(("ca_file",), problem)
        if self.get("basic_auth") is not None and self.get("bearer_token") is not None:
            self.fail(("bearer_token",), "set basic_auth or bearer_token, not both")
        if url and parts.username is not None and (self.get("basic_auth") is not None or self.get("bearer_token") is not None):
            self.fail(("url",), "the URL carries user:password and basic_auth or bearer_token is set too; keep one")
        for name, value in (self.get("headers", default={}) or {}).items():
            if (problem := header_problem(name, value)) is not None:
                self.fail(("headers", name), problem)
        if isinstance(token := self.get("bearer_token"), str) and header_problem("Authorization", token) is not None:
            self.fail(("bearer_token",), "contains a line break (CR or LF) or NUL; a variable read from a file with a trailing newline?")
        for key in self.get("labels", default={}) or {}:
            if (problem := label_name_problem(key)) is not None:
                self.fail(("labels", key), problem)
        size = self.converted(("max_body_size",), parse_size, "1MiB")
        if size < 1:
            self.fail(("max_body_size",), "must be at least 1 byte")
        backoff = self.converted(("retries", "backoff"), parse_duration, 1)
        max_backoff = self.converted(("retries", "max_backoff"), parse_duration, 30)
        remind_every = self.converted(("alert", "remind_every"), parse_duration, 0)
        self.check_transport(url, expect)
        push = push_settings(self.get, self.fail) if self.kind == "push" else None
        stream = stream_settings(self.kind or "http", url, self.get, self.fail)
        own_path = (*self.path, "maintenance")
        own_windows = maintenance_windows(self.doc, own_path, self.raw.get("maintenance")) if self.clean(own_path) else ()
        dns = dns_check(self.get, self.fail, url, "dns" in self.merged) if self.kind == "dns" else None
        icmp = icmp_check(self.get, self.fail, timeout, url) if self.kind == "icmp" else None
        if (dns is None and self.kind == "dns") or (icmp is None and self.kind == "icmp"):
            self.failed = True
        elif self.kind == "icmp" and (problem := self.validators.icmp(url)) is not None:
            self.fail(("url",), problem)
        if self.failed or not self.clean(self.path) or schedule is None:
            return None
        raw = self.merged
        method = raw.get("method", "GET")
        headers, body = _request_body(raw.get("headers") or {}, raw.get("body"))
        retries = raw.get("retries") or {}
        alert = raw.get("alert") or {}
        return CheckSpec(
            name=raw["name"],
            url=url,
            method=method,
            headers=headers,
            body=body,
            schedule=schedule,
            timezone=tz,
            missed=raw.get("missed", "skip"),
            timeout=timeout,
            retries=self.shared(Retries, retries.get("attempts", 1), backoff, max_backoff),
            delivery=raw.get("delivery") or default_delivery(method),
            idempotency_key=raw.get("idempotency_key", False),
            max_body_size=size,
            follow_redirects=raw.get("follow_redirects", True),
            reuse_connections=raw.get("reuse_connections", False),
            max_redirects=raw.get("max_redirects", 10),
            tls_verify=raw.get("tls_verify", True),
            ca_file=raw.get("ca_file"),
            tls=TlsSpec(**tls) if (tls := raw.get("tls")) else _NO_TLS_OPTIONS,
            http_version=raw.get("http_version", "1.1"),
            proxy_url=raw.get("proxy_url"),
            proxy_from_environment=raw.get("proxy_from_environment", False),
            transport=transport_of(raw),
            basic_auth=(auth["username"], auth["password"]) if (auth := raw.get("basic_auth")) else None,
            bearer_token=raw.get("bearer_token"),
            env_headers=env_headers(raw),
            expect=expect,
            alert=self.shared(  # AlertSpec's fields in order
                AlertSpec,
                tuple(alert.get("notify", ())),
                alert.get("failure_threshold", 3),
                alert.get("success_threshold", 2),
                remind_every,
                alert.get("send_on_resolved", True),
                alert.get("notify_on_degraded", False),
            ),
            maintenance=windows + own_windows,
            slo=float(raw["slo"]["objective"]) if raw.get("slo") else None,
            slo_alerts=slo_rules.slo_alerts(raw.get("slo"), notifiers, self.fail),
            depends_on=tuple(raw.get("depends_on") or ()),
            labels=tuple(sorted((raw.get("labels") or {}).items())),
            enabled=raw.get("enabled", True),
            kind=self.kind or "http",
            push=push,
            send=stream.send,
            starttls=stream.starttls,
            send_hidden=stream.send_hidden,
            dns=dns,
            icmp=icmp,
        )

    def check_transport(self, url: str, expect: Expect) -> None:
        """The transport keys: files that load, a proxy URL that can be used, expectations that can hold."""
        cert_file, key_file = self.get("tls", "cert_file"), self.get("tls", "key_file")
        if key_file is not None and cert_file is None:
            self.fail(("tls", "key_file"), "a key without tls.cert_file: set the client certificate too")
        elif cert_file is not None and (problem := self.validators.client_cert(cert_file, key_file)) is not None:
            self.fail(("tls", "cert_file"), problem)
        proxy = self.get("proxy_url")
        if proxy is not None:
            if (problem := proxy_url_problem(proxy)) is not None:
                self.fail(("proxy_url",), problem)
            if self.get("proxy_from_environment"):
                self.fail(("proxy_from_environment",), "set proxy_url or proxy_from_environment, not both")
        if (proxy is not None or self.get("proxy_from_environment")) and self.get("tls", "server_name") is not None:
            self.fail(("tls", "server_name"), "cannot be used with a proxy: httpx names the URL's host in the tunnel's TLS handshake")
        plain = url.lower().startswith("http://")
        if expect.tls_version is not None and plain:
            self.fail(("expect", "tls_version"), "the URL is http://: no TLS is negotiated")
        if expect.http_version == "2" and (plain or self.get("http_version", default="1.1") != "2"):
            reason = "HTTP/2 is negotiated by TLS (ALPN) and the URL is http://" if plain else 'set http_version: "2" to offer it'
            self.fail(("expect", "http_version"), f"can never hold: {reason}")

    def expect(self, scheme: str) -> Expect:
        """expect: of this check, each key checked on its own so that every problem is reported."""
        if not self.merged.get("expect"):
            return _PLAIN_EXPECT

        def get(key: str) -> Any:
            return self.get("expect", key)

        def fail(key: str, message: str) -> None:
            self.fail(("expect", key), message)

        def seconds(key: str) -> float | None:
            value = get(key)
            return None if value is None else converted_value(parse_duration, value, lambda msg: fail(key, msg), None)

        status = get("status")
        try:
            ranges = tuple(StatusRange.parse(s) for s in (status if isinstance(status, list) else [status or "2xx"]))
        except (ValueError, TypeError) as exc:
            fail("status", str(exc))
            ranges = _PLAIN_EXPECT.status
        pattern = get("body_matches")
        if pattern is not None and (problem := regex_problem(pattern)) is not None:
            fail("body_matches", problem)
        json_rules = []
        for expr, expected in (get("json") or {}).items():
            try:
                compile_jsonpath(expr)
                json_rules.append((expr, parse_json_rule(expected)))
            except ValueError as exc:
                fail("json", str(exc))
            except Exception as exc:  # jsonpath-ng raises several unrelated types
                fail("json", f"invalid JSONPath {expr[:80]!r}: {exc}")
        headers = tuple((k.lower(), v) for k, v in (get("headers") or {}).items())
        for name, glob in headers:  # not `pattern`: that one is body_matches
            if (problem := header_rule_problem(glob)) is not None:
                fail("headers", f"{name}: {problem}")
        valid_for = seconds("certificate_valid_for")
        if valid_for is not None and scheme == "http":
            fail("certificate_valid_for", "needs an https:// URL: a plain http response has no certificate to check")
        return Expect(
            status=ranges,
            max_response_time=seconds("max_response_time"),
            degraded_response_time=seconds("degraded_response_time"),
            body_contains=get("body_contains"),
            body_not_contains=get("body_not_contains"),
            body_matches=pattern,
            json=tuple(json_rules),
            headers=headers,
            certificate_valid_for=valid_for,
            http_version=get("http_version"),
            tls_version=get("tls_version"),
            max_duration=seconds("max_duration"),
            receive=get("receive"),
        )


_PLAIN_EXPECT = Expect()  # most checks expect nothing but a 2xx: share one
_NO_TLS_OPTIONS = TlsSpec()


_NO_NAMES: frozenset[str] = frozenset()


def env_headers(settings: dict[str, Any]) -> frozenset[str]:
    """Lower-case names of the request headers whose value came from a ${VAR} (canonical() cannot tell)."""
    headers = settings.get("headers")
    if not isinstance(headers, dict):
        return _NO_NAMES
    names = frozenset(name.lower() for name, value in headers.items() if isinstance(value, FromEnv) and isinstance(name, str))
    return names or _NO_NAMES  # an empty frozenset is 216 bytes, and nearly every check has one: share it


def default_delivery(method: str) -> Delivery:
    """at_least_once for methods that are safe to repeat, at_most_once for the rest."""
    return "at_least_once" if method in ("GET", "HEAD", "OPTIONS") else "at_most_once"


def _request_body(headers: dict[str, str], body: Any) -> tuple[tuple[tuple[str, str], ...], bytes | None]:
    """Headers and encoded body; a mapping or list body is sent as JSON."""
    if body is None:
        return tuple(headers.items()), None
    if isinstance(body, str):
        return tuple(headers.items()), body.encode("utf-8")
    if not any(k.lower() == "content-type" for k in headers):
        headers = {**headers, "Content-Type": "application/json"}
    return tuple(headers.items()), json.dumps(body, separators=(",", ":")).encode("utf-8")
