"""Prometheus metrics of one agent, on its own registry (no process-global state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from pulse_agent.result import Result

PHASES = ("dns", "connect", "tls", "first_byte", "total")
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class _CheckSeries:
    """The labelled children of one check, looked up once instead of per result."""

    up: Gauge
    duration: Gauge
    status: Gauge
    success: Counter
    failure: Counter
    skipped: Counter
    degraded: Gauge
    phases: dict[str, Gauge]
    cert: Gauge | None = None  # created on the first verified https result
    kinds: set[str] = field(default_factory=set)  # error kinds seen, for pulse_check_failures_total


class Metrics:
    """Every series pulse-agent exports (names fixed by DESIGN.md)."""

    def __init__(self, shard: str = "1/1") -> None:
        disable_created_metrics()  # a *_created series per check doubles every scrape for nothing
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.check_up = Gauge("pulse_check_up", "1 if the last run of the check succeeded, else 0.", ["check"], registry=r)
        self.check_duration = Gauge("pulse_check_duration_seconds", "Response time of the last run.", ["check"], registry=r)
        self.check_status = Gauge("pulse_check_status_code", "HTTP status code of the last run (0: none).", ["check"], registry=r)
        self.check_runs = Counter("pulse_check_runs", "Finished runs by result.", ["check", "result"], registry=r)
        self.check_skipped = Counter(
            "pulse_check_skipped_runs", "Runs skipped because the previous run was still going.", ["check"], registry=r
        )
        self.check_degraded = Gauge(
            "pulse_check_degraded", "1 if the last run was ok but slower than degraded_response_time.", ["check"], registry=r
        )
        self.check_cert_expiry = Gauge(
            "pulse_check_certificate_expiry_timestamp_seconds",
            "Expiry (Unix time) of the peer certificate seen by the last https run.",
            ["check"],
            registry=r,
        )
        self.check_phase = Gauge(
            "pulse_check_phase_duration_seconds",
            "Time spent in each phase of the last run (dns, connect, tls, first_byte, total).",
            ["check", "phase"],
            registry=r,
        )
        self.check_failures = Counter(
            "pulse_check_failures", "Failed runs by error_kind (series appear with the first failure of a kind).",
            ["check", "error_kind"], registry=r,
        )  # fmt: skip
        self.scheduler_lag = Histogram("pulse_scheduler_lag_seconds", "Due time to run start.", buckets=LAG_BUCKETS, registry=r)
        self.inflight = Gauge("pulse_checks_inflight", "Runs in progress.", registry=r)
        self.configured = Gauge(
            "pulse_checks_configured", "Enabled checks this agent runs (its shard K/N of the config).", ["shard"], registry=r
        ).labels(shard)
        self.results_written = Counter("pulse_results_written", "Results written to the database.", registry=r)
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
            "pulse_config_last_reload_success_timestamp_seconds", "When a config was last loaded successfully.", registry=r
        )
        for result in ("success", "failure"):
            self.config_reloads.labels(result)
        self._series: dict[str, _CheckSeries] = {}

    def _for(self, check: str) -> _CheckSeries:
        series = self._series.get(check)
        if series is None:
            series = _CheckSeries(
                up=self.check_up.labels(check),
                duration=self.check_duration.labels(check),
                status=self.check_status.labels(check),
                success=self.check_runs.labels(check, "success"),
                failure=self.check_runs.labels(check, "failure"),
                skipped=self.check_skipped.labels(check),
                degraded=self.check_degraded.labels(check),
                phases={p: self.check_phase.labels(check, p) for p in PHASES},
            )
            self._series[check] = series
        return series

    def observe(self, result: Result) -> None:
        """Update the per-check series from a finished run."""
        s = self._for(result.check)
        s.up.set(1 if result.ok else 0)
        if result.response_time_ms is not None:
            s.duration.set(result.response_time_ms / 1000)
        s.status.set(result.status_code or 0)
        if result.ok:
            s.success.inc()
        else:
            s.failure.inc()
            kind = result.error_kind or "internal"
            s.kinds.add(kind)
            self.check_failures.labels(result.check, kind).inc()
        s.degraded.set(1 if result.degraded else 0)
        for phase, ms in result.phases().items():
            s.phases[phase].set(ms / 1000 if ms is not None else 0)
        if result.cert_expires is not None:
            if s.cert is None:
                s.cert = self.check_cert_expiry.labels(result.check)
            s.cert.set(result.cert_expires)

    def reloaded(self, ok: bool, at: float) -> None:
        """Record one reload attempt."""
        self.config_reloads.labels("success" if ok else "failure").inc()
        self.config_last_reload_ok.set(1 if ok else 0)
        if ok:
            self.config_last_reload_time.set(at)

    def notification(self, notifier: str, result: str) -> None:
        """Count one delivery attempt's outcome."""
        self.notifications.labels(notifier, result).inc()

    def skipped(self, check: str) -> None:
        """Count a run skipped because the previous one was still going."""
        self._for(check).skipped.inc()

    def set_checks(self, names: list[str]) -> None:
        """Export series for exactly these checks (removed checks disappear)."""
        for name in set(self._series) - set(names):
            for metric in (self.check_up, self.check_duration, self.check_status, self.check_skipped, self.check_degraded):
                metric.remove(name)
            for phase in PHASES:
                self.check_phase.remove(name, phase)
            if self._series[name].cert is not None:
                self.check_cert_expiry.remove(name)
            for result in ("success", "failure"):
                self.check_runs.remove(name, result)
            for kind in self._series[name].kinds:
                self.check_failures.remove(name, kind)
            del self._series[name]
        for name in names:
            self._for(name)
        self.configured.set(len(names))

    def render(self) -> bytes:
        """The text exposition (slow for many checks: call it off the event loop)."""
        return generate_latest(self.registry)
