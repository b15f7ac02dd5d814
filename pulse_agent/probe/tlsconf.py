"""TLS client contexts of checks: verification, CA file, client certificate, lowest version; one per distinct setting."""

from __future__ import annotations

import ssl

from pulse_agent.config.model import CheckSpec
from pulse_agent.probe.wire import fail

MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
VERSION_NAMES = {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}


def no_password() -> bytes:
    """Password callback for client keys: an encrypted key fails to load instead of prompting on the terminal."""
    return b""


def make_context(spec: CheckSpec) -> ssl.SSLContext:
    """A new client context for spec's TLS settings (ssl itself enforces them)."""
    context = ssl.create_default_context(cafile=spec.ca_file)
    if not spec.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if spec.tls.cert_file:
        context.load_cert_chain(spec.tls.cert_file, spec.tls.key_file, password=no_password)
    if spec.tls.min_version:
        context.minimum_version = MIN_VERSIONS[spec.tls.min_version]
    return context


def settings_key(spec: CheckSpec) -> tuple[object, ...]:
    """What makes two checks' contexts differ."""
    return (spec.tls_verify, spec.ca_file, spec.tls.cert_file, spec.tls.key_file, spec.tls.min_version)


class Contexts:
    """Contexts built once per distinct setting (a context costs milliseconds to build, a run microseconds to reuse)."""

    def __init__(self) -> None:
        self._contexts: dict[tuple[object, ...], ssl.SSLContext] = {}

    def get(self, spec: CheckSpec) -> ssl.SSLContext:
        """The context for spec's TLS settings; ProbeFailure 'tls' when its client certificate no longer loads."""
        key = settings_key(spec)
        context = self._contexts.get(key)
        if context is None:
            try:
                context = make_context(spec)
            except (ssl.SSLError, OSError) as exc:
                raise fail("tls", f"cannot load TLS settings: {getattr(exc, 'reason', None) or exc.strerror or exc}") from None
            self._contexts[key] = context
        return context


def version_name(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The negotiated TLS version as "1.2" / "1.3"; None without TLS."""
    version = ssl_object.version() if ssl_object is not None else None
    return VERSION_NAMES.get(version, version) if version else None
