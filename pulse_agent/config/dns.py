"""Pure: a DNS check's `dns:` block and its DNS expectations, checked so that every one can hold, and the one
text form of a record value that both the expectations (as written) and the answers (as received) are put in."""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pulse_agent.probe.regex import regex_problem, regex_search
from pulse_agent.redact import redact_url

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV"]
RECORD_TYPES: tuple[RecordType, ...] = get_args(RecordType)
# RFC 1035 and RFC 6895 response codes a resolver sends (the 4-bit header ones).
RCODES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE")
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}|\*")  # host names, service labels (_sip._tcp) and wildcards; no spaces or escapes
_COUNT = re.compile(r"\s*(==|!=|<=|>=|<|>)\s*(\d+)\s*")
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Count:
    """expect.answer_count: the number of answer records of the queried type, compared with `value`."""

    op: str
    value: int
    text: str

    def holds(self, n: int) -> bool:
        """Whether n answers satisfy it."""
        return _COMPARE[self.op](n, self.value)


@dataclass(frozen=True, slots=True)
class AnswerRule:
    """expect.answer: values (canonical text, see value_text) that must be among the answers, be exactly the
    answers, and a pattern at least one answer must match."""

    contains: tuple[str, ...] = ()
    equals: tuple[str, ...] | None = None
    matches: str | None = None


@dataclass(frozen=True, slots=True)
class DnsCheck:
    """What a DNS check asks (name, type) and expects of the response."""

    name: str  # absolute, IDNA-encoded: "www.example.com."
    type: RecordType = "A"
    rcode: tuple[str, ...] = ("NOERROR",)
    answer: AnswerRule | None = None
    answer_count: Count | None = None
    authoritative: bool | None = None


def name_problem(name: str) -> str | None:
    """Why name cannot be asked for (not a domain name), or None."""
    import dns.exception  # dnspython: imported by configs with dns:// checks only
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    try:
        parsed = dns.name.from_text(name)
    except (dns.exception.DNSException, UnicodeError) as exc:
        return f"{name!r} is not a domain name: {exc}"
    for label in parsed.labels[:-1]:
        if not _LABEL.fullmatch(label.decode("ascii", "replace")):
            shown = label.decode("ascii", "backslashreplace")
            return f"{name!r} is not a domain name: label {shown!r} may hold only letters, digits, '-' and '_' (or be '*')"
    return None


def value_text(rdata: Any) -> str:
    """One record value as text: the form answers are shown and compared in (names without the final dot,
    lower-case; addresses normalised; TXT strings joined without quotes)."""
    import dns.exception  # dnspython: imported by configs with dns:// checks only
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    kind = dns.rdatatype.to_text(rdata.rdtype)
    if kind in ("A", "AAAA"):
        return str(ipaddress.ip_address(rdata.address))
    if kind in ("CNAME", "NS"):
        return _name(rdata.target)
    if kind == "MX":
        return f"{rdata.preference} {_name(rdata.exchange)}"
    if kind == "SRV":
        return f"{rdata.priority} {rdata.weight} {rdata.port} {_name(rdata.target)}"
    if kind == "SOA":
        return f"{_name(rdata.mname)} {_name(rdata.rname)} {rdata.serial} {rdata.refresh} {rdata.retry} {rdata.expire} {rdata.minimum}"
    if kind == "TXT":
        return "".join(s.decode("utf-8", "replace") for s in rdata.strings)
    return str(rdata.to_text())


def expected_text(rdtype: RecordType, text: str) -> str:
    """An expected value as value_text would show it; ValueError when no record of rdtype can have it."""
    import dns.exception  # dnspython: imported by configs with dns:// checks only
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    if rdtype == "TXT":
        return text  # compared with the record's strings joined, as written
    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text, origin=dns.name.root)
    except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
        raise ValueError(f"{text!r} is not the value of a {rdtype} record ({_EXAMPLES[rdtype]}): {exc}") from None
    return value_text(rdata)


_EXAMPLES: dict[RecordType, str] = {
    "A": "e.g. 192.0.2.1", "AAAA": "e.g. 2001:db8::1", "CNAME": "e.g. host.example.com", "NS": "e.g. ns1.example.com",
    "MX": "preference and host, e.g. '10 mail.example.com'", "SRV": "priority weight port target, e.g. '10 5 5060 sip.example.com'",
    "SOA": "mname rname serial refresh retry expire minimum", "TXT": "any text",
}  # fmt: skip


def _name(name: Any) -> str:
    import dns.exception  # dnspython: imported by configs with dns:// checks only
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    return str(name.to_text(omit_final_dot=True)).lower() if name != dns.name.root else "."


