import pytest

from pulse_agent.schedule import Interval, ScheduleError, parse_schedule, spread


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("every 10 seconds", 10),
        ("every 5 minutes", 300),
        ("every 2h", 7200),
        ("every hour", 3600),
        ("Every  1  Minute", 60),
        ("every 24h", 86400),
        ("1s", 1),
    ],
)
def test_intervals(text, seconds):
    assert parse_schedule(text) == Interval(seconds, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty schedule"),
        ("every fortnight", "at 'fortnight'"),
        ("every 5 parsecs", "at 'parsecs'"),
        ("500ms", "out of range"),
        ("every 25 hours", "out of range"),
    ],
)
def test_bad_schedules_say_why_and_what_is_accepted(text, message):
    with pytest.raises(ScheduleError, match=message) as info:
        parse_schedule(text)
    assert "between 1s and 24h" in str(info.value) or "every 5 minutes" in str(info.value)


def test_interval_due_times_are_on_a_per_check_grid():
    every = parse_schedule("10s")
    first = every.next_due(1000.0, "api")
    assert 1000.0 < first <= 1010.0
    assert every.next_due(first, "api") == pytest.approx(first + 10)
    # stable: the same name lands on the same phase from any starting instant
    assert every.next_due(5000.0, "api") % 10 == pytest.approx(first % 10)


def test_spread_distributes_names_over_the_interval():
    phases = [spread(f"check-{i}") for i in range(1000)]
    assert all(0 <= p < 1 for p in phases)
    per_tenth = [sum(int(p * 10) == k for p in phases) for k in range(10)]
    assert min(per_tenth) > 60, per_tenth  # roughly uniform: 100 expected per tenth
