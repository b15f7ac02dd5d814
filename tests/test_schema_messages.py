"""Every constraint of the schema, broken: the message names the rule that was broken (issue 14, item 5)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pulse_agent.config import ConfigInvalid, parse_config

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {
    "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "enum", "const",
    "minItems", "maxItems", "uniqueItems", "required", "additionalProperties", "unevaluatedProperties", "propertyNames",
    "minProperties", "maxProperties", "multipleOf",
}  # fmt: skip


def check(lines: str) -> str:
    return "version: 1\nchecks:\n  - name: a\n    url: http://127.0.0.1/\n" + textwrap.indent(textwrap.dedent(lines), "    ")


def dns_check(lines: str) -> str:
    return "version: 1\nchecks:\n  - name: a\n    url: dns://127.0.0.1:53\n" + textwrap.indent(textwrap.dedent(lines), "    ")


def icmp_check(lines: str) -> str:
    return "version: 1\nchecks:\n  - name: a\n    url: icmp://127.0.0.1\n" + textwrap.indent(textwrap.dedent(lines), "    ")


# schema location of the constraint -> (a document breaking only it, what the message must say)
ROWS = {
    "$defs/checkSettings/properties/depends_on/items/pattern": ("version: 1\nchecks: [{name: a, url: 'http://127.0.0.1/', depends_on: ['a b']}]\n", 'checks[0].depends_on[0]: "a b" is not a valid value'),
    "$defs/checkSettings/properties/depends_on/uniqueItems": ("version: 1\nchecks: [{name: a, url: 'http://127.0.0.1/'}, {name: b, url: 'http://127.0.0.1/', depends_on: [a, a]}]\n", "checks[1].depends_on: ['a', 'a'] has non-unique elements"),
    "$defs/notifier/properties/group_by/items/pattern": ("version: 1\nnotifiers: {ops: {urls: ['json://x/'], group_by: ['a-b']}}\n", 'notifiers.ops.group_by[0]: "a-b" is not a valid value'),
    "$defs/notifier/properties/group_by/minItems": ("version: 1\nnotifiers: {ops: {urls: ['json://x/'], group_by: []}}\n", "notifiers.ops.group_by: needs at least 1 item, has 0"),
    "$defs/notifier/properties/group_by/uniqueItems": ("version: 1\nnotifiers: {ops: {urls: ['json://x/'], group_by: [team, team]}}\n", "notifiers.ops.group_by: ['team', 'team'] has non-unique elements"),
    # SLO burn-rate alerts and SQL rules (issue 21)
    "$defs/burnRateAlerts/additionalProperties": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nchecks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99, burn_rate_alerts: {pager: [ops]}}}]\n", "checks[0].slo.burn_rate_alerts.pager: unknown key 'pager'; did you mean 'page'?"),
    "$defs/burnRateAlerts/properties/page/uniqueItems": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nchecks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99, burn_rate_alerts: {page: [ops, ops]}}}]\n", "checks[0].slo.burn_rate_alerts.page: ['ops', 'ops'] has non-unique elements"),
    "$defs/burnRateAlerts/properties/ticket/uniqueItems": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nchecks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99, burn_rate_alerts: {ticket: [ops, ops]}}}]\n", "checks[0].slo.burn_rate_alerts.ticket: ['ops', 'ops'] has non-unique elements"),
    "$defs/burnRateAlerts/properties/windows/items/additionalProperties": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nchecks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99, burn_rate_alerts: {page: [ops], windows: [{long: 1h, short: 5m, burn_rate: 14.4, severity: page, factor: 2}]}}}]\n", "checks[0].slo.burn_rate_alerts.windows[0].factor: unknown key 'factor'; allowed: burn_rate"),
    "$defs/burnRateAlerts/properties/windows/items/properties/burn_rate/exclusiveMinimum": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nchecks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99, burn_rate_alerts: {page: [ops], windows: [{long: 1h, short: 5m, burn_rate: 0, severity: page}]}}}]\n", 'checks[0].slo.burn_rate_alerts.windows[0].burn_rate: 0 is out of range; must be more than '),
    "$defs/burnRateAlerts/properties/windows/items/properties/severity/enum": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nchecks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99, burn_rate_alerts: {page: [ops], windows: [{long: 1h, short: 5m, burn_rate: 2, severity: urgent}]}}}]\n", 'checks[0].slo.burn_rate_alerts.windows[0].severity: "urgent" is not one of: "page", "ticke'),
    "$defs/burnRateAlerts/properties/windows/items/required": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nchecks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99, burn_rate_alerts: {page: [ops], windows: [{long: 1h, short: 5m, severity: page}]}}}]\n", "checks[0].slo.burn_rate_alerts.windows[0]: missing required key 'burn_rate'"),
    "$defs/burnRateAlerts/properties/windows/minItems": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nchecks: [{name: a, url: 'http://127.0.0.1/', slo: {objective: 99, burn_rate_alerts: {page: [ops], windows: []}}}]\n", 'checks[0].slo.burn_rate_alerts.windows: needs at least 1 item, has 0'),
    "$defs/rule/additionalProperties": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nrules: [{name: r, sql: 'SELECT 1', notify: [ops], fro: 5m}]\n", "rules[0].fro: unknown key 'fro'; did you mean 'for'?"),
    "$defs/rule/properties/description/maxLength": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nrules: [{name: r, sql: 'SELECT 1', notify: [ops], description: " + "d" * 501 + "}]\n", 'rules[0].description: must be at most 500 characters'),
    "$defs/rule/properties/notify/minItems": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nrules: [{name: r, sql: 'SELECT 1', notify: []}]\n", 'rules[0].notify: needs at least 1 item, has 0'),
    "$defs/rule/properties/notify/uniqueItems": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nrules: [{name: r, sql: 'SELECT 1', notify: [ops, ops]}]\n", "rules[0].notify: ['ops', 'ops'] has non-unique elements"),
    "$defs/rule/properties/sql/minLength": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nrules: [{name: r, sql: '', notify: [ops]}]\n", 'rules[0].sql: must not be empty'),
    "$defs/rule/required": ("version: 1\nnotifiers: {ops: {urls: ['json://x/']}}\nrules: [{name: r, notify: [ops]}]\n", "rules[0]: missing required key 'sql'"),
    # status_page (issue 20)
    "$defs/statusPage/additionalProperties": ("version: 1\nstatus_page: {titel: x}\n", "status_page.titel: unknown key 'titel'; did you mean 'title'?"),
    "$defs/statusPage/properties/checks/oneOf/0/const": ("version: 1\nstatus_page: {checks: some}\n", 'status_page.checks: "some" is not allowed; must be "all"'),
    # the selector branch of a oneOf: jsonschema's best match is the const branch, so these name "all" (known weakness)
    "$defs/statusPage/properties/checks/oneOf/1/additionalProperties": ("version: 1\nstatus_page: {checks: {labels: {a: b}, lables: {}}}\n", 'status_page.checks: {'),
    "$defs/statusPage/properties/checks/oneOf/1/required": ("version: 1\nstatus_page: {checks: {}}\n", 'status_page.checks: {} is not allowed; must be "all"'),
    "$defs/statusPage/properties/checks/oneOf/1/properties/labels/additionalProperties": ("version: 1\nstatus_page: {checks: {labels: {team: 1}}}\n", "status_page.checks.labels.team: expected string, got integer 1"),
    "$defs/statusPage/properties/checks/oneOf/1/properties/labels/minProperties": ("version: 1\nstatus_page: {checks: {labels: {}}}\n", "status_page.checks.labels: {} should be non-empty"),
    "$defs/statusPage/properties/checks/oneOf/1/properties/labels/propertyNames": ("version: 1\nstatus_page: {checks: {labels: {'a b': x}}}\n", 'key "a b" is not a valid value'),
    "$defs/statusPage/properties/checks/oneOf/1/properties/labels/propertyNames/pattern": ("version: 1\nstatus_page: {checks: {labels: {'1a': x}}}\n", 'key "1a" is not a valid value'),
    "$defs/statusPage/properties/description/maxLength": ("version: 1\nstatus_page: {description: " + "d" * 2001 + "}\n", "status_page.description: must be at most 2000 characters"),
    "$defs/statusPage/properties/group_by/pattern": ("version: 1\nstatus_page: {group_by: 'a b'}\n", 'status_page.group_by: "a b" is not a valid group by label'),
    "$defs/statusPage/properties/listen/pattern": ("version: 1\nstatus_page: {listen: nonsense}\n", 'status_page.listen: "nonsense" is not a valid separate public address'),
    "$defs/statusPage/properties/logo_url/maxLength": ("version: 1\nstatus_page: {logo_url: 'https://x/" + "l" * 2000 + "'}\n", "status_page.logo_url: must be at most 2000 characters"),
    "$defs/statusPage/properties/logo_url/pattern": ("version: 1\nstatus_page: {logo_url: 'ftp://x/logo.svg'}\n", 'status_page.logo_url: "ftp://x/logo.svg" is not a valid logo'),
    "$defs/statusPage/properties/names/additionalProperties": ("version: 1\nstatus_page: {names: {a: 1}}\n", "status_page.names.a: expected string, got integer 1"),
    "$defs/statusPage/properties/names/additionalProperties/maxLength": ("version: 1\nstatus_page: {names: {a: " + "n" * 201 + "}}\n", "status_page.names.a: must be at most 200 characters"),
    "$defs/statusPage/properties/names/additionalProperties/minLength": ("version: 1\nstatus_page: {names: {a: ''}}\n", "status_page.names.a: must not be empty"),
    "$defs/statusPage/properties/names/propertyNames": ("version: 1\nstatus_page: {names: {'a b': x}}\n", 'status_page.names.a b: key "a b" is not a valid name'),
    "$defs/statusPage/properties/title/maxLength": ("version: 1\nstatus_page: {title: " + "t" * 201 + "}\n", "status_page.title: must be at most 200 characters"),
    "$defs/statusPage/properties/title/minLength": ("version: 1\nstatus_page: {title: ''}\n", "status_page.title: must not be empty"),
    "required": ("checks: []\n", "missing required key 'version'"),
    "additionalProperties": ("version: 1\nchekcs: []\n", "unknown key 'chekcs'; did you mean 'checks'?"),
    "properties/version/const": ("version: 2\n", "version: 2 is not allowed; must be 1"),
    "properties/defaults/unevaluatedProperties": ("version: 1\ndefaults: {nmae: x}\n", "defaults.nmae: unknown key 'nmae'"),
    "properties/notifiers/propertyNames": ("version: 1\nnotifiers: {'a b': {urls: ['json://x/']}}\n", "key \"a b\" is not a valid name"),
    "properties/notifiers/additionalProperties": ("version: 1\nnotifiers: {ops: []}\n", "notifiers.ops: expected mapping, got list"),
    "$defs/name/pattern": ("version: 1\nchecks: [{name: a b, url: 'http://127.0.0.1/'}]\n", 'checks[0].name: "a b" is not a valid name'),
    "$defs/name/maxLength": ("version: 1\nchecks:\n  - {name: " + "n" * 129 + ", url: 'http://127.0.0.1/'}\n", "checks[0].name: must be at most 128 characters"),
    "$defs/duration/pattern": (check("timeout: 5 parsecs\n"), 'checks[0].timeout: "5 parsecs" is not a valid duration'),
    "$defs/duration/minimum": (check("timeout: -1\n"), "checks[0].timeout: -1 is out of range; must be at least 0"),
    "$defs/size/pattern": (check("max_body_size: 1 TB\n"), 'checks[0].max_body_size: "1 TB" is not a valid size'),
    "$defs/size/minimum": (check("max_body_size: 0\n"), "checks[0].max_body_size: 0 is out of range; must be at least 1"),
    "$defs/agent/additionalProperties": ("version: 1\nagent: {listn: x}\n", "agent.listn: unknown key 'listn'; did you mean 'listen'?"),
    "$defs/agent/properties/listen/pattern": ("version: 1\nagent: {listen: nonsense}\n", '"nonsense" is not a valid listen address'),
    "$defs/agent/properties/database/minLength": ("version: 1\nagent: {database: ''}\n", "agent.database: must not be empty"),
    "$defs/agent/properties/max_concurrency/minimum": ("version: 1\nagent: {max_concurrency: 0}\n", "0 is out of range; must be at least 1"),
    "$defs/agent/properties/max_concurrency/maximum": ("version: 1\nagent: {max_concurrency: 100001}\n", "must be at most 100000"),
    "$defs/agent/properties/workers/minimum": ("version: 1\nagent: {workers: -1}\n", "agent.workers: -1 is out of range; must be at least 0"),
    "$defs/agent/properties/workers/maximum": ("version: 1\nagent: {workers: 65}\n", "agent.workers: 65 is out of range; must be at most 64"),
    "$defs/agent/properties/log_format/enum": ("version: 1\nagent: {log_format: xml}\n", '"xml" is not one of: "json", "text"'),
    "$defs/agent/properties/log_level/enum": ("version: 1\nagent: {log_level: loud}\n", '"loud" is not one of: "debug", "info", "warning", "error"'),
    "$defs/agent/properties/shard/pattern": ("version: 1\nagent: {shard: '0/2'}\n", 'agent.shard: "0/2" is not a valid shard'),
    "$defs/agent/properties/api_token/minLength": ("version: 1\nagent: {api_token: abcdef}\n", "agent.api_token: must be at least 16 characters"),
    "$defs/notifier/required": ("version: 1\nnotifiers: {ops: {title: x}}\n", "notifiers.ops: missing required key 'urls'"),
    "$defs/notifier/additionalProperties": ("version: 1\nnotifiers: {ops: {urls: ['json://x/'], url: y}}\n", "notifiers.ops.url: unknown key 'url'; did you mean 'urls'?"),
    "$defs/notifier/properties/urls/minItems": ("version: 1\nnotifiers: {ops: {urls: []}}\n", "notifiers.ops.urls: needs at least 1 item, has 0"),
    "$defs/notifier/properties/urls/items/minLength": ("version: 1\nnotifiers: {ops: {urls: ['']}}\n", "notifiers.ops.urls[0]: must not be empty"),
    "$defs/maintenance/items/required": ("version: 1\nmaintenance: [{schedule: '@daily'}]\n", "maintenance[0]: missing required key 'duration'"),
    "$defs/maintenance/items/additionalProperties": ("version: 1\nmaintenance: [{schedule: '@daily', duration: 1h, zone: UTC}]\n", "maintenance[0].zone: unknown key 'zone'"),
    "$defs/statusCode/minimum": (check("expect: {status: 99}\n"), "checks[0].expect.status: 99 is out of range; must be at least 100"),
    "$defs/statusCode/maximum": (check("expect: {status: 600}\n"), "checks[0].expect.status: 600 is out of range; must be at most 599"),
    "$defs/statusCode/pattern": (check("expect: {status: 2XX}\n"), 'checks[0].expect.status: "2XX" is not a valid status code'),
    "$defs/expect/additionalProperties": (check("expect: {body_contain: x}\n"), "checks[0].expect.body_contain: unknown key 'body_contain'; did you mean 'body_contains'?"),
    "$defs/expect/properties/status/anyOf/1/minItems": (check("expect: {status: []}\n"), "checks[0].expect.status: needs at least 1 item, has 0"),
    "$defs/expect/properties/json/propertyNames": (check("expect: {json: {status: UP}}\n"), 'checks[0].expect.json.status: key "status" is not a valid JSONPath expression'),
    "$defs/expect/properties/json/propertyNames/pattern": (check("expect: {json: {x.y: 1}}\n"), 'key "x.y" is not a valid JSONPath expression (e.g. $.status)'),
    "$defs/expect/properties/headers/additionalProperties": (check("expect: {headers: {etag: 1}}\n"), "checks[0].expect.headers.etag: expected string, got integer (value hidden: secret)"),
    "$defs/retries/additionalProperties": (check("retries: {tries: 2}\n"), "checks[0].retries.tries: unknown key 'tries'"),
    "$defs/retries/properties/attempts/minimum": (check("retries: {attempts: 0}\n"), "checks[0].retries.attempts: 0 is out of range; must be at least 1"),
    "$defs/retries/properties/attempts/maximum": (check("retries: {attempts: 11}\n"), "checks[0].retries.attempts: 11 is out of range; must be at most 10"),
    "$defs/alert/additionalProperties": (check("alert: {notfy: []}\n"), "checks[0].alert.notfy: unknown key 'notfy'; did you mean 'notify'?"),
    "$defs/alert/properties/failure_threshold/minimum": (check("alert: {failure_threshold: 0}\n"), "failure_threshold: 0 is out of range; must be at least 1"),
    "$defs/alert/properties/success_threshold/minimum": (check("alert: {success_threshold: 0}\n"), "success_threshold: 0 is out of range; must be at least 1"),
    "$defs/checkSettings/properties/method/enum": (check("method: FETCH\n"), '"FETCH" is not one of: "GET", "HEAD"'),
    "$defs/checkSettings/properties/headers/additionalProperties": (check("headers: {X-A: 1}\n"), "checks[0].headers.X-A: expected string, got integer (value hidden: secret)"),
    "$defs/checkSettings/properties/missed/enum": (check("missed: catch_up\n"), '"catch_up" is not one of: "skip", "run_once"'),
    "$defs/checkSettings/properties/delivery/enum": (check("delivery: exactly_once\n"), '"exactly_once" is not one of: "at_least_once", "at_most_once"'),
    "$defs/checkSettings/properties/max_redirects/minimum": (check("max_redirects: -1\n"), "checks[0].max_redirects: -1 is out of range; must be at least 0"),
    "$defs/checkSettings/properties/max_redirects/maximum": (check("max_redirects: 101\n"), "checks[0].max_redirects: 101 is out of range; must be at most 100"),
    "$defs/checkSettings/properties/ca_file/minLength": (check("ca_file: ''\n"), "checks[0].ca_file: must not be empty"),
    "$defs/checkSettings/properties/basic_auth/required": (check("basic_auth: {username: u}\n"), "checks[0].basic_auth: missing required key 'password'"),
    "$defs/checkSettings/properties/basic_auth/additionalProperties": (check("basic_auth: {username: u, password: p, realm: r}\n"), "checks[0].basic_auth.realm: unknown key 'realm'"),
    "$defs/checkSettings/properties/bearer_token/minLength": (check("bearer_token: ''\n"), "checks[0].bearer_token: must not be empty"),
    "$defs/checkSettings/properties/labels/propertyNames": (check("labels: {'1team': x}\n"), 'checks[0].labels.1team: key "1team" is not a valid label name'),
    "$defs/checkSettings/properties/labels/propertyNames/pattern": (check("labels: {'a-b': x}\n"), 'key "a-b" is not a valid label name (e.g. team'),
    "$defs/checkSettings/properties/labels/additionalProperties": (check("labels: {team: 1}\n"), "checks[0].labels.team: expected string, got integer 1"),
    "$defs/checkSettings/properties/slo/required": (check("slo: {}\n"), "checks[0].slo: missing required key 'objective'"),
    "$defs/checkSettings/properties/slo/additionalProperties": (check("slo: {objective: 99, windw: 30d}\n"), "checks[0].slo.windw: unknown key 'windw'; did you mean 'window'?"),
    "$defs/checkSettings/properties/slo/properties/objective/exclusiveMinimum": (check("slo: {objective: 0}\n"), "checks[0].slo.objective: 0 is out of range; must be more than 0"),
    "$defs/checkSettings/properties/slo/properties/objective/maximum": (check("slo: {objective: 101}\n"), "checks[0].slo.objective: 101 is out of range; must be at most 100"),
    "$defs/check/required": ("version: 1\nchecks: [{url: 'http://127.0.0.1/'}]\n", "checks[0]: missing required key 'name'"),
    # Push checks (issue 19): url or push, the push block.
    "$defs/check/anyOf/0/required": ("version: 1\nchecks: [{name: a}]\n", "checks[0]: missing required key 'url'; a check needs a url, or a push: block"),
    "$defs/check/anyOf/1/required": ("version: 1\nchecks: [{name: a, schedule: 5m}]\n", "checks[0]: missing required key 'url'; a check needs a url, or a push: block"),
    "$defs/push/additionalProperties": ("version: 1\nchecks: [{name: a, push: {token: 0123456789abcdef0, grase: 5m}}]\n", "checks[0].push.grase: unknown key 'grase'; did you mean 'grace'?"),
    "$defs/push/required": ("version: 1\nchecks: [{name: a, push: {grace: 5m}}]\n", "checks[0].push: missing required key 'token'"),
    "$defs/push/properties/token/minLength": ("version: 1\nchecks: [{name: a, push: {token: ''}}]\n", "checks[0].push.token: must not be empty"),
    "$defs/check/properties/url/pattern": ("version: 1\nchecks: [{name: a, url: 'x/health'}]\n", 'checks[0].url: "x/health" is not a valid URL'),
    "$defs/check/unevaluatedProperties": (check("timout: 5s\n"), "checks[0].timout: unknown key 'timout'; did you mean 'timeout'?"),
    # Constraints main gained meanwhile (issue 15, 16, 23 merges): skipped where the schema lacks them.
    "$defs/agent/properties/api_token/pattern": ("version: 1\nagent: {api_token: abcdef}\n", "is not a valid API token: at least 16 characters"),
    "$defs/agent/properties/export_dir/minLength": ("version: 1\nagent: {export_dir: ''}\n", "agent.export_dir: must not be empty"),
    "$defs/agent/properties/location/maxLength": ("version: 1\nagent: {location: " + "l" * 129 + "}\n", "agent.location: must be at most 128 characters"),
    "$defs/agent/properties/metrics_detail/enum": ("version: 1\nagent: {metrics_detail: terse}\n", "agent.metrics_detail: "),
    "$defs/agent/properties/location/minLength": ("version: 1\nagent: {location: ''}\n", "agent.location: must not be empty"),
    "$defs/agent/properties/workers/oneOf/0/maximum": ("version: 1\nagent: {workers: 65}\n", "agent.workers: 65 is out of range; must be at most 64"),
    "$defs/agent/properties/workers/oneOf/0/minimum": ("version: 1\nagent: {workers: -1}\n", "agent.workers: -1 is out of range; must be at least 0"),
    "$defs/agent/properties/workers/oneOf/1/const": ("version: 1\nagent: {workers: many}\n", 'agent.workers: "many" is not allowed; must be "auto"'),
    "$defs/module/properties/allowed_targets/items/minLength": ("version: 1\nmodules: {m: {allowed_targets: ['']}}\n", "modules.m.allowed_targets[0]: must not be empty"),
    "$defs/module/properties/allowed_targets/minItems": ("version: 1\nmodules: {m: {allowed_targets: []}}\n", "modules.m.allowed_targets: needs at least 1 item, has 0"),
    "$defs/module/required": ("version: 1\nmodules: {m: {timeout: 5s}}\n", "modules.m: missing required key 'allowed_targets'"),
    "$defs/module/unevaluatedProperties": ("version: 1\nmodules: {m: {allowed_targets: ['10.0.0.0/8'], allowed: x}}\n", "modules.m.allowed: unknown key 'allowed'"),
    "properties/modules/additionalProperties": ("version: 1\nmodules: {m: []}\n", "modules.m: expected mapping, got list"),
    "properties/modules/propertyNames": ("version: 1\nmodules: {'a b': {allowed_targets: ['10.0.0.0/8']}}\n", 'key "a b" is not a valid name'),
    # The transport keys (issue 17).
    "$defs/checkSettings/properties/http_version/enum": (check('http_version: "3"\n'), 'checks[0].http_version: "3" is not one of: "1.1", "2"'),
    "$defs/checkSettings/properties/proxy_url/minLength": (check("proxy_url: ''\n"), "checks[0].proxy_url: must not be empty"),
    "$defs/checkSettings/properties/tls/additionalProperties": (check("tls: {certfile: x}\n"), "checks[0].tls.certfile: unknown key 'certfile'; did you mean 'cert_file'?"),
    "$defs/checkSettings/properties/tls/properties/cert_file/minLength": (check("tls: {cert_file: ''}\n"), "checks[0].tls.cert_file: must not be empty"),
    "$defs/checkSettings/properties/tls/properties/key_file/minLength": (check("tls: {key_file: ''}\n"), "checks[0].tls.key_file: must not be empty"),
    "$defs/checkSettings/properties/tls/properties/server_name/pattern": (check("tls: {server_name: 'a b'}\n"), 'checks[0].tls.server_name: "a b" is not a valid TLS server name'),
    "$defs/checkSettings/properties/tls/properties/min_version/enum": (check("tls: {min_version: '1.1'}\n"), 'checks[0].tls.min_version: "1.1" is not one of: "1.2", "1.3"'),
    "$defs/expect/properties/http_version/enum": (check("expect: {http_version: '3'}\n"), 'checks[0].expect.http_version: "3" is not one of: "1.0", "1.1", "2"'),
    # tcp:// and tls:// checks (issue 19)
    "$defs/checkSettings/properties/send/minLength": ("version: 1\nchecks: [{name: a, url: 'tcp://127.0.0.1:1', send: ''}]\n", "checks[0].send: must not be empty"),
    "$defs/checkSettings/properties/send/maxLength": ("version: 1\nchecks: [{name: a, url: 'tcp://127.0.0.1:1', send: " + "s" * 65537 + "}]\n", "checks[0].send: must be at most 65536 characters"),
    "$defs/checkSettings/properties/starttls/enum": ("version: 1\nchecks: [{name: a, url: 'tls://127.0.0.1:1', starttls: pop3}]\n", 'checks[0].starttls: "pop3" is not one of: "smtp", "imap", "ftp"'),
    "$defs/expect/properties/receive/minLength": ("version: 1\nchecks: [{name: a, url: 'tcp://127.0.0.1:1', expect: {receive: ''}}]\n", "checks[0].expect.receive: must not be empty"),
    "$defs/expect/properties/receive/maxLength": ("version: 1\nchecks: [{name: a, url: 'tcp://127.0.0.1:1', expect: {receive: " + "r" * 4097 + "}}]\n", "checks[0].expect.receive: must be at most 4096 characters"),
    "$defs/expect/properties/tls_version/enum": (check("expect: {tls_version: '1.1'}\n"), 'checks[0].expect.tls_version: "1.1" is not one of: "1.2", "1.3"'),
    # dns:// and icmp:// checks (issue 19)
    "$defs/checkSettings/properties/dns/additionalProperties": (dns_check("dns: {name: a.example, class: IN}\n"), "checks[0].dns.class: unknown key 'class'"),
    "$defs/checkSettings/properties/dns/properties/name/maxLength": (dns_check("dns: {name: " + "a" * 254 + "}\n"), "checks[0].dns.name: must be at most 253 characters"),
    "$defs/checkSettings/properties/dns/properties/name/minLength": (dns_check("dns: {name: ''}\n"), "checks[0].dns.name: must not be empty"),
    "$defs/checkSettings/properties/dns/properties/type/enum": (dns_check("dns: {name: a.example, type: PTR}\n"), 'checks[0].dns.type: "PTR" is not one of: "A", "AAAA"'),
    "$defs/checkSettings/properties/dns/required": (dns_check("dns: {type: A}\n"), "checks[0].dns: missing required key 'name'"),
    "$defs/checkSettings/properties/icmp/additionalProperties": (icmp_check("icmp: {ttl: 3}\n"), "checks[0].icmp.ttl: unknown key 'ttl'"),
    "$defs/checkSettings/properties/icmp/properties/count/maximum": (icmp_check("icmp: {count: 101}\n"), "checks[0].icmp.count: 101 is out of range; must be at most 100"),
    "$defs/checkSettings/properties/icmp/properties/count/minimum": (icmp_check("icmp: {count: 0}\n"), "checks[0].icmp.count: 0 is out of range; must be at least 1"),
    "$defs/checkSettings/properties/icmp/properties/size/maximum": (icmp_check("icmp: {size: 65001}\n"), "checks[0].icmp.size: 65001 is out of range; must be at most 65000"),
    "$defs/checkSettings/properties/icmp/properties/size/minimum": (icmp_check("icmp: {size: -1}\n"), "checks[0].icmp.size: -1 is out of range; must be at least 0"),
    "$defs/expect/properties/answer/additionalProperties": (dns_check("dns: {name: a.example}\nexpect: {answer: {include: [x]}}\n"), "checks[0].expect.answer.include: unknown key 'include'"),
    "$defs/expect/properties/answer/minProperties": (dns_check("dns: {name: a.example}\nexpect: {answer: {}}\n"), "checks[0].expect.answer: {} should be non-empty"),
    "$defs/expect/properties/answer/properties/contains/minItems": (dns_check("dns: {name: a.example}\nexpect: {answer: {contains: []}}\n"), "checks[0].expect.answer.contains: needs at least 1 item, has 0"),
    "$defs/expect/properties/answer_count/anyOf/0/minimum": (dns_check("dns: {name: a.example}\nexpect: {answer_count: -1}\n"), "checks[0].expect.answer_count: -1"),
    "$defs/expect/properties/answer_count/anyOf/1/pattern": (dns_check("dns: {name: a.example}\nexpect: {answer_count: 'about 3'}\n"), 'checks[0].expect.answer_count: "about 3"'),
    "$defs/expect/properties/max_packet_loss/maximum": (icmp_check("expect: {max_packet_loss: 101}\n"), "checks[0].expect.max_packet_loss: 101 is out of range; must be at most 100"),
    "$defs/expect/properties/max_packet_loss/minimum": (icmp_check("expect: {max_packet_loss: -1}\n"), "checks[0].expect.max_packet_loss: -1 is out of range; must be at least 0"),
    "$defs/expect/properties/rcode/anyOf/0/enum": (dns_check("dns: {name: a.example}\nexpect: {rcode: NOTFOUND}\n"), 'checks[0].expect.rcode: "NOTFOUND"'),
    "$defs/expect/properties/rcode/anyOf/1/items/enum": (dns_check("dns: {name: a.example}\nexpect: {rcode: [NOERROR, NOTFOUND]}\n"), "checks[0].expect.rcode"),
    "$defs/expect/properties/rcode/anyOf/1/minItems": (dns_check("dns: {name: a.example}\nexpect: {rcode: []}\n"), "checks[0].expect.rcode: []"),
}  # fmt: skip


def constraints(node: object, path: tuple[str, ...] = ()) -> list[str]:
    """The location of every constraint keyword in the schema."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in KEYWORDS:
                found.append("/".join((*path, key)))
            found += constraints(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += constraints(value, (*path, str(i)))
    return found


SCHEMA = json.loads((ROOT / "schemas" / "pulse.schema.json").read_text())


def test_every_constraint_of_the_schema_has_a_row():
    assert sorted(set(constraints(SCHEMA)) - set(ROWS)) == []


@pytest.mark.parametrize(("location", "text", "expected"), [(k, *v) for k, v in ROWS.items()], ids=list(ROWS))
def test_a_broken_constraint_gets_a_message_naming_it(location, text, expected):
    if location not in constraints(SCHEMA):
        pytest.skip("this schema has no such constraint")
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text, "p.yaml", {})
    messages = [str(e) for e in info.value.errors]
    assert len(messages) == 1, messages
    assert expected in messages[0]