def parse_count(value: int | str) -> Count:
    """3 -> exactly 3; '>= 1', '< 5', '!= 0' -> that comparison; ValueError otherwise."""
    if isinstance(value, str) and (m := _COUNT.fullmatch(value)) is not None:
        return Count(m.group(1), int(m.group(2)), value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return Count("==", value, str(value))
    raise ValueError(f"{value!r} is not a count: write a number (3) or a comparison ('>= 1', '< 5', '!= 0')")


Get = Callable[..., Any]  # the check builder's get(*keys, default=...)
Fail = Callable[[tuple[str, ...], str], None]  # the check builder's fail(keys, message)


def dns_check(get: Get, fail: Fail, url: str, written: bool = True) -> DnsCheck | None:
    """The check's dns: block (written: whether the check or defaults has one) and DNS expectations, each problem
    reported at its key; None when unusable."""
    import dns.exception  # dnspython: imported by configs with dns:// checks only
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    name, rdtype = get("dns", "name"), get("dns", "type", default="A")
    failed = False
    if (problem := bare_url_problem(url, "dns://resolver[:port]", port=True)) is not None:
        fail(("url",), problem)
        failed = True
    if not isinstance(name, str):
        if written:
            return None  # the schema said what is wrong with it
        fail(("url",), "a dns:// check needs a dns: block with the name to ask the resolver for: dns: {name: example.com, type: A}")
        return None
    if (problem := name_problem(name)) is not None:
        fail(("dns", "name"), problem)
        failed = True
    if rdtype not in RECORD_TYPES:  # the schema's enum says so first; a ${VAR} placeholder reaches here
        fail(("dns", "type"), f"{rdtype!r} is not a record type this check asks for: one of {', '.join(RECORD_TYPES)}")
        return None
    rcode = get("expect", "rcode", default="NOERROR")
    rcodes = tuple(rcode) if isinstance(rcode, list) else (rcode,)
    for code in rcodes:
        if code not in RCODES:
            fail(("expect", "rcode"), f"{code!r} is not a DNS response code: one of {', '.join(RCODES)}")
            failed = True
    answer = _answer_rule(rdtype, get("expect", "answer"), fail)
    count = None
    if (raw_count := get("expect", "answer_count")) is not None:
        try:
            count = parse_count(raw_count)
        except ValueError as exc:
            fail(("expect", "answer_count"), str(exc))
            failed = True
    if answer is None and get("expect", "answer") is not None:
        failed = True
    if failed:
        return None
    for keys, reason in never_holds(rcodes, answer, count):
        fail(keys, f"can never hold: {reason}")
        failed = True
    authoritative = get("expect", "authoritative")
    return None if failed else DnsCheck(dns.name.from_text(name).to_text(), rdtype, rcodes, answer, count, authoritative)


def _answer_rule(rdtype: RecordType, raw: Any, fail: Fail) -> AnswerRule | None:
    """expect.answer with every value in canonical text; None after reporting each value no rdtype record has."""
    if not isinstance(raw, dict):
        return None
    ok = True

    def values(key: str) -> tuple[str, ...]:
        nonlocal ok
        out = []
        for value in raw.get(key) or ():
            try:
                out.append(expected_text(rdtype, str(value)))
            except ValueError as exc:
                fail(("expect", "answer"), f"{key}: {exc}")
                ok = False
        return tuple(out)

    contains = values("contains")
    equals = values("equals") if "equals" in raw else None
    pattern = raw.get("matches")
    if pattern is not None and (problem := regex_problem(pattern)) is not None:
        fail(("expect", "answer"), f"matches: {problem}")
        ok = False
    return AnswerRule(contains, equals, pattern) if ok else None


def never_holds(rcodes: tuple[str, ...], answer: AnswerRule | None, count: Count | None) -> list[tuple[tuple[str, ...], str]]:
    """(key, reason) for each DNS expectation that no response can satisfy together with the others."""
    out: list[tuple[tuple[str, ...], str]] = []
    least = len(set(answer.contains)) if answer else 0  # fewest answers the values ask for
    if answer is not None and answer.equals is not None:
        missing = sorted(set(answer.contains) - set(answer.equals))
        if missing:
            out.append((("expect", "answer"), f"contains {missing} which equals {list(answer.equals)} leaves out"))
        if answer.matches is not None and answer.equals and not any(regex_search(answer.matches, v) for v in answer.equals):
            out.append((("expect", "answer"), f"no value of equals {list(answer.equals)} matches /{answer.matches}/"))
    if count is not None:
        exact = len(set(answer.equals)) if answer is not None and answer.equals is not None else None
        # Over whole numbers from `least` up, a comparison with value holds somewhere iff it holds at one of these.
        possible = [exact] if exact is not None else [n for n in (least, count.value - 1, count.value, count.value + 1) if n >= least]
        if not any(count.holds(n) for n in possible):
            asked = exact if exact is not None else f"at least {least}"
            plural = "" if asked == 1 else "s"
            why = f"expect.answer asks for {asked} answer{plural}" if least or exact is not None else "counts are never negative"
            out.append((("expect", "answer_count"), f"{count.text!r}: {why}"))
    if "NOERROR" not in rcodes:
        wants = (answer is not None and (least > 0 or bool(answer.equals) or answer.matches is not None)) or (
            count is not None and not count.holds(0)
        )
        if wants:
            reason = f"a {' or '.join(rcodes)} response carries no answer, and expect.answer/answer_count ask for one"
            out.append((("expect", "rcode"), reason))
    return out


def bare_url_problem(url: str, form: str, *, port: bool) -> str | None:
    """Why url is more than scheme://host (and :port when allowed), the form a non-HTTP target takes; or None."""
    try:
        parts = urlsplit(url)
        has_port = parts.port is not None
    except ValueError:
        return None  # the URL check reports it
    extra = [what for what, there in (("a path", parts.path not in ("", "/")), ("a query", bool(parts.query)),
             ("a fragment", bool(parts.fragment)), ("user info", parts.username is not None),
             ("a port", has_port and not port)) if there]  # fmt: skip
    return f"{redact_url(url)!r} has {' and '.join(extra)}; write {form}" if extra else None
