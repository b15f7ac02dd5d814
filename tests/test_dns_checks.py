"""dns:// checks against real resolvers on 127.0.0.1: dnsmasq with local records, and small servers that
answer SERVFAIL, never answer, or answer with something that is not DNS."""

from __future__ import annotations

import dataclasses
import json
import socket
import time

import pytest
import yaml

from pulse_agent.config import ConfigInvalid, parse_config
from pulse_agent.config.dns import AnswerRule, Count, expected_text, name_problem, never_holds, parse_count
from pulse_agent.probe.dns import DnsProbe
from pulse_agent.probe.kinds import Probes
from tests.conftest import run_cli
from tests.dns_servers import BIG, ZONE, dnsmasq, rcode_reply, udp_server


@pytest.fixture(scope="module")
def resolver():
    with dnsmasq() as port:
        yield port


def config_text(port: int, name: str, rdtype: str = "A", expect: dict | None = None, **extra: object) -> str:
    check: dict[str, object] = {"name": "d", "url": f"dns://127.0.0.1:{port}", "dns": {"name": name, "type": rdtype}, "timeout": "2s"}
    if expect is not None:
        check["expect"] = expect
    check.update(extra)
    return yaml.safe_dump({"version": 1, "checks": [check]}, sort_keys=False)


def dns_spec(port: int, name: str, rdtype: str = "A", expect: dict | None = None, **extra: object):
    return parse_config(config_text(port, name, rdtype, expect, **extra), "p.yaml", {}).checks[0]


async def run(spec):
    probes = Probes()  # the scheduler's path: the kind picks the probe
    try:
        return await probes.run(spec)
    finally:
        await probes.close()


async def test_an_a_record_is_found_with_its_count_and_the_authoritative_flag(resolver):
    spec = dns_spec(resolver, f"www.{ZONE}", expect={"answer": {"contains": ["192.0.2.10"]}, "answer_count": 1, "authoritative": True})
    result = await run(spec)
    assert result.ok, result.error
    assert result.response_time_ms is not None and 0 < result.response_time_ms < 2000
    details = result.details
    assert details is not None
    assert details["rcode"] == "NOERROR" and details["answers"] == ["192.0.2.10"] and details["tcp"] is False
    assert "AA" in details["flags"] and details["resolver"] == f"127.0.0.1:{resolver}" and details["type"] == "A"
    assert details["records"] == [{"name": f"www.{ZONE}", "type": "A", "ttl": 0, "value": "192.0.2.10"}]


@pytest.mark.parametrize(
    ("name", "rdtype", "answer"),
    [
        (f"v6.{ZONE}", "AAAA", {"equals": ["2001:DB8:0:0::10"]}),  # another spelling of the same address
        (ZONE, "MX", {"equals": ["10 Mail.Pulse.Test."]}),  # case and the final dot of names do not matter
        (ZONE, "TXT", {"matches": "^v=spf1 "}),
        (ZONE, "TXT", {"equals": ["v=spf1 -all"]}),
        (f"alias.{ZONE}", "CNAME", {"equals": [f"www.{ZONE}"]}),
        (f"alias.{ZONE}", "A", {"equals": ["192.0.2.10"]}),  # the CNAME is followed: only A records are the answers
        (f"_sip._tcp.{ZONE}", "SRV", {"contains": [f"10 5 5060 sip.{ZONE}"]}),
    ],
)
async def test_each_record_type_is_compared_as_a_record(resolver, name, rdtype, answer):
    result = await run(dns_spec(resolver, name, rdtype, expect={"answer": answer}))
    assert result.ok, result.error


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ({"answer": {"contains": ["192.0.2.99"]}}, 'A answers ["192.0.2.10"] do not contain ["192.0.2.99"]'),
        ({"answer": {"equals": ["192.0.2.10", "192.0.2.11"]}}, 'A answers ["192.0.2.10"] are not exactly ["192.0.2.10", "192.0.2.11"]'),
        ({"answer": {"matches": "^10\\."}}, 'no A answer of ["192.0.2.10"] matches /^10\\./'),
        ({"answer_count": ">= 2"}, '1 A answers ["192.0.2.10"], expected >= 2'),
        ({"authoritative": False}, "the response is authoritative (AA set), expected authoritative: false"),
    ],
)
async def test_a_wrong_answer_fails_naming_what_was_expected_and_what_came(resolver, expect, message):
    result = await run(dns_spec(resolver, f"www.{ZONE}", expect=expect))
    assert not result.ok and result.error_kind == "answer"
    assert result.error == message


