"""The HTTP prober against real local servers, well-behaved and not."""

import asyncio

import pytest
from werkzeug import Response as WzResponse

from pulse_agent.config.model import Expect, Retries, StatusRange
from pulse_agent.probe.http import Prober
from tests.conftest import free_port, misbehaving, spec


async def test_ok(httpserver, prober):
    httpserver.expect_request("/health").respond_with_data("ok")
    r = await prober.run(spec(httpserver.url_for("/health")), scheduled_ts=123.0)
    assert (r.ok, r.status_code, r.error_kind, r.error, r.attempts, r.scheduled_ts) == (True, 200, None, None, 1, 123.0)
    assert r.response_time_ms > 0


async def test_server_error_fails_with_status(httpserver, prober):
    httpserver.expect_request("/").respond_with_data("down", status=500)
    r = await prober.run(spec(httpserver.url_for("/")))
    assert (r.ok, r.status_code, r.error_kind, r.error) == (False, 500, "status", "status 500 not in [2xx]")


async def test_expected_status_list(httpserver, prober):
    httpserver.expect_request("/").respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    check = spec(httpserver.url_for("/"), expect=Expect(status=(StatusRange.parse(200), StatusRange.parse("3xx"))))
    r = await prober.run(check)
    # the redirect is followed; /elsewhere is unknown to the server, which answers 500
    assert r.status_code == 500 and r.error_kind == "status"


@pytest.mark.parametrize(
    ("mode", "timeout", "message"),
    [("hang", 0.3, "no complete response within 300ms"), ("drip", 0.5, "no complete response within 500ms")],
)
async def test_the_total_timeout_holds_against_silent_and_dripping_targets(prober, mode, timeout, message):
    """hang: never answers; drip: a body byte every 0.1 s, so no read ever waits long."""
    async with misbehaving(mode) as url:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await prober.run(spec(url, timeout=timeout))
        took = loop.time() - t0
    assert (r.ok, r.error_kind, r.error) == (False, "timeout", message)
    assert timeout <= took < 2.0  # bounded by the timeout, not by the server


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("close", "reset"), ("reset", "reset"), ("garbage", "protocol"), ("headers-then-close", "reset")],
)
async def test_misbehaving_targets_fail_with_a_precise_kind(prober, mode, kind):
    async with misbehaving(mode) as url:
        r = await prober.run(spec(url, timeout=2))
    assert (r.ok, r.error_kind) == (False, kind), r.error


async def test_connection_refused(prober):
    r = await prober.run(spec(f"http://127.0.0.1:{free_port()}/"))
    assert r.error_kind == "connect" and "cannot connect to 127.0.0.1" in r.error


async def test_body_over_the_limit_is_not_read(httpserver):
    httpserver.expect_request("/big").respond_with_data(b"x" * (2 * 1024 * 1024))
    p = Prober()
    try:
        r = await p.run(spec(httpserver.url_for("/big"), max_body_size=1024 * 1024))
    finally:
        await p.close()
    assert (r.ok, r.error_kind, r.error) == (False, "body_too_large", "body larger than 1 MiB")


async def test_slow_response_fails_latency_but_completes(httpserver, prober):
    def slow(_request):
        import time

        time.sleep(0.15)
        return WzResponse("ok")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    r = await prober.run(spec(httpserver.url_for("/slow"), timeout=5, expect=Expect(max_response_time=0.05)))
    assert (r.ok, r.status_code, r.error_kind) == (False, 200, "latency")
    assert r.response_time_ms >= 150


async def test_retries_until_success_and_counts_attempts(httpserver, prober):
    httpserver.expect_ordered_request("/flaky").respond_with_data("no", status=503)
    httpserver.expect_ordered_request("/flaky").respond_with_data("no", status=503)
    httpserver.expect_ordered_request("/flaky").respond_with_data("yes")
    r = await prober.run(spec(httpserver.url_for("/flaky"), retries=Retries(attempts=3, backoff=0.01)))
    assert (r.ok, r.attempts, r.status_code) == (True, 3, 200)


