"""/push/{check} (web/push.py) against any PushReceiver: which requests reach a ping, and that a caller
without the token learns nothing of which checks exist."""

from __future__ import annotations

import httpx

from pulse_agent.config.model import CheckSpec, PushSpec
from pulse_agent.probe.push import PushState, Signal
from pulse_agent.result import Result
from pulse_agent.view import PushReceiver, StoreClosed
from pulse_agent.web.app import make_app, serve
from pulse_agent.web.metrics import Metrics
from pulse_agent.web.push import push_routes

TOKEN = "push-token-0123456789abcdef"
API_TOKEN = "api-token-0123456789abcdef"


class Receiver:
    """Records the pings that reach it; one push check, `job`."""

    def __init__(self) -> None:
        self.spec = CheckSpec(name="job", url="", kind="push", push=PushSpec(grace=60, token=TOKEN))
        self.pings: list[tuple[Signal, int | None]] = []
        self.closed = False

    def push_check(self, name: str) -> CheckSpec | None:
        if self.closed:
            raise StoreClosed("the agent is starting or stopping; try again in a moment")
        return self.spec if name == "job" else None

    def push_state(self, name: str) -> PushState | None:
        return PushState(since=0.0, last_ping=10.0) if name == "job" else None

    async def push(self, spec: CheckSpec, signal: Signal, code: int | None = None) -> Result | None:
        self.pings.append((signal, code))
        if signal == "start":
            return None
        ok = signal == "success" or (signal == "exit" and code == 0)
        return Result("job", 0.0, ok, error_kind=None if ok else "signal")


def _typed(receiver: PushReceiver) -> PushReceiver:  # the fake satisfies the port (mypy checks this line)
    return receiver


async def test_signals_tokens_and_refusals():
    receiver = Receiver()
    app = make_app(Metrics(), lambda: (True, "ok"), push_routes(_typed(receiver)), API_TOKEN)
    runner, port = await serve(app, "127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            accepted = {
                ("GET", f"/push/job?token={TOKEN}", None): "OK\n",
                ("POST", "/push/job/start", f"Bearer {TOKEN}"): "OK: started\n",
                ("POST", "/push/job/fail", f"bearer {TOKEN}"): "OK: recorded as failed (signal)\n",
                ("GET", f"/push/job/0?token={TOKEN}", None): "OK\n",
                ("GET", f"/push/job/255?token={TOKEN}", None): "OK: recorded as failed (signal)\n",
            }
            for (method, path, auth), text in accepted.items():
                answer = await client.request(method, path, headers={"Authorization": auth} if auth else {})
                assert (answer.status_code, answer.text) == (200, text), path
                assert answer.headers["Cache-Control"] == "no-store"
            assert receiver.pings == [("success", None), ("start", None), ("fail", None), ("exit", 0), ("exit", 255)]
            refused = {
                f"/push/job?token={TOKEN}x": 404,
                f"/push/other?token={TOKEN}": 404,
                f"/push/job?token={API_TOKEN}": 404,  # the API token opens no push check
                "/push/job?token=%FF%FE": 404,
                "/push/job?token=" + "a" * 5000: 404,
                "/push/job": 401,
                f"/push/job/256?token={TOKEN}": 404,
                f"/push/job/-1?token={TOKEN}": 404,
                f"/push/job/0255?token={TOKEN}": 404,
                f"/push/job/%D9%A3?token={TOKEN}": 404,  # an Arabic-Indic digit is no exit code
                f"/push/job/start/more?token={TOKEN}": 404,
            }
            answers = {path: await client.get(path) for path in refused}
            assert {path: a.status_code for path, a in answers.items()} == refused
            wrong = {answers[p].text for p in list(refused)[:5]}
            assert wrong == {"no push check of that name takes this token\n"}  # the same for a wrong token and no such check
            assert (await client.delete(f"/push/job?token={TOKEN}")).status_code == 405
            assert receiver.pings[5:] == []
            state = (await client.get("/api/v1/checks/job/push", headers={"Authorization": f"Bearer {API_TOKEN}"})).json()
            assert state == {
                "check": "job", "next_due": "1970-01-01T00:01:10.000Z", "deadline": "1970-01-01T00:02:10.000Z", "grace_s": 60,
                "since": "1970-01-01T00:00:00.000Z", "last_ping": "1970-01-01T00:00:10.000Z", "started": None,
            }  # fmt: skip
            assert (await client.get("/api/v1/checks/job/push")).status_code == 401  # behind the API token
            assert (await client.get("/api/v1/checks/nope/push", headers={"Authorization": f"Bearer {API_TOKEN}"})).status_code == 404
            receiver.closed = True  # starting or stopping: 503 for any name, so curl --retry tries again
            for path in (f"/push/job?token={TOKEN}", "/push/other?token=x"):
                closed = await client.get(path)
                assert (closed.status_code, closed.headers["Retry-After"]) == (503, "1")
    finally:
        await runner.cleanup()