async def test_nxdomain_fails_a_plain_check_and_passes_one_that_expects_it(resolver):
    plain = await run(dns_spec(resolver, f"nothing.{ZONE}"))
    assert not plain.ok and plain.error_kind == "rcode"
    assert plain.error == f"response code NXDOMAIN, expected NOERROR for nothing.{ZONE}. A"
    assert plain.details is not None and plain.details["rcode"] == "NXDOMAIN" and plain.details["answers"] == []
    expected = await run(dns_spec(resolver, f"nothing.{ZONE}", expect={"rcode": "NXDOMAIN", "answer_count": 0}))
    assert expected.ok, expected.error
    either = await run(dns_spec(resolver, f"www.{ZONE}", expect={"rcode": ["NOERROR", "NXDOMAIN"]}))
    assert either.ok


async def test_a_truncated_udp_answer_is_asked_again_over_tcp(resolver):
    result = await run(dns_spec(resolver, f"big.{ZONE}", "TXT", expect={"answer_count": 4, "answer": {"contains": [f"{BIG}3"]}}))
    assert result.ok, result.error
    assert result.details is not None and result.details["tcp"] is True and "TC" not in result.details["flags"]


async def test_servfail_fails_with_rcode():
    with udp_server(rcode_reply("SERVFAIL")) as port:
        result = await run(dns_spec(port, "a.example"))
    assert not result.ok and result.error_kind == "rcode"
    assert result.error == "response code SERVFAIL, expected NOERROR for a.example. A"


async def test_a_resolver_that_never_answers_times_out_at_the_timeout():
    with udp_server(lambda data: None) as port:
        started = time.monotonic()
        result = await run(dns_spec(port, "a.example", timeout="300ms"))
        took = time.monotonic() - started
    assert not result.ok and result.error_kind == "timeout"
    assert result.error == "no DNS response within 300ms"
    assert 0.3 <= took < 2


async def test_an_answer_that_is_not_dns_fails_with_protocol():
    with udp_server(lambda data: data[:2] + b"\x81\x80garbage") as port:
        result = await run(dns_spec(port, "a.example"))
    assert not result.ok and result.error_kind == "protocol"
    assert result.error.startswith(f"resolver 127.0.0.1:{port} sent no valid DNS answer")


async def test_a_resolver_named_by_host_name_is_resolved_first(resolver):
    if socket.getaddrinfo("localhost", resolver, type=socket.SOCK_STREAM)[0][4][0] != "127.0.0.1":
        pytest.skip("localhost resolves to ::1 first here, where dnsmasq does not listen")
    spec = dataclasses.replace(dns_spec(resolver, f"www.{ZONE}"), url=f"dns://localhost:{resolver}")
    result = await run(spec)
    assert result.ok, result.error
    assert result.dns_ms is not None and result.details is not None and result.details["resolver"] == f"127.0.0.1:{resolver}"


async def test_retries_repeat_the_query_and_count_attempts():
    with udp_server(rcode_reply("REFUSED")) as port:
        spec = dns_spec(port, "a.example", retries={"attempts": 2, "backoff": "10ms"})
        probe = DnsProbe()
        result = await probe.run(spec)
    assert not result.ok and result.attempts == 2 and result.error_kind == "rcode"


# validate: what can never be asked or never hold is refused with its place


