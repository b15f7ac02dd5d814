"""icmp:// checks: real pings to this machine's loopback addresses, to an address routed into loopback that
never answers (a route the test adds and removes), and without the privilege to open an ICMP socket."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import yaml

from pulse_agent.clock import ManualClock
from pulse_agent.config import ConfigInvalid, parse_config
from pulse_agent.config.icmp import IcmpCheck
from pulse_agent.config.model import Expect
from pulse_agent.probe.icmp import IcmpProbe, judge
from pulse_agent.probe.kinds import Probes
from tests.conftest import REQUIRE_SYSTEM_TOOLS, require_binary


def config_text(host: str, icmp: dict | None = None, expect: dict | None = None, **extra: object) -> str:
    check: dict[str, object] = {"name": "p", "url": f"icmp://{host}", "timeout": "3s"}
    if icmp is not None:
        check["icmp"] = icmp
    if expect is not None:
        check["expect"] = expect
    check.update(extra)
    return yaml.safe_dump({"version": 1, "checks": [check]}, sort_keys=False)


def icmp_spec(host: str, icmp: dict | None = None, expect: dict | None = None, **extra: object):
    return parse_config(config_text(host, icmp, expect, **extra), "p.yaml", {}).checks[0]


async def run(spec):
    probes = Probes()
    try:
        return await probes.run(spec)
    finally:
        await probes.close()


async def test_loopback_answers_every_request():
    result = await run(icmp_spec("127.0.0.1", {"count": 3, "interval": "50ms"}, {"max_packet_loss": 0}))
    assert result.ok, result.error
    d = result.details
    assert d is not None and d["address"] == "127.0.0.1" and d["sent"] == 3 and d["received"] == 3 and d["packet_loss"] == 0
    assert 0 < d["rtt_min_ms"] <= d["rtt_avg_ms"] <= d["rtt_max_ms"] < 1000
    assert result.response_time_ms == d["rtt_avg_ms"]


async def test_ipv6_loopback_and_a_host_name():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback in this container")
    v6 = await run(icmp_spec("[::1]", {"count": 2, "interval": "20ms"}))
    assert v6.ok and v6.details is not None and v6.details["address"] == "::1" and v6.details["received"] == 2
    named = await run(icmp_spec("localhost", {"count": 1}))
    assert named.ok and named.dns_ms is not None


@contextmanager
def silent_address():
    """An address of this machine's routing that never answers: routed into loopback, where no interface has it
    (198.18.0.0/15 is for benchmarks, never routed outside); the route is removed afterwards."""
    ip = require_binary("ip", "iproute2")
    address = f"198.18.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    added = subprocess.run([ip, "route", "add", f"{address}/32", "dev", "lo"], capture_output=True, text=True)
    if added.returncode != 0:
        reason = f"cannot add a route into loopback here ({added.stderr.strip()}): needs CAP_NET_ADMIN"
        if REQUIRE_SYSTEM_TOOLS:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield address
    finally:
        subprocess.run([ip, "route", "del", f"{address}/32", "dev", "lo"], capture_output=True)


async def test_an_address_that_never_answers_times_out_with_every_request_lost():
    with silent_address() as address:
        started = time.monotonic()
        result = await run(icmp_spec(address, {"count": 2, "interval": "100ms"}, timeout="500ms"))
        took = time.monotonic() - started
    assert not result.ok and result.error_kind == "timeout"
    assert result.error == f"no echo reply from {address} to 2 requests within 500ms"
    assert result.details is not None and result.details["sent"] == 2 and result.details["received"] == 0
    assert result.details["packet_loss"] == 100 and result.response_time_ms is None
    assert 0.5 <= took < 1.5  # the run ends at its timeout, not later


async def test_retries_ping_again():
    with silent_address() as address:
        result = await run(icmp_spec(address, {"count": 1}, timeout="200ms", retries={"attempts": 2, "backoff": "10ms"}))
    assert not result.ok and result.attempts == 2


def facts(sent: int, rtts: list[float], errors: list[str] | None = None) -> dict:
    return {
        "address": "192.0.2.1", "sent": sent, "received": len(rtts), "packet_loss": round(100 * (sent - len(rtts)) / sent, 3),
        "rtt_avg_ms": sum(rtts) / len(rtts) if rtts else None, "errors": errors or [],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("check", "expect", "got", "kind", "message", "degraded"),
    [
        (IcmpCheck(max_packet_loss=0), Expect(), facts(3, [1, 1]), "packet_loss", "33.333% packet loss (2 of 3 replies) over max_packet_loss 0%", False),
        (IcmpCheck(max_packet_loss=34), Expect(), facts(3, [1, 1]), None, None, False),
        (IcmpCheck(), Expect(), facts(3, [5]), None, None, False),  # by default one reply is enough
        (IcmpCheck(), Expect(max_response_time=0.01), facts(2, [5, 25]), "latency", "average round-trip time 15ms over max_response_time 10ms", False),
        (IcmpCheck(), Expect(degraded_response_time=0.01), facts(2, [5, 25]), None, None, True),
        (IcmpCheck(), Expect(), facts(3, [], ["destination unreachable (ICMP type 3 code 1)"]), "connect", "no echo reply from 192.0.2.1: destination unreachable (ICMP type 3 code 1)", False),
        (IcmpCheck(max_packet_loss=100), Expect(), facts(3, []), "timeout", "no echo reply from 192.0.2.1 to 3 requests within 2s", False),
    ],
)
def test_judging_a_ping(check, expect, got, kind, message, degraded):
    failures, slow = judge(expect, check, got, 2.0)
    assert [(f.kind, f.message) for f in failures] == ([(kind, message)] if kind else [])
    assert slow == degraded


@pytest.mark.parametrize(
    ("icmp", "extra", "message"),
    [
        ({"count": 5}, {}, "checks[0].icmp.count: 5 requests 1s apart take 4s to send, not less than the timeout 3s"),
        ({"count": 3, "interval": "1s"}, {"timeout": "1s"}, "checks[0].icmp.interval: 3 requests 1s apart take 2s to send, not less than the timeout 1s"),
        (None, {"timeout": "1s"}, "checks[0].timeout: 3 requests 1s apart take 2s to send"),
        ({"interval": "1ms"}, {}, "checks[0].icmp.interval: must be at least 10ms"),
        (None, {"url": "icmp://127.0.0.1:7"}, "checks[0].url: 'icmp://127.0.0.1:7' has a port; write icmp://host (ICMP has no ports)"),
        (None, {"dns": {"name": "a.example"}}, "checks[0].dns: 'dns' does not apply to a icmp check; it is a setting of dns checks"),
        (None, {"expect": {"rcode": "NOERROR"}}, "checks[0].expect.rcode: a icmp check cannot evaluate 'rcode'; it is an expectation of dns checks"),
    ],
)
def test_validate_refuses_a_ping_that_cannot_finish_or_mean_anything(icmp, extra, message):
    with pytest.raises(ConfigInvalid) as info:
        parse_config(config_text("127.0.0.1", icmp, **extra), "p.yaml", {})
    messages = [str(e) for e in info.value.errors]
    assert len(messages) == 1 and message in messages[0], messages


def test_the_defaults_of_an_icmp_spec():
    spec = icmp_spec("127.0.0.1", timeout="10s")
    assert spec.kind == "icmp" and spec.icmp == IcmpCheck(count=3, interval=1.0, size=56, max_packet_loss=None)


NO_SOCKETS = "cannot send ICMP echo requests: raw sockets need root or CAP_NET_RAW, and unprivileged ping sockets need this process's group"


def without_raw_sockets(*args: str) -> subprocess.CompletedProcess[str]:
    """A command in a process that has no CAP_NET_RAW (and, here, no ping sockets either)."""
    setpriv = require_binary("setpriv", "util-linux")
    if int(open("/proc/sys/net/ipv4/ping_group_range").read().split()[0]) <= 0:  # noqa: SIM115
        pytest.skip("unprivileged ping sockets are allowed for group 0 here: a check would still work")
    return subprocess.run([setpriv, "--bounding-set=-net_raw", *args], capture_output=True, text=True, timeout=60)


def test_without_icmp_sockets_validate_says_why_and_check_fails_without_a_traceback(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(config_text("127.0.0.1", {"count": 1}))
    validated = without_raw_sockets(sys.executable, "-m", "pulse_agent", "validate", "-c", str(cfg))
    assert validated.returncode == 1 and f"checks[0].url: {NO_SOCKETS}" in validated.stdout + validated.stderr
    checked = without_raw_sockets(sys.executable, "-m", "pulse_agent", "check", "p", "-c", str(cfg), "--format", "json")
    assert checked.returncode != 0 and NO_SOCKETS in checked.stdout + checked.stderr and "Traceback" not in checked.stderr


def test_without_icmp_sockets_a_run_fails_with_connect_and_the_reason():
    script = (
        "import asyncio, json\nfrom pulse_agent.config import parse_config\nfrom pulse_agent.probe.icmp import IcmpProbe\n"
        f"spec = parse_config({config_text('127.0.0.1', {'count': 1})!r}, 'p.yaml', {{}}).checks[0]\n"
        "print(json.dumps(asyncio.run(IcmpProbe().run(spec)).to_json()))\n"
    )
    done = without_raw_sockets(sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is False and result["error_kind"] == "connect" and result["error"].startswith(NO_SOCKETS)


def test_without_raw_sockets_unprivileged_ping_sockets_are_used_where_the_sysctl_allows():
    """In a network namespace of its own (the test's, removed with it) where net.ipv4.ping_group_range admits
    group 0, a process without CAP_NET_RAW pings through a ping socket: details.privileged is false."""
    unshare = require_binary("unshare", "util-linux")
    setpriv = require_binary("setpriv", "util-linux")
    ip = require_binary("ip", "iproute2")
    script = (
        "import asyncio, json\nfrom pulse_agent.config import parse_config\nfrom pulse_agent.probe.icmp import IcmpProbe\n"
        f"spec = parse_config({config_text('127.0.0.1', {'count': 3, 'interval': '20ms'}, {'max_packet_loss': 0})!r}, 'p.yaml', {{}}).checks[0]\n"
        "print(json.dumps(asyncio.run(IcmpProbe().run(spec)).to_json()))\n"
    )
    inner = f"{ip} link set lo up && echo '0 0' > /proc/sys/net/ipv4/ping_group_range && exec {setpriv} --bounding-set=-net_raw \"$0\" -c \"$1\""
    done = subprocess.run([unshare, "--net", "sh", "-c", inner, sys.executable, script], capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "unshare failed" in done.stderr:
        reason = f"cannot make a network namespace here ({done.stderr.strip()})"
        if REQUIRE_SYSTEM_TOOLS:
            pytest.fail(reason)
        pytest.skip(reason)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["details"]["privileged"] is False and result["details"]["received"] == 3


async def until_done(task: asyncio.Task, seconds: float = 2.0) -> bool:
    """Whether task finishes within a few real moments (replies on loopback take well under a millisecond)."""
    deadline = time.monotonic() + seconds
    while not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return task.done()


async def test_requests_leave_and_the_run_ends_on_the_injected_clock():
    clock = ManualClock(start=(started := time.time()))
    probe = IcmpProbe(clock=clock)
    task = asyncio.create_task(probe.run(icmp_spec("127.0.0.1", {"count": 3, "interval": "10s"}, timeout="30s")))
    assert not await until_done(task, 0.2)  # one reply in; the next request waits for the clock
    await clock.advance(10)
    assert not await until_done(task, 0.2)
    await clock.advance(10)  # the third request leaves; its reply ends the run, long before the timeout
    assert await until_done(task)
    result = task.result()
    assert result.ok and result.details is not None and result.details["received"] == 3 and result.ts == started


async def test_the_timeout_is_on_the_injected_clock():
    with silent_address() as address:
        clock = ManualClock(start=time.time())
        task = asyncio.create_task(IcmpProbe(clock=clock).run(icmp_spec(address, {"count": 1}, timeout="30s")))
        assert not await until_done(task, 0.2)
        await clock.advance(30)
        assert await until_done(task)
    result = task.result()
    assert not result.ok and result.error_kind == "timeout" and result.error == f"no echo reply from {address} to 1 request within 30s"


async def test_replies_that_stop_mid_run_are_packet_loss():
    """A real partial loss: the address answers (it is on loopback) for the first request, then is taken off
    loopback while its route stays there, so the next two requests go unanswered."""
    with silent_address() as address:
        ip = require_binary("ip", "iproute2")
        subprocess.run([ip, "addr", "add", f"{address}/32", "dev", "lo"], check=True, capture_output=True)
        try:
            clock = ManualClock(start=time.time())
            spec = icmp_spec(address, {"count": 3, "interval": "10s"}, {"max_packet_loss": 50}, timeout="30s")
            task = asyncio.create_task(IcmpProbe(clock=clock).run(spec))
            assert not await until_done(task, 0.2)  # the first reply has come
        finally:
            subprocess.run([ip, "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True)
        for _ in range(3):
            await clock.advance(10)
        assert await until_done(task)
    result = task.result()
    assert not result.ok and result.error_kind == "packet_loss"
    assert result.error == "66.667% packet loss (1 of 3 replies) over max_packet_loss 50%"
    assert result.details is not None and (result.details["sent"], result.details["received"]) == (3, 1)
    assert result.response_time_ms == result.details["rtt_avg_ms"] is not None
