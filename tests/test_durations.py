import pytest

from pulse_agent.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("7d", 604800),
        ("1.5s", 1.5),
        (" 2h 15m ", 8100),
        (10, 10),
        (0.5, 0.5),
        ("0s", 0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "5x", "m5", "1h30", "-5s", True, -1])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_a_cached_one_second_does_not_answer_for_true():
    assert parse_duration(1) == parse_duration(1.0) == 1.0  # cached; True == 1 == 1.0 as cache keys unless typed
    with pytest.raises(ValueError):
        parse_duration(True)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (0.25, "250ms"), (90, "1m30s"), (5400, "1h30m"), (1209600, "14d")])
def test_format_duration_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
