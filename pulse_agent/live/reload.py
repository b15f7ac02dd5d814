"""A reload's outcome, and its row in the config_versions table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from pulse_agent.config.model import AgentSpec
from pulse_agent.live.diff import ConfigDiff
from pulse_agent.result import utc


@dataclass(frozen=True, slots=True)
class Reload:
    """What one reload attempt did: applied a diff, or kept the running config because of errors."""

    ok: bool
    reason: str  # start, file, sighup, api
    digest: str  # of the config now running
    diff: ConfigDiff | None = None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The answer of POST /-/reload."""
        out: dict[str, Any] = {"ok": self.ok, "reason": self.reason, "digest": self.digest}
        if self.diff is not None:
            out["checks"] = self.diff.checks.counts()
            out["notifiers"] = self.diff.notifiers.counts()
            out["settings_changed"] = list(self.diff.settings)
        if self.errors:
            out["errors"] = list(self.errors)
        return out


def record_version(con: duckdb.DuckDBPyConnection, spec: AgentSpec, diff: ConfigDiff, reason: str, at: float) -> None:
    """Store one applied config version."""
    c = diff.checks
    con.execute(
        "INSERT INTO config_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [utc(at), spec.digest, spec.source, reason, len(spec.checks), list(c.added), list(c.removed), list(c.changed), len(c.unchanged)],
    )