@pytest.mark.parametrize(
    ("name", "rdtype", "expect", "extra", "message"),
    [
        ("a b.example", "A", None, {}, "checks[0].dns.name: 'a b.example' is not a domain name: label 'a b' may hold only letters, digits, '-' and '_' (or be '*')"),
        ("a..example", "A", None, {}, "checks[0].dns.name: 'a..example' is not a domain name: A DNS label is empty."),
        ("x" * 64 + ".example", "A", None, {}, "is not a domain name"),
        ("a.example", "A", {"answer": {"contains": ["not-an-address"]}}, {}, "checks[0].expect.answer: contains: 'not-an-address' is not the value of a A record (e.g. 192.0.2.1)"),
        ("a.example", "MX", {"answer": {"equals": ["mail.example"]}}, {}, "is not the value of a MX record (preference and host, e.g. '10 mail.example.com')"),
        ("a.example", "A", {"answer": {"matches": "(a"}}, {}, "checks[0].expect.answer: matches: invalid regular expression"),
        ("a.example", "A", {"answer": {"contains": ["192.0.2.1"], "equals": ["192.0.2.2"]}}, {}, "checks[0].expect.answer: can never hold: contains ['192.0.2.1'] which equals ['192.0.2.2'] leaves out"),
        ("a.example", "A", {"answer": {"equals": ["192.0.2.1"], "matches": "^10\\."}}, {}, "can never hold: no value of equals ['192.0.2.1'] matches /^10\\./"),
        ("a.example", "A", {"answer": {"equals": ["192.0.2.1"]}, "answer_count": 2}, {}, "checks[0].expect.answer_count: can never hold: '2': expect.answer asks for 1 answer"),
        ("a.example", "A", {"answer": {"contains": ["192.0.2.1", "192.0.2.2"]}, "answer_count": "< 2"}, {}, "can never hold: '< 2': expect.answer asks for at least 2 answers"),
        ("a.example", "A", {"answer_count": "< 0"}, {}, "checks[0].expect.answer_count: can never hold: '< 0': counts are never negative"),
        ("a.example", "A", {"rcode": "NXDOMAIN", "answer_count": ">= 1"}, {}, "checks[0].expect.rcode: can never hold: a NXDOMAIN response carries no answer"),
        ("a.example", "A", {"status": 200}, {}, "checks[0].expect.status: a dns check cannot evaluate 'status'; it is an expectation of http checks"),
        ("a.example", "A", {"max_packet_loss": 0}, {}, "checks[0].expect.max_packet_loss: a dns check cannot evaluate 'max_packet_loss'; it is an expectation of icmp checks"),
        ("a.example", "A", None, {"method": "POST"}, "checks[0].method: 'method' does not apply to a dns check"),
        ("a.example", "A", None, {"url": "dns://user:secret@127.0.0.1"}, "checks[0].url: 'dns://***@127.0.0.1' has user info; write dns://resolver[:port]"),
        ("a.example", "A", None, {"url": "dns://127.0.0.1:53/path?x=1"}, "checks[0].url: 'dns://127.0.0.1:53/path?x=***' has a path and a query; write dns://resolver[:port]"),
    ],
)
def test_validate_refuses_what_cannot_be_asked_or_can_never_hold(name, rdtype, expect, extra, message):
    with pytest.raises(ConfigInvalid) as info:
        parse_config(config_text(53, name, rdtype, expect, **extra), "p.yaml", {})
    messages = [str(e) for e in info.value.errors]
    assert len(messages) == 1 and message in messages[0], messages


def test_a_dns_check_without_its_query_is_refused_at_its_url():
    with pytest.raises(ConfigInvalid) as info:
        parse_config("version: 1\nchecks:\n  - {name: d, url: 'dns://127.0.0.1'}\n", "p.yaml", {})
    assert [str(e) for e in info.value.errors] == [
        "p.yaml:3:20: checks[0].url: a dns:// check needs a dns: block with the name to ask the resolver for: dns: {name: example.com, type: A}"
    ]


