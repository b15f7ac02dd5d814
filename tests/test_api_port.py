"""The API against a small fake AgentView: the web layer needs only the port, nothing of the agent."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import duckdb
import httpx

from pulse_agent.alerts.humans import Pause
from pulse_agent.alerts.machine import Incident
from pulse_agent.alerts.silence import Silence
from pulse_agent.config.model import CheckSpec, ModuleSpec
from pulse_agent.live.events import EventHub, Subscription
from pulse_agent.live.reload import Reload
from pulse_agent.report import Report, ReportRequest
from pulse_agent.result import Result
from pulse_agent.store.export import Exported
from pulse_agent.view import AgentView, AlertingClosed, CheckStatus, StoreClosed
from pulse_agent.web.api import api_routes
from pulse_agent.web.app import make_app, serve
from pulse_agent.web.metrics import Metrics
from tests.conftest import spec

NOW = 1_800_000_000.0


class FakeView:
    """Two checks, one running; no database; run-now answers a fixed result or refuses."""

    def __init__(self) -> None:
        self._checks = (spec("http://user:pw@example.invalid/", name="busy"), spec("http://example.invalid/", name="idle"))
        self.hub = EventHub()
        self.reloads: list[str] = []

    def now(self) -> float:
        return NOW

    def checks(self) -> tuple[CheckSpec, ...]:
        return self._checks

    def check(self, name: str) -> CheckSpec | None:
        return next((c for c in self._checks if c.name == name), None)

    def status(self, spec: CheckSpec) -> CheckStatus:
        last = Result(spec.name, NOW - 5, True, status_code=204) if spec.name == "idle" else None
        return CheckStatus(spec.name == "busy", False, 0, 3, False, None, NOW + 60, last)

    def modules(self) -> tuple[ModuleSpec, ...]:
        return ()

    async def read(self, query: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        raise StoreClosed("the database is not open")

    async def report(self, question: ReportRequest) -> Report:
        raise StoreClosed("the database is not open")

    def export_dir(self) -> str | None:
        return None

    async def export(self, out: str, start: float, end: float, agent_name: str) -> Exported:
        raise AssertionError("no export_dir: never asked")

    def subscribe(self) -> contextlib.AbstractContextManager[Subscription]:
        return self.hub.subscribe()

    async def run_now(self, spec: CheckSpec) -> Result | None:
        return None if spec.name == "busy" else Result(spec.name, NOW, False, error_kind="status", error="expected 2xx, got 500")

    async def reload(self, reason: str) -> Reload:
        self.reloads.append(reason)
        return Reload(False, reason, "abc", errors=("pulse.yaml:1:1: version: required",))

    def silences(self) -> list[Silence]:
        raise AlertingClosed("alerting has not started")

    async def add_silence(self, body: dict[str, object]) -> Silence:
        raise AlertingClosed("alerting has not started")

    async def expire_silence(self, silence_id: str) -> Silence | None:
        raise AlertingClosed("alerting has not started")

    async def ack(self, incident_id: str, by: str | None) -> Incident | None:
        raise AlertingClosed("alerting has not started")

    async def pause(self, spec: CheckSpec, author: str | None, reason: str | None) -> Pause:
        raise StoreClosed("the database is not open")

    async def resume(self, spec: CheckSpec) -> bool:
        raise StoreClosed("the database is not open")


def _typed(view: AgentView) -> AgentView:  # the fake satisfies the port (mypy checks this line)
    return view


async def test_the_api_serves_any_agent_view():
    view = _typed(FakeView())
    runner, port = await serve(make_app(Metrics(), lambda: (True, "ok"), api_routes(view)), "127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            listing = (await client.get("/api/v1/checks")).json()["checks"]
            assert [c["name"] for c in listing] == ["busy", "idle"]
            assert listing[0]["url"] == "http://***@example.invalid/"  # redacted by the web layer, whatever the view
            assert listing[0]["state"]["running"] is True and listing[0]["last_result"] is None
            idle = (await client.get("/api/v1/checks/idle")).json()
            assert idle["state"]["consecutive_successes"] == 3 and idle["last_result"]["status_code"] == 204
            assert idle["next_due"] == "2027-01-15T08:01:00.000Z"
            assert (await client.get("/api/v1/checks/nope")).status_code == 404
            busy = await client.post("/api/v1/checks/busy/run")
            assert busy.status_code == 409
            ran = await client.post("/api/v1/checks/idle/run")
            assert ran.status_code == 200 and ran.json()["error_kind"] == "status"
            closed = await client.get("/api/v1/checks/idle/results")
            assert closed.status_code == 503 and closed.json() == {"error": "the database is not open"}
            assert (await client.post("/api/v1/report", json={"start": NOW - 3600, "end": NOW})).status_code == 503
            assert (await client.post("/api/v1/export", json={"start": NOW - 3600, "end": NOW})).status_code == 403
            refused = await client.post("/-/reload")
            assert refused.status_code == 400 and refused.json()["errors"] == ["pulse.yaml:1:1: version: required"]
            assert view.reloads == ["api"]  # type: ignore[attr-defined]
    finally:
        await runner.cleanup()


