"""Prometheus metrics of one agent, on its own registry (no process-global state)."""

from __future__ import annotations

import math
import platform
from array import array
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics, generate_latest

from pulse_agent import __version__
from pulse_agent.config.model import MetricsDetail
from pulse_agent.result import Result
from pulse_agent.web.exposition import (
    CERT,
    CONSECUTIVE,
    DEGRADED,
    DURATION,
    FAILURE,
    LAST_RUN,
    NEXT_RUN,
    PHASE0,
    PHASES,
    SKIPPED,
    STATUS,
    SUCCESS,
    UP,
    check_pieces,
)

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


# Per-check series are kept as plain floats (slots in web/exposition.py) and rendered by hand:
# prometheus_client children cost ~1 KB each and its exposition ~2 s for 10,000 checks.
# What metrics_detail: compact leaves out: the families with the most series per check, and the least asked for.
COMPACT_OMITS = frozenset(("pulse_check_phase_duration_seconds", "pulse_check_protocol_info", "pulse_check_next_run_timestamp_seconds"))
_COUNTERS = (SUCCESS, FAILURE, SKIPPED)  # every other slot is absent (NaN) until there is a value


_NO_KINDS: dict[str, float] = {}  # shared by every check with no failure yet; never written (observe gives a check its own)


def escape(value: str) -> str:
    """A label value as the text format writes it between quotes."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _CheckState:
    """One check's series values; `label` is its escaped label text (check, and location when set)."""

    __slots__ = ("info", "kinds", "label", "protocol", "values")

    def __init__(self, name: str, location: str | None) -> None:
        self.label = f'check="{escape(name)}"' + (f',location="{escape(location)}"' if location else "")
        self.info = self.label  # pulse_check_info's labels: these and the check's own labels
        # an array, not a list: 8 bytes a value instead of a float object each (100,000 checks: 16 values each)
        self.values = array("d", [math.nan]) * (PHASE0 + len(PHASES))  # no value series before the first result
        for slot in _COUNTERS:
            self.values[slot] = 0.0
        self.kinds: dict[str, float] = _NO_KINDS  # its own dict from the first failure: most checks never fail
        self.protocol = ""  # pulse_check_protocol_info's extra labels, from the last run that got a response