def test_a_dns_block_on_an_http_check_and_http_defaults_on_a_dns_check():
    text = (
        "version: 1\ndefaults: {method: POST, expect: {status: 204, max_response_time: 1s}}\nchecks:\n"
        "  - {name: d, url: 'dns://127.0.0.1', dns: {name: a.example}}\n  - {name: h, url: 'http://127.0.0.1/', dns: {name: a.example}}\n"
    )
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, "p.yaml", {})
    assert [str(e) for e in info.value.errors] == [
        "p.yaml:5:46: checks[1].dns: 'dns' does not apply to a http check; it is a setting of dns checks"
    ]


def test_a_module_cannot_be_a_dns_check():
    text = "version: 1\nmodules:\n  m: {allowed_targets: ['10.0.0.0/8'], dns: {name: a.example}}\n"
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, "p.yaml", {})
    assert "modules.m.dns: 'dns' does not apply to a http check" in str(info.value.errors[0])


def test_the_defaults_and_kinds_of_a_dns_spec():
    spec = dns_spec(53, "München.example", "AAAA", expect={"max_response_time": "200ms"})
    assert spec.kind == "dns" and spec.dns is not None
    assert spec.dns.name == "xn--mnchen-3ya.example." and spec.dns.type == "AAAA" and spec.dns.rcode == ("NOERROR",)
    assert spec.expect.max_response_time == 0.2


@pytest.mark.parametrize(
    ("rdtype", "written", "canonical"),
    [
        ("A", " 192.0.2.1", "192.0.2.1"),
        ("AAAA", "2001:DB8::0:1", "2001:db8::1"),
        ("CNAME", "WWW.Example.COM.", "www.example.com"),
        ("MX", "10 Mail.Example.com", "10 mail.example.com"),
        ("SRV", "10 5 5060 Sip.Example.com.", "10 5 5060 sip.example.com"),
        ("SOA", "ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 86400", "ns1.example.com hostmaster.example.com 1 7200 900 1209600 86400"),
        ("TXT", "Exactly As Written", "Exactly As Written"),
    ],
)
def test_expected_values_take_the_form_answers_are_shown_in(rdtype, written, canonical):
    assert expected_text(rdtype, written) == canonical


def test_counts_and_what_can_never_hold():
    assert parse_count(3) == Count("==", 3, "3") and parse_count(" >= 1 ").holds(1) and not parse_count("!= 0").holds(0)
    with pytest.raises(ValueError, match="is not a count"):
        parse_count("about 3")
    assert never_holds(("NOERROR",), AnswerRule(contains=("a",)), parse_count(">= 1")) == []
    assert never_holds(("NXDOMAIN",), None, parse_count(0)) == []
    assert [k for k, _ in never_holds(("NXDOMAIN",), AnswerRule(matches="x"), None)] == [("expect", "rcode")]
    assert name_problem("_sip._tcp.example.com") is None and name_problem("*.example.com") is None and name_problem(".") is None


def test_check_shows_a_dns_checks_details_in_json(resolver, tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(config_text(resolver, f"www.{ZONE}", expect={"answer": {"equals": ["192.0.2.10"]}}))
    done = run_cli("check", "d", "-c", str(cfg), "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is True and out["details"]["answers"] == ["192.0.2.10"] and out["details"]["rcode"] == "NOERROR"
    text = run_cli("check", "d", "-c", str(cfg))
    assert text.returncode == 0 and text.stdout.startswith("OK")


def truncated_reply(data: bytes) -> bytes:
    """A UDP answer with TC set and no records (dnslib): the client must ask again over TCP."""
    from dnslib import DNSRecord

    answer = DNSRecord.parse(data).reply()
    answer.header.tc = 1
    return answer.pack()


async def test_a_truncated_answer_from_a_resolver_without_tcp_fails_with_connect():
    with udp_server(truncated_reply) as port:  # nothing listens on the TCP port of the same number
        result = await run(dns_spec(port, "a.example"))
    assert not result.ok and result.error_kind == "connect"
    assert result.error == f"resolver 127.0.0.1:{port}: Connection refused"
