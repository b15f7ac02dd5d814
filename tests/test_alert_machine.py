"""The alert state machine, table-driven: a run sequence in, the events out."""

import pytest

from pulse_agent.alerts.machine import AlertState, incident_id, replay, step
from pulse_agent.config.model import AlertSpec
from pulse_agent.result import Result

T0 = 1_800_000_000.0


def runs(pattern: str, every: float = 60.0) -> list[Result]:
    """'.' ok, 'x' failed, 's' ok but degraded; one run per `every` seconds from T0."""
    out = []
    for i, c in enumerate(pattern):
        ok = c != "x"
        out.append(Result("api", T0 + i * every, ok, degraded=c == "s", error_kind=None if ok else "status",
                          error=None if ok else f"run {i} failed"))  # fmt: skip
    return out


DEFAULT = AlertSpec()


def kinds(pattern: str, rule: AlertSpec = DEFAULT, every: float = 60.0) -> list[tuple[str, int, bool]]:
    """(event kind, index of the run that raised it, send) for each event."""
    _, events = replay(AlertState(), runs(pattern, every), rule)
    return [(e.kind, round((e.result.ts - T0) / every), e.send) for e in events]


CASES = [
    # pattern, rule, expected events
    ("....", AlertSpec(), []),
    ("xx.xx.", AlertSpec(), []),  # never 3 in a row
    ("xxx", AlertSpec(), [("failure", 2, True)]),
    ("xxxxxxxx", AlertSpec(), [("failure", 2, True)]),  # one incident, no repeats
    ("xxx..", AlertSpec(), [("failure", 2, True), ("resolved", 4, True)]),
    ("xxx.x..", AlertSpec(), [("failure", 2, True), ("resolved", 6, True)]),  # a lone success does not resolve
    ("xxx.x.x.x..", AlertSpec(), [("failure", 2, True), ("resolved", 10, True)]),  # flapping: still one incident
    ("xxx..xxx..", AlertSpec(), [("failure", 2, True), ("resolved", 4, True), ("failure", 7, True), ("resolved", 9, True)]),
    ("x.", AlertSpec(failure_threshold=1, success_threshold=1), [("failure", 0, True), ("resolved", 1, True)]),
    ("xxx..", AlertSpec(send_on_resolved=False), [("failure", 2, True), ("resolved", 4, False)]),
    ("xxxxxxx", AlertSpec(remind_every=120), [("failure", 2, True), ("reminder", 4, True), ("reminder", 6, True)]),
    ("xxxxx..xxx", AlertSpec(remind_every=0), [("failure", 2, True), ("resolved", 6, True), ("failure", 9, True)]),
    ("sss", AlertSpec(), []),  # degraded is ok, and silent unless asked for
    ("xxsx", AlertSpec(), []),  # a degraded run breaks a failure streak
    ("ss.sss..", AlertSpec(notify_on_degraded=True), [("degraded", 5, True), ("recovered", 7, True)]),
    (
        "sssxxxsss..",
        AlertSpec(notify_on_degraded=True),
        [("degraded", 2, True), ("failure", 5, True), ("resolved", 7, True), ("recovered", 10, True)],
    ),
    ("sss..", AlertSpec(notify_on_degraded=True, send_on_resolved=False), [("degraded", 2, True), ("recovered", 4, False)]),
]


@pytest.mark.parametrize(("pattern", "rule", "expected"), CASES)
def test_events_of_a_run_sequence(pattern, rule, expected):
    assert kinds(pattern, rule) == expected


def test_incident_facts_come_from_the_first_failure_and_the_first_success():
    _, events = replay(AlertState(), runs("..xxxx..."), AlertSpec())
    failure, resolved = events
    assert failure.incident.opened_at == T0 + 2 * 60  # the first failure of the streak, not the third
    assert failure.incident.first_error == "run 2 failed"
    assert failure.incident.id == incident_id("api", T0 + 120) == "api@1800000120000"
    assert resolved.incident.id == failure.incident.id
    assert resolved.incident.resolved_at == T0 + 6 * 60  # the first success of the resolving streak
    assert resolved.result.ts == T0 + 7 * 60


def test_reminders_count_from_the_last_notification():
    _, events = replay(AlertState(), runs("xxxxxxxxxx"), AlertSpec(remind_every=150))
    assert [(e.kind, e.incident.last_notified_at - T0) for e in events] == [("failure", 120), ("reminder", 300), ("reminder", 480)]


def test_step_is_pure():
    state = AlertState()
    result = runs("x")[0]
    assert step(state, result, AlertSpec()) == step(state, result, AlertSpec())
    assert state == AlertState()  # untouched


def test_replay_from_a_restored_open_incident_raises_no_second_failure():
    state, events = replay(AlertState(), runs("xxx"), AlertSpec())
    restored = AlertState(incident=state.incident)  # what a restart knows: the incident, not the counters
    later = [Result("api", T0 + 600 + i, False) for i in range(5)]
    state, again = replay(restored, later, AlertSpec())
    assert again == [] and state.incident == events[0].incident


def test_a_success_streak_without_an_incident_keeps_no_result_and_its_start_was_never_read():
    """The state after successes with no incident open holds no Result (memory at 100,000 checks); putting
    one back changes no event and no later state: the kept start was never read."""
    import random
    from dataclasses import replace

    rng = random.Random(23)
    rules = [AlertSpec(), AlertSpec(failure_threshold=1, success_threshold=1), AlertSpec(remind_every=90),
             AlertSpec(notify_on_degraded=True, success_threshold=3), AlertSpec(send_on_resolved=False, failure_threshold=2)]  # fmt: skip
    checked = 0
    for _ in range(300):
        rule = rng.choice(rules)
        pattern = "".join(rng.choice(".xs") for _ in range(rng.randrange(1, 30)))
        results = runs(pattern)
        state = AlertState()
        for i, result in enumerate(results):
            state, _ = step(state, result, rule)
            if state.successes and state.incident is None:
                assert state.streak_start is None
                kept = replace(state, streak_start=results[0])  # what a kept start would have held
                a, b = replay(state, results[i + 1 :], rule), replay(kept, results[i + 1 :], rule)
                assert a[1] == b[1]
                assert replace(a[0], streak_start=None) == replace(b[0], streak_start=None)
                checked += 1
    assert checked > 1000


def test_checks_with_the_same_run_of_plain_successes_and_nothing_open_share_one_state():
    a = b = AlertState()
    for x, y in zip(runs("xx" + "." * 300), runs(".x" + "." * 300), strict=True):  # two checks running in step
        a, b = step(a, x, AlertSpec())[0], step(b, y, AlertSpec())[0]
    assert a is b and a == AlertState(successes=300, fast=300)
    b = step(b, runs(".")[0], AlertSpec())[0]
    assert b == AlertState(successes=301, fast=301) and a == AlertState(successes=300, fast=300)
    slow, _ = replay(AlertState(), runs("s" + "." * 299), AlertSpec())
    assert slow == AlertState(successes=300, fast=299) and slow is not b
    held, _ = replay(AlertState(), runs("xxx" + "." * 1), AlertSpec())
    assert held.incident is not None and held.streak_start is not None  # dates the resolution to come