async def test_retry_waits_and_jitter_follow_the_injected_clock(httpserver):
    from pulse_agent.clock import ManualClock

    httpserver.expect_request("/down").respond_with_data("no", status=503)
    clock = ManualClock()
    prober = Prober(clock=clock, jitter=lambda: 0.5)  # waits 10 s * (1 + 0.2 * 0.5) = 11 s, then 20 s * 1.1 = 22 s
    run = asyncio.create_task(prober.run(spec(httpserver.url_for("/down"), retries=Retries(attempts=3, backoff=10, max_backoff=60))))
    try:
        for _ in range(200):  # the first attempt is real I/O: wait for it, not for the clock
            if len(httpserver.log) == 1:
                break
            await asyncio.sleep(0.01)
        await clock.advance(10.9)
        assert len(httpserver.log) == 1 and not run.done()  # still waiting: 11 s had not passed on the clock
        await clock.advance(0.2)
        for _ in range(200):
            if len(httpserver.log) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(httpserver.log) == 2
        for _ in range(100):  # the second wait: however long the second attempt took to be judged
            await asyncio.sleep(0.01)
            await clock.advance(1)
            if run.done():
                break
        r = await asyncio.wait_for(run, 5)
    finally:
        await prober.close()
    assert (r.ok, r.attempts, r.error_kind) == (False, 3, "status")
    assert r.ts == 1_800_000_000.0  # result times come from the same clock


async def test_retries_exhausted_reports_the_last_attempt(httpserver, prober):
    httpserver.expect_request("/down").respond_with_data("no", status=503)
    r = await prober.run(spec(httpserver.url_for("/down"), retries=Retries(attempts=2, backoff=0.01)))
    assert (r.ok, r.attempts, r.error_kind) == (False, 2, "status")
    assert len(httpserver.log) == 2


async def test_method_headers_and_json_body_are_sent(httpserver, prober):
    httpserver.expect_request(
        "/hook", method="POST", json={"ping": True}, headers={"X-Token": "abc", "Content-Type": "application/json"}
    ).respond_with_data("accepted", status=202)
    check = spec(
        httpserver.url_for("/hook"),
        method="POST",
        headers=(("X-Token", "abc"), ("Content-Type", "application/json")),
        body=b'{"ping":true}',
    )
    r = await prober.run(check)
    assert (r.ok, r.status_code) == (True, 202)
    assert httpserver.log[0][0].headers["User-Agent"].startswith("pulse-agent/")


async def test_each_run_uses_a_fresh_connection(httpserver, prober):
    httpserver.expect_request("/").respond_with_data("ok")
    for _ in range(3):
        assert (await prober.run(spec(httpserver.url_for("/")))).ok
    ports = {req.environ["REMOTE_PORT"] for req, _ in httpserver.log}
    assert len(ports) == 3


async def test_a_hanging_target_does_not_delay_other_checks(httpserver, prober):
    httpserver.expect_request("/").respond_with_data("ok")
    async with misbehaving("hang") as url:
        hang = asyncio.create_task(prober.run(spec(url, name="hang", timeout=1)))
        fine = asyncio.create_task(prober.run(spec(httpserver.url_for("/"), name="fine")))
        done, _ = await asyncio.wait({hang, fine}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {fine} and fine.result().ok
        assert (await hang).error_kind == "timeout"


async def test_a_name_that_cannot_resolve_is_a_dns_failure(prober):
    host = "x" * 64 + ".example"  # a label over 63 characters: refused before any query leaves the machine
    r = await prober.run(spec(f"http://{host}/", timeout=5))
    assert (r.ok, r.error_kind, r.attempts) == (False, "dns", 1)
    assert r.error.startswith(f"cannot resolve {host}: ") and "too long" in r.error


async def test_reuse_connections_keeps_one_connection_across_runs():
    from aiohttp import web

    from pulse_agent.probe.http import Prober
    from tests.conftest import spec

    peers: set[object] = set()

    async def handle(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername"))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app)  # keeps connections alive, unlike the werkzeug test server
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"
    prober = Prober()
    try:
        fresh = [await prober.run(spec(url)) for _ in range(3)]
        fresh_peers, peers = set(peers), set()
        kept = [await prober.run(spec(url, reuse_connections=True)) for _ in range(3)]
    finally:
        await prober.close()
        await runner.cleanup()
    assert all(r.ok and r.connect_ms is not None for r in fresh) and len(fresh_peers) == 3  # a new connection each run
    assert all(r.ok for r in kept) and len(peers) == 1  # one connection for all three
    assert kept[0].connect_ms is not None and [r.connect_ms for r in kept[1:]] == [None, None]
