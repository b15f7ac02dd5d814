"""Every schedule form, table-driven, from fixed instants, in UTC, Berlin and New York, across 2026's DST changes."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pulse_agent.schedule import Cron, Interval, OneShot, ScheduleError, missed_due, parse_schedule, spread


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def upcoming(text: str, zone: str, start: str, n: int = 3) -> list[str]:
    schedule = parse_schedule(text, zone)
    t, out = ts(start), []
    for _ in range(n):
        t = schedule.next_due(t, "k")
        if t is None:
            break
        out.append(datetime.fromtimestamp(t, ZoneInfo(zone)).isoformat())
    return out


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("every 10 seconds", 10), ("every 5 minutes", 300), ("every 2h", 7200),
     ("every hour", 3600), ("Every  1  Minute", 60), ("every 24h", 86400), ("1s", 1), ("every day", 86400)],
)  # fmt: skip
def test_intervals(text, seconds):
    assert parse_schedule(text) == Interval(seconds, text)


# Sunday 2026-11-22 12:00 UTC (13:00 Berlin, 07:00 New York)
NOV = "2026-11-22T12:00:00+00:00"


@pytest.mark.parametrize(
    ("text", "zone", "start", "expected"),
    [
        # cron, 5 fields
        ("*/15 * * * *", "UTC", NOV, ["2026-11-22T12:15:00+00:00", "2026-11-22T12:30:00+00:00", "2026-11-22T12:45:00+00:00"]),
        ("0 9 * * MON-FRI", "Europe/Berlin", NOV, ["2026-11-23T09:00:00+01:00", "2026-11-24T09:00:00+01:00", "2026-11-25T09:00:00+01:00"]),
        ("0 0 1 JAN,JUL *", "UTC", NOV, ["2027-01-01T00:00:00+00:00", "2027-07-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"]),
        ("0 8 * * FRI#2", "UTC", NOV, ["2026-12-11T08:00:00+00:00", "2027-01-08T08:00:00+00:00", "2027-02-12T08:00:00+00:00"]),
        ("0 22 L * *", "America/New_York", NOV, ["2026-11-30T22:00:00-05:00", "2026-12-31T22:00:00-05:00", "2027-01-31T22:00:00-05:00"]),
        # cron, 6 fields, seconds first
        ("31 10-15 1 * * MON-FRI", "UTC", NOV, ["2026-11-23T01:10:31+00:00", "2026-11-23T01:11:31+00:00", "2026-11-23T01:12:31+00:00"]),
        ("*/20 * * * * *", "UTC", NOV, ["2026-11-22T12:00:20+00:00", "2026-11-22T12:00:40+00:00", "2026-11-22T12:01:00+00:00"]),
        # macros
        ("@hourly", "UTC", NOV, ["2026-11-22T13:00:00+00:00", "2026-11-22T14:00:00+00:00", "2026-11-22T15:00:00+00:00"]),
        ("@daily", "Europe/Berlin", NOV, ["2026-11-23T00:00:00+01:00", "2026-11-24T00:00:00+01:00", "2026-11-25T00:00:00+01:00"]),
        ("@weekly", "UTC", NOV, ["2026-11-29T00:00:00+00:00", "2026-12-06T00:00:00+00:00", "2026-12-13T00:00:00+00:00"]),
        ("@monthly", "UTC", NOV, ["2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00"]),
        ("@yearly", "UTC", NOV, ["2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00", "2029-01-01T00:00:00+00:00"]),
        # calendar phrases
        ("every day at 9am", "Europe/Berlin", NOV, ["2026-11-23T09:00:00+01:00", "2026-11-24T09:00:00+01:00", "2026-11-25T09:00:00+01:00"]),
        ("every day at 21:15", "America/New_York", NOV, ["2026-11-22T21:15:00-05:00", "2026-11-23T21:15:00-05:00", "2026-11-24T21:15:00-05:00"]),
        ("every weekday at 08:00", "UTC", NOV, ["2026-11-23T08:00:00+00:00", "2026-11-24T08:00:00+00:00", "2026-11-25T08:00:00+00:00"]),
        ("every weekend at 10am", "UTC", NOV, ["2026-11-28T10:00:00+00:00", "2026-11-29T10:00:00+00:00", "2026-12-05T10:00:00+00:00"]),
        ("every monday at 2pm", "Europe/Berlin", NOV, ["2026-11-23T14:00:00+01:00", "2026-11-30T14:00:00+01:00", "2026-12-07T14:00:00+01:00"]),
        ("every monday and thursday at 14:30", "UTC", NOV, ["2026-11-23T14:30:00+00:00", "2026-11-26T14:30:00+00:00", "2026-11-30T14:30:00+00:00"]),
        ("every first friday of month at 9am", "Europe/Berlin", NOV, ["2026-12-04T09:00:00+01:00", "2027-01-01T09:00:00+01:00", "2027-02-05T09:00:00+01:00"]),
        ("every first friday of month", "UTC", NOV, ["2026-12-04T00:00:00+00:00", "2027-01-01T00:00:00+00:00", "2027-02-05T00:00:00+00:00"]),
        ("every last friday of the month at 6pm", "UTC", NOV, ["2026-11-27T18:00:00+00:00", "2026-12-25T18:00:00+00:00", "2027-01-29T18:00:00+00:00"]),
        ("every last day of month at 23:00", "UTC", NOV, ["2026-11-30T23:00:00+00:00", "2026-12-31T23:00:00+00:00", "2027-01-31T23:00:00+00:00"]),
        ("every month on the 15th at noon", "America/New_York", NOV, ["2026-12-15T12:00:00-05:00", "2027-01-15T12:00:00-05:00", "2027-02-15T12:00:00-05:00"]),
        ("every hour at :15", "UTC", NOV, ["2026-11-22T12:15:00+00:00", "2026-11-22T13:15:00+00:00", "2026-11-22T14:15:00+00:00"]),
        ("every day at midnight", "UTC", NOV, ["2026-11-23T00:00:00+00:00", "2026-11-24T00:00:00+00:00", "2026-11-25T00:00:00+00:00"]),
        ("every day at 12am", "UTC", NOV, ["2026-11-23T00:00:00+00:00", "2026-11-24T00:00:00+00:00", "2026-11-25T00:00:00+00:00"]),
        ("every day at 9:30:15pm", "UTC", NOV, ["2026-11-22T21:30:15+00:00", "2026-11-23T21:30:15+00:00", "2026-11-24T21:30:15+00:00"]),
        # one-shot: once, then never
        ("at 2026-12-01T09:00:00Z", "UTC", NOV, ["2026-12-01T09:00:00+00:00"]),
        ("at 2026-12-01T09:00:00+05:30", "UTC", NOV, ["2026-12-01T03:30:00+00:00"]),
        ("at 2026-12-01T09:00:00", "Europe/Berlin", NOV, ["2026-12-01T09:00:00+01:00"]),
        ("at 2026-01-01T00:00:00Z", "UTC", NOV, []),
        # DST, Europe/Berlin: 2026-03-29 02:00 -> 03:00 and 2026-10-25 03:00 -> 02:00
        ("every day at 2:30am", "Europe/Berlin", "2026-03-28T12:00:00+00:00", ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]),
        ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00", "2026-10-27T02:30:00+01:00"]),
        ("every day at 9am", "Europe/Berlin", "2026-10-24T12:00:00+00:00", ["2026-10-25T09:00:00+01:00", "2026-10-26T09:00:00+01:00", "2026-10-27T09:00:00+01:00"]),
        ("*/30 * * * *", "Europe/Berlin", "2026-10-24T23:40:00+00:00", ["2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00"]),
        # DST, America/New_York: 2026-03-08 02:00 -> 03:00 and 2026-11-01 02:00 -> 01:00
        ("every day at 2:30am", "America/New_York", "2026-03-07T12:00:00+00:00", ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]),
        ("every day at 1:30am", "America/New_York", "2026-10-31T12:00:00+00:00", ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00", "2026-11-03T01:30:00-05:00"]),
        ("every sunday at 1:15am", "America/New_York", "2026-10-31T12:00:00+00:00", ["2026-11-01T01:15:00-04:00", "2026-11-08T01:15:00-05:00", "2026-11-15T01:15:00-05:00"]),
    ],
)  # fmt: skip
def test_next_due_times(text, zone, start, expected):
    assert upcoming(text, zone, start) == expected


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("text", ["every day at 2:30am", "every day at 1:30am", "0 9 * * *"])
def test_a_daily_schedule_fires_exactly_once_every_local_day_of_2026(text, zone):
    z = ZoneInfo(zone)
    schedule = parse_schedule(text, zone)
    t = datetime(2026, 1, 1, tzinfo=z).timestamp() - 1
    days = []
    while True:
        t = schedule.next_due(t, "k")
        local = datetime.fromtimestamp(t, z)
        if local.year > 2026:
            break
        days.append(local.date())
    assert days == [date(2026, 1, 1) + timedelta(n) for n in range(365)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty schedule"),
        ("every fortnight", "at 'fortnight': 'fortnight' is not a day"),
        ("every 5 parsecs", "at 'parsecs': not a unit"),
        ("500ms", "out of range; it must be between 1s and 24h"),
        ("every 25 hours", "out of range"),
        ("61 * * * *", "invalid cron '61 * * * *': bad minute field '61'"),
        ("* * 32 * *", "bad day of month field '32'"),
        ("0 9 * * FUNDAY", "bad day of week field 'FUNDAY'"),
        ("99 * * * * *", "bad second field '99'"),
        ("* * * * * * *", "has 7 fields; cron takes 5, or 6 with seconds first"),
        ("@sometimes", "unknown macro '@sometimes'; use one of @hourly"),
        ("every day at 25:00", "at '25:00': '25:00' is not a time of day"),
        ("every day at 13pm", "with am/pm the hour is 1..12"),
        ("every day at", "'at' needs a time"),
        ("every hour at 15", "write 'every hour at :MM'"),
        ("every month on the 40th", "at '40th'"),
        ("every second blursday of month", "at 'blursday'"),
        ("at tomorrow", "cannot read the time in 'at tomorrow' at 'tomorrow'"),
        ("whenever", "cannot read 'whenever' at 'whenever'; accepted forms: an interval"),
    ],
)
def test_bad_schedules_point_at_the_bad_token(text, message):
    with pytest.raises(ScheduleError) as info:
        parse_schedule(text)
    assert message in str(info.value)


def test_unparseable_phrases_list_the_accepted_forms():
    with pytest.raises(ScheduleError) as info:
        parse_schedule("every blue moon")
    text = str(info.value)
    for form in ("every 5 minutes", "31 10-15 1 * * MON-FRI", "every weekday at 08:00", "at 2026-12-01T09:00:00Z"):
        assert form in text


def test_interval_due_times_are_on_a_per_check_grid():
    every = parse_schedule("10s")
    first = every.next_due(1000.0, "api")
    assert 1000.0 < first <= 1010.0
    assert every.next_due(first, "api") == pytest.approx(first + 10)
    assert every.next_due(5000.0, "api") % 10 == pytest.approx(first % 10)  # same phase from any instant


def test_spread_distributes_names_over_the_interval():
    phases = [spread(f"check-{i}") for i in range(1000)]
    assert all(0 <= p < 1 for p in phases)
    per_tenth = [sum(int(p * 10) == k for p in phases) for k in range(10)]
    assert min(per_tenth) > 60, per_tenth  # roughly uniform: 100 expected per tenth


NOW = ts("2026-11-22T12:00:00+00:00")
DAILY_9 = parse_schedule("every day at 9am")  # last due before NOW: 2026-11-22T09:00Z


@pytest.mark.parametrize(
    ("schedule", "last_run", "last_seen", "expected"),
    [
        (DAILY_9, ts("2026-11-21T09:00:00+00:00"), None, ts("2026-11-22T09:00:00+00:00")),  # down across today's 9:00
        (DAILY_9, ts("2026-11-19T09:00:00+00:00"), None, ts("2026-11-22T09:00:00+00:00")),  # several missed: one catch-up, the latest
        (DAILY_9, ts("2026-11-22T09:00:00+00:00"), None, None),  # ran today: nothing missed
        (DAILY_9, None, ts("2026-11-22T08:00:00+00:00"), ts("2026-11-22T09:00:00+00:00")),  # new check, agent seen before 9:00
        (DAILY_9, None, ts("2026-11-22T10:00:00+00:00"), None),
        (DAILY_9, None, None, None),  # fresh database: nothing to catch up
        (parse_schedule("at 2026-11-22T11:00:00Z"), None, None, ts("2026-11-22T11:00:00+00:00")),  # one-shot never ran
        (parse_schedule("at 2026-11-22T11:00:00Z"), ts("2026-11-22T11:00:00+00:00"), None, None),  # it ran: never again
        (parse_schedule("at 2026-11-22T13:00:00Z"), None, None, None),  # still ahead
        (parse_schedule("30s"), ts("2026-11-20T00:00:00+00:00"), None, None),  # intervals resume, never catch up
    ],
)
def test_missed_due(schedule, last_run, last_seen, expected):
    assert missed_due(schedule, last_run, last_seen, NOW) == expected


def test_forms_parse_to_their_kinds():
    assert isinstance(parse_schedule("*/5 * * * *"), Cron)
    assert isinstance(parse_schedule("every monday at 9am"), Cron)
    assert isinstance(parse_schedule("at 2026-12-01T09:00:00Z"), OneShot)
    assert parse_schedule("every day at 9am", "Europe/Berlin") != parse_schedule("every day at 9am", "UTC")