class Metrics:
    """Every series pulse-agent exports (names users rely on: README lists each)."""

    def __init__(self, shard: str = "1/1", location: str | None = None, detail: MetricsDetail = "full") -> None:
        disable_created_metrics()  # a *_created series per check doubles every scrape for nothing
        self._states: dict[str, _CheckState] = {}
        self.detail = detail  # metrics_detail: a reload may change it
        self._location = location
        self._agent = CollectorRegistry(auto_describe=False)  # the agent-wide series
        r = self._agent
        ProcessCollector(registry=r)  # process_* of the agent process (not of probe workers)
        Gauge("pulse_build_info", "Always 1: the running pulse-agent and Python versions.", ["version", "python"],
              registry=r).labels(__version__, platform.python_version()).set(1)  # fmt: skip
        self.scheduler_lag = Histogram("pulse_scheduler_lag_seconds", "Due time to run start.", buckets=LAG_BUCKETS, registry=r)
        self.inflight = Gauge("pulse_checks_inflight", "Runs in progress.", registry=r)
        self.configured = Gauge(
            "pulse_checks_configured", "Enabled checks this agent runs (its shard K/N of the config).", ["shard"], registry=r
        ).labels(shard)
        self.results_written = Counter("pulse_results_written", "Results written to the database.", registry=r)
        self.results_write_failures = Counter(
            "pulse_results_write_failures", "Failed attempts to write results to the database (each retry counts).", registry=r
        )
        self.results_unwritten = Gauge("pulse_results_unwritten", "Results waiting to be written to the database.", registry=r)
        self.http_connections = Gauge("pulse_http_connections", "Inbound connections being served now.", registry=r)
        self.http_connections_refused = Counter(
            "pulse_http_connections_refused", "Inbound connections answered 503 and closed: the connection cap was reached.", registry=r
        )
        self.worker_restarts = Counter("pulse_worker_restarts", "Probe worker processes started again after exiting.", registry=r)
        self.notifications = Counter(
            "pulse_notifications", "Delivery attempts by notifier: delivered, failed (will retry) or dead (gave up).",
            ["notifier", "result"], registry=r,
        )  # fmt: skip
        self.notification_queue = Gauge("pulse_notification_queue_depth", "Notifications waiting to be delivered.", registry=r)
        self.incidents_open = Gauge("pulse_incidents_open", "Checks with an open incident.", registry=r)
        self.config_reloads = Counter("pulse_config_reloads", "Config reload attempts by result.", ["result"], registry=r)
        self.config_last_reload_ok = Gauge(
            "pulse_config_last_reload_successful", "1 if the last config reload was applied, 0 if it was refused.", registry=r
        )
        self.config_last_reload_ok.set(1)
        self.config_last_reload_time = Gauge(
            "pulse_config_last_reload_success_timestamp_seconds",
            "When the running config was applied (at start or by a reload).",
            registry=r,
        )
        for result in ("success", "failure"):
            self.config_reloads.labels(result)

    def _for(self, check: str) -> _CheckState:
        state = self._states.get(check)
        if state is None:
            state = self._states[check] = _CheckState(check, self._location)
        return state

    def observe(self, result: Result) -> None:
        """Update the per-check series from a finished run; what the run did not measure is absent."""
        v = self._for(result.check).values
        v[UP] = 1.0 if result.ok else 0.0
        v[DURATION] = result.response_time_ms / 1000 if result.response_time_ms is not None else math.nan
        v[STATUS] = float(result.status_code or 0)
        v[LAST_RUN] = result.ts
        if result.ok:
            v[SUCCESS] += 1
            v[CONSECUTIVE] = 0.0
        else:
            v[FAILURE] += 1
            v[CONSECUTIVE] = (0.0 if math.isnan(v[CONSECUTIVE]) else v[CONSECUTIVE]) + 1
            state = self._states[result.check]
            if state.kinds is _NO_KINDS:
                state.kinds = {}
            kind = result.error_kind or "internal"
            state.kinds[kind] = state.kinds.get(kind, 0.0) + 1
        v[DEGRADED] = 1.0 if result.degraded else 0.0
        for i, ms in enumerate((result.dns_ms, result.connect_ms, result.tls_ms, result.first_byte_ms, result.response_time_ms)):
            v[PHASE0 + i] = ms / 1000 if ms is not None else math.nan
        if result.cert_expires is not None:
            v[CERT] = result.cert_expires
        if result.http_version is not None:
            self._states[result.check].protocol = protocol_labels(result.http_version, result.tls_version)

    def next_run(self, check: str, due: float | None) -> None:
        """When the scheduler next runs a check (None: never again); ignored for checks not exported."""
        state = self._states.get(check)
        if state is not None:
            state.values[NEXT_RUN] = math.nan if due is None else due

    def reloaded(self, ok: bool, at: float) -> None:
        """Record one reload attempt."""
        self.config_reloads.labels("success" if ok else "failure").inc()
        self.config_last_reload_ok.set(1 if ok else 0)
        if ok:
            self.config_last_reload_time.set(at)

    def config_applied(self, at: float) -> None:
        """The running config was applied at `at` (start-up): the reload gauges describe it."""
        self.config_last_reload_ok.set(1)
        self.config_last_reload_time.set(at)

    def config_restored(self) -> None:
        """The files on disk are the running config again (a refused edit was undone): nothing is refused."""
        self.config_last_reload_ok.set(1)

    def notification(self, notifier: str, result: str) -> None:
        """Count one delivery attempt's outcome."""
        self.notifications.labels(notifier, result).inc()

    def skipped(self, check: str) -> None:
        """Count a run skipped because the previous one was still going."""
        self._for(check).values[SKIPPED] += 1

    def set_checks(self, names: list[str], labels: Mapping[str, Iterable[tuple[str, str]]] | None = None) -> None:
        """Export series for exactly these checks (removed checks disappear; kept ones keep their counts);
        `labels`: each check's own labels, for pulse_check_info."""
        keep = set(names)
        for name in [n for n in self._states if n not in keep]:
            del self._states[name]
        for name in names:
            state = self._for(name)
            own = (labels or {}).get(name, ())
            state.info = state.label + "".join(f',{k}="{escape(v)}"' for k, v in own) if own else state.label
        self.configured.set(len(names))

    def exposition(self) -> Iterator[bytes]:
        """The text exposition in pieces of bounded work, for serving on the event loop with a pause between two."""
        yield from check_pieces(self._states, COMPACT_OMITS if self.detail == "compact" else frozenset())
        yield generate_latest(self._agent)

    def render(self) -> bytes:
        """The whole text exposition at once."""
        return b"".join(self.exposition())


@lru_cache(maxsize=64)
def protocol_labels(http_version: str, tls_version: str | None) -> str:
    """pulse_check_protocol_info's own labels (tls_version "" over http)."""
    return f',http_version="{escape(http_version)}",tls_version="{escape(tls_version or "")}"'
