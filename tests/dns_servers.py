"""Real DNS servers on 127.0.0.1 for the DNS check tests: Debian's dnsmasq with local records, and small
dnslib / socket servers for what dnsmasq will not do (SERVFAIL, silence, an answer that is not DNS)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dns.message
import dns.query

from tests.conftest import require_binary

BIG = "x" * 200  # four TXT records of this size make an answer over 512 bytes: dnsmasq sets TC on UDP
ZONE = "pulse.test"
RECORDS = (
    f"--local=/{ZONE}/",  # names under pulse.test that are not below are NXDOMAIN
    f"--host-record=www.{ZONE},192.0.2.10",
    f"--host-record=www2.{ZONE},192.0.2.11",
    f"--host-record=v6.{ZONE},2001:db8::10",
    f"--mx-host={ZONE},mail.{ZONE},10",
    f"--txt-record={ZONE},v=spf1 -all",
    f"--cname=alias.{ZONE},www.{ZONE}",
    f"--srv-host=_sip._tcp.{ZONE},sip.{ZONE},5060,10,5",
    *(f"--txt-record=big.{ZONE},{BIG}{i}" for i in range(4)),
)


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now (a resolver listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no port free for both UDP and TCP")


def answers(port: int, name: str = f"www.{ZONE}") -> bool:
    """Whether a resolver on port answers a query for name now."""
    try:
        dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.2)
    except (OSError, dns.exception.DNSException):
        return False
    return True


@contextmanager
def dnsmasq() -> Iterator[int]:
    """dnsmasq serving RECORDS on a free port of 127.0.0.1 (no upstream, no /etc/hosts); yields the port."""
    binary = require_binary("dnsmasq", "dnsmasq")
    for _ in range(5):  # the port may be taken between choosing and binding it: choose again
        port = free_udp_tcp_port()
        proc = subprocess.Popen(
            [binary, "--keep-in-foreground", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
             "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--user=root", "--log-facility=-", *RECORDS],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline and not answers(port):
            time.sleep(0.02)
        if proc.poll() is None and answers(port):
            try:
                yield port
            finally:
                proc.terminate()
                proc.wait(10)
            return
        proc.kill()
        proc.wait(10)
    raise RuntimeError("dnsmasq did not start")


@contextmanager
def udp_server(reply) -> Iterator[int]:
    """A UDP server on 127.0.0.1 answering each datagram with reply(datagram) (None: silence); yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = reply(data)
            if answer is not None:
                sock.sendto(answer, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def rcode_reply(rcode: str):
    """A reply function answering every query with rcode (dnslib builds the message)."""
    from dnslib import RCODE, DNSRecord

    def reply(data: bytes) -> bytes:
        answer = DNSRecord.parse(data).reply()
        answer.header.rcode = getattr(RCODE, rcode)
        return answer.pack()

    return reply
