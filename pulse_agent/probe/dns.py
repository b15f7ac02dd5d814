"""The DNS probe: one query to the resolver a dns:// URL names (UDP, TCP when the answer comes truncated),
through dnspython's async API, judged against the check's DNS expectations."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from pulse_agent.config.dns import DnsCheck, value_text
from pulse_agent.config.expectations import show_value
from pulse_agent.config.model import CheckSpec, Expect
from pulse_agent.probe.attempts import AttemptingProbe, Outcome, attempt_within, run_attempts
from pulse_agent.probe.connect import first_address
from pulse_agent.probe.expect import response_time_failures
from pulse_agent.probe.regex import regex_search
from pulse_agent.probe.wire import fail
from pulse_agent.result import Failure, Result

DNS_PORT = 53


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """The facts of one DNS response that expectations are judged on and details show."""

    rcode: str
    answers: tuple[str, ...]  # values (value_text) of the answer records of the queried type
    records: tuple[tuple[str, str, int, str], ...]  # the whole answer section: name, type, TTL, value
    flags: tuple[str, ...]  # header flags set: QR, AA, TC, RD, RA, AD, CD
    tcp: bool  # the UDP answer came truncated and the query was repeated over TCP

    def details(self, resolver: str, check: DnsCheck) -> dict[str, Any]:
        """The result's details JSON (docs/probes.md, DNS checks)."""
        return {
            "resolver": resolver, "name": check.name, "type": check.type, "rcode": self.rcode, "flags": list(self.flags),
            "answers": list(self.answers), "tcp": self.tcp,
            "records": [{"name": n, "type": t, "ttl": ttl, "value": v} for n, t, ttl, v in self.records],
        }  # fmt: skip


def answer_of(response: dns.message.Message, rdtype: str, tcp: bool) -> DnsAnswer:
    """The facts of response to a query of rdtype."""
    wanted = dns.rdatatype.from_text(rdtype)
    records, answers = [], []
    for rrset in response.answer:
        kind = dns.rdatatype.to_text(rrset.rdtype)
        for rdata in rrset:
            value = value_text(rdata)
            records.append((rrset.name.to_text(omit_final_dot=True), kind, rrset.ttl, value))
            if rrset.rdtype == wanted:
                answers.append(value)
    flags = tuple(str(f) for f in dns.flags.to_text(response.flags).split())
    return DnsAnswer(dns.rcode.to_text(response.rcode()), tuple(answers), tuple(records), flags, tcp)


def judge(expect: Expect, check: DnsCheck, answer: DnsAnswer, elapsed: float) -> tuple[list[Failure], bool]:
    """Every DNS expectation the answer fails (the rcode's first), and whether it was slow enough to be degraded."""
    failures = []
    if answer.rcode not in check.rcode:
        wanted = " or ".join(check.rcode)
        failures.append(Failure("rcode", f"response code {answer.rcode}, expected {wanted} for {check.name} {check.type}"))
    got = set(answer.answers)
    shown = _values(answer.answers)
    rule = check.answer
    if rule is not None:
        missing = [v for v in rule.contains if v not in got]
        if missing:
            failures.append(Failure("answer", f"{check.type} answers {shown} do not contain {_values(missing)}"))
        if rule.equals is not None and got != set(rule.equals):
            failures.append(Failure("answer", f"{check.type} answers {shown} are not exactly {_values(rule.equals)}"))
        if rule.matches is not None and not any(regex_search(rule.matches, v) for v in answer.answers):
            failures.append(Failure("answer", f"no {check.type} answer of {shown} matches /{rule.matches}/"))
    if check.answer_count is not None and not check.answer_count.holds(len(answer.answers)):
        failures.append(Failure("answer", f"{len(answer.answers)} {check.type} answers {shown}, expected {check.answer_count.text}"))
    if check.authoritative is not None and ("AA" in answer.flags) != check.authoritative:
        has = "is authoritative (AA set)" if "AA" in answer.flags else "is not authoritative (AA not set)"
        failures.append(Failure("answer", f"the response {has}, expected authoritative: {str(check.authoritative).lower()}"))
    latency, degraded = response_time_failures(expect, elapsed)
    return failures + latency, degraded


def _values(values: Any) -> str:
    return show_value(list(values))


def resolver_of(url: str) -> tuple[str, int]:
    """The resolver's host and port of a dns:// URL."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DNS_PORT


class DnsProbe(AttemptingProbe):
    """Runs dns:// checks: a fresh query per attempt, nothing kept between runs."""

    kind = "dns"

    async def run(self, spec: CheckSpec, scheduled_ts: float | None = None) -> Result:
        """Query spec's resolver, retrying as its retries allow, and judge the last answer."""
        return await run_attempts(
            spec, self._clock, self._jitter, lambda: attempt_within(spec, lambda: self._query(spec), "DNS response"), scheduled_ts
        )

    async def _query(self, spec: CheckSpec) -> Outcome:
        check = spec.dns
        if check is None:
            raise fail("internal", "a dns:// check without its dns: block (validate refuses those)")
        host, port = resolver_of(spec.url)
        where, dns_ms = await first_address(host, port)
        resolver = f"[{where}]:{port}" if ":" in where else f"{where}:{port}"
        query = dns.message.make_query(check.name, check.type)
        sent = time.perf_counter()
        try:
            response, tcp = await dns.asyncquery.udp_with_fallback(query, where, port=port, ignore_unexpected=True)
        except OSError as exc:  # ICMP port unreachable on UDP, refused on TCP
            raise fail("connect", f"resolver {resolver}: {os.strerror(exc.errno) if exc.errno else exc}") from None
        except EOFError:
            raise fail("protocol", f"resolver {resolver} closed the TCP connection before a whole answer") from None
        except dns.exception.DNSException as exc:  # a message that is not DNS, or not the answer to our query
            raise fail("protocol", f"resolver {resolver} sent no valid DNS answer: {type(exc).__name__}: {exc}") from None
        elapsed = time.perf_counter() - sent
        answer = answer_of(response, check.type, tcp)
        failures, degraded = judge(spec.expect, check, answer, elapsed)
        return Outcome(tuple(failures), degraded, round(elapsed * 1000, 3), dns_ms, answer.details(resolver, check))
