"""Assertions are pure: response facts in, failed expectations out."""

import pytest
from multidict import CIMultiDict

from pulse_agent.config.expectations import parse_json_rule
from pulse_agent.config.model import Expect, StatusRange
from pulse_agent.probe.expect import Response, evaluate

NOW = 1_800_000_000.0


def response(status=200, body=b'{"status": "UP", "db": {"ok": true}, "n": 3}', elapsed=0.1, headers=None, cert=None, charset="utf-8"):
    return Response(status, CIMultiDict(headers or {"Content-Type": "application/json"}), body, elapsed, charset, cert)


def rules(mapping):
    return tuple((path, parse_json_rule(v)) for path, v in mapping.items())


def ranges(*values):
    return tuple(StatusRange.parse(v) for v in values)


@pytest.mark.parametrize(
    ("expect", "resp", "kinds", "message"),
    [
        (Expect(), response(), [], None),
        (Expect(), response(status=503), ["status"], "status 503 not in [2xx]"),
        (Expect(status=ranges(200, "3xx")), response(status=302), [], None),
        (Expect(status=ranges(200, "3xx")), response(status=404), ["status"], "status 404 not in [200, 3xx]"),
        (Expect(status=ranges("200-204")), response(status=204), [], None),
        (Expect(max_response_time=0.05), response(elapsed=0.0812), ["latency"], "response time 81ms over max_response_time 50ms"),
        (Expect(body_contains='"UP"'), response(), [], None),
        (Expect(body_contains="DOWN"), response(), ["body"], 'body does not contain "DOWN"'),
        (Expect(body_matches=r'"n": \d+'), response(), [], None),
        (Expect(body_matches=r"version: \d+"), response(), ["body"], r"body does not match /version: \d+/"),
        (Expect(json=rules({"$.status": "UP", "$.db.ok": True})), response(), [], None),
        (Expect(json=rules({"$.status": "DOWN"})), response(), ["json"], '$.status: expected "DOWN", got "UP"'),
        (Expect(json=rules({"$.db.ok": 1})), response(), ["json"], "$.db.ok: expected 1, got true"),
        (Expect(json=rules({"$.missing": 1})), response(), ["json"], "$.missing: expected 1, not found"),
        (Expect(json=rules({"$.a": 1})), response(body=b"<html>"), ["json"], "body is not valid JSON"),
        (Expect(json=rules({"$.n": "< 100", "$.db.ok": "!= false", "$.status": "exists", "$.nope": "not exists"})), response(), [], None),
        (Expect(json=rules({"$.n": ">= 5"})), response(), ["json"], "$.n: expected >= 5, got 3"),
        (Expect(json=rules({"$.status": "< 5"})), response(), ["json"], '$.status: expected < 5, got "UP"'),
        (Expect(json=rules({"$.status": "!= UP"})), response(), ["json"], '$.status: expected != UP, got "UP"'),
        (Expect(json=rules({"$.status": "not exists"})), response(), ["json"], '$.status: expected not exists, got "UP"'),
        (Expect(json=rules({"$.gone": "exists"})), response(), ["json"], "$.gone: expected exists, not found"),
        (Expect(json=rules({"$.db": "!= null"})), response(), [], None),
        (Expect(body_not_contains="error"), response(), [], None),
        (Expect(body_not_contains="UP"), response(), ["body"], 'body contains "UP"'),
        (Expect(headers=(("content-type", "/^application/(json|xml)$/"),)), response(), [], None),
        (Expect(headers=(("content-type", "/^text/"),)), response(), ["header"], 'header content-type: expected "/^text/"'),
        (Expect(headers=(("content-type", "application/json*"),)), response(), [], None),
        (
            Expect(headers=(("content-type", "text/*"),)),
            response(),
            ["header"],
            'header content-type: expected "text/*", got "application/json"',
        ),
        (Expect(headers=(("x-version", "*"),)), response(), ["header"], 'header x-version: expected "*", missing'),
        (Expect(certificate_valid_for=14 * 86400), response(cert=NOW + 30 * 86400), [], None),
        (Expect(certificate_valid_for=14 * 86400), response(cert=NOW + 3 * 86400), ["certificate"], "(in 3d); expected at least 14d"),
        (Expect(certificate_valid_for=86400), response(cert=NOW - 10), ["certificate"], "already expired"),
        (Expect(status=ranges(200), body_contains="x"), response(status=500), ["status", "body"], "status 500 not in [200]"),
    ],
)
def test_evaluate(expect, resp, kinds, message):
    failures, degraded = evaluate(expect, resp, NOW)
    assert [f.kind for f in failures] == kinds
    if message:
        assert message in failures[0].message
    assert degraded is False


def test_degraded_is_slow_but_not_failed():
    expect = Expect(max_response_time=1.0, degraded_response_time=0.3)
    assert evaluate(expect, response(elapsed=0.5), NOW) == ([], True)
    assert evaluate(expect, response(elapsed=0.2), NOW) == ([], False)


def test_body_is_decoded_by_its_charset():
    body = "Grüße".encode("latin-1")
    assert evaluate(Expect(body_contains="Grüße"), response(body=body, charset="latin-1"), NOW) == ([], False)
    assert evaluate(Expect(body_contains="x"), response(body=body, charset="no-such-charset"), NOW)[0][0].kind == "body"


@pytest.mark.parametrize(
    ("written", "op", "value"),
    [("UP", "==", "UP"), (3, "==", 3), (None, "==", None), ("< 100", "<", 100), (">= 1.5", ">=", 1.5), ("!= null", "!=", None),
     ('== "< 100"', "==", "< 100"), ("exists", "exists", None), ("not exists", "not exists", None), ("!= DOWN", "!=", "DOWN")],
)  # fmt: skip
def test_json_rules_parse(written, op, value):
    rule = parse_json_rule(written)
    assert (rule.op, rule.value) == (op, value)


def test_ordering_needs_a_number():
    with pytest.raises(ValueError, match="compares numbers"):
        parse_json_rule("< abc")
