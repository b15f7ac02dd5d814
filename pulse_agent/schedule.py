"""Pure schedule math: a schedule string (+ time zone) -> the next due time after an instant."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pulse_agent.durations import parse_duration
from pulse_agent.names import spread
from pulse_agent.phrases import PHRASES, PhraseError, phrase_to_cron

MIN_INTERVAL = 1.0
MAX_INTERVAL = 86_400.0

_UNIT_WORDS = {
    "ms": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_EVERY_N_UNIT = re.compile(r"(?:(\d+(?:\.\d+)?)\s*)?([a-z]+)")
_CRON_FIELD = re.compile(r"[\d*?/,\-#LWa-zA-Z]+")
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}  # fmt: skip

ACCEPTED_FORMS = (
    "accepted forms: an interval (30s, 1h30m, 'every 5 minutes', 'every hour'; 1s .. 24h); "
    "cron with 5 fields, or 6 with seconds first ('*/5 * * * *', '31 10-15 1 * * MON-FRI', @daily); "
    f"a calendar phrase ({'; '.join(PHRASES[:4])}; ...); "
    "or one run: 'at 2026-12-01T09:00:00Z'"
)


class ScheduleError(ValueError):
    """A schedule string that cannot be understood; the message says where and what is accepted."""


@dataclass(frozen=True, slots=True)
class Interval:
    """Runs every `seconds`, on a grid offset per check so that checks spread over the interval."""

    seconds: float
    text: str

    def next_due(self, after: float, key: str) -> float:
        """First grid point strictly after `after` for the check named `key`."""
        phase = spread(key) * self.seconds
        steps = math.floor((after - phase) / self.seconds) + 1
        return phase + steps * self.seconds


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression evaluated in a time zone; phrases compile to one of these."""

    expr: str  # 5 fields, or 6 with seconds first
    timezone: str
    text: str

    def next_due(self, after: float, key: str = "") -> float | None:
        """First firing strictly after `after` (None: none left); a wall time repeated by a DST fall-back fires once."""
        return self._firing(after, forward=True)

    def previous_due(self, before: float) -> float | None:
        """Last firing at or before `before`."""
        following = self._firing(before, forward=True)
        return self._firing(before if following is None else following, forward=False)

    def _firing(self, start: float, *, forward: bool) -> float | None:
        from croniter import CroniterError, croniter  # here, not at the top: see _cron

        zone = _zone(self.timezone)
        try:
            it = croniter(self.expr, datetime.fromtimestamp(start, zone), second_at_beginning=_has_seconds(self.expr))
            step = it.get_next if forward else it.get_prev
            while True:
                moment: datetime = step(datetime)
                if not (_pins_hours(self.expr) and _is_repeat(moment, zone)):
                    return moment.timestamp()
        except (CroniterError, ValueError, OverflowError):  # no firing in croniter's search range (or past year 9999)
            return None


@dataclass(frozen=True, slots=True)
class OneShot:
    """Runs once, at `at`."""

    at: float
    text: str

    def next_due(self, after: float, key: str = "") -> float | None:
        """`at` while it lies ahead, then never."""
        return self.at if self.at > after else None

    def previous_due(self, before: float) -> float | None:
        """`at` once it has come, else None."""
        return self.at if self.at <= before else None


Schedule = Interval | Cron | OneShot


def parse_schedule(text: str, timezone: str = "UTC") -> Schedule:
    """Parse a schedule string; raise ScheduleError naming the bad token and the accepted forms."""
    words = " ".join(text.split())
    lower = words.lower()
    if not lower:
        raise ScheduleError(f"empty schedule; {ACCEPTED_FORMS}")
    if lower.startswith("@"):
        if lower not in _MACROS:
            raise ScheduleError(f"unknown macro {_q(words)}; use one of {', '.join(_MACROS)}")
        return _cron(_MACROS[lower], timezone, text)
    if lower.startswith("at "):
        return _one_shot(words[3:].strip(), timezone, text)
    fields = words.split(" ")
    if len(fields) in (5, 6, 7) and all(_CRON_FIELD.fullmatch(f) for f in fields) and not lower.startswith("every"):
        if len(fields) == 7:
            raise ScheduleError(f"{_q(text)} has 7 fields; cron takes 5, or 6 with seconds first")
        return _cron(words, timezone, text)
    body = lower.removeprefix("every ").strip() if lower.startswith("every ") else lower
    seconds = _interval_seconds(body)
    if seconds is not None:
        if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
            raise ScheduleError(f"interval {_q(text)} is out of range; it must be between 1s and 24h")
        return Interval(seconds, text)
    number_unit = _EVERY_N_UNIT.fullmatch(body)
    if number_unit is not None and number_unit.group(1):
        raise ScheduleError(
            f"cannot read {_q(text)} at {_q(number_unit.group(2))}: not a unit; use ms, s, m, h, d or seconds, minutes, hours, days"
        )
    if lower.startswith("every "):
        try:
            return _cron(phrase_to_cron(lower), timezone, text)
        except PhraseError as exc:
            raise ScheduleError(f"cannot read {_q(text)} at {_q(exc.token)}: {exc}; {ACCEPTED_FORMS}") from None
    bad = next((w for w in fields if not _CRON_FIELD.fullmatch(w)), fields[-1])
    raise ScheduleError(f"cannot read {_q(text)} at {_q(bad)}; {ACCEPTED_FORMS}")


def _q(text: str) -> str:
    """text quoted for a message, cut to a readable length."""
    return repr(text if len(text) <= 60 else text[:57] + "...")


def missed_due(schedule: Schedule, last_run: float | None, last_seen: float | None, now: float) -> float | None:
    """The due time to catch up at start-up under `missed: run_once`, if one was missed.

    A cron/calendar check missed a run when a due time fell between its last run (or, for a
    check with no run yet, the last moment the agent was seen) and now. A one-shot missed its
    run when its time has passed and it never ran. Intervals never catch up: they resume.
    """
    if isinstance(schedule, OneShot):
        ran = last_run is not None and last_run >= schedule.at
        return schedule.at if schedule.at <= now and not ran else None
    if isinstance(schedule, Cron):
        since = last_run if last_run is not None else last_seen
        if since is None:
            return None
        latest = schedule.previous_due(now)
        return latest if latest is not None and latest > since else None
    return None


def _cron(expr: str, timezone: str, text: str) -> Cron:
    # croniter (and dateutil) imported by the first cron schedule only: a probe worker or an agent whose checks
    # are all intervals never loads them (docs/performance.md, "Memory at 100,000 checks: origins, last results, lazy imports").
    from croniter import CroniterError, croniter

    try:
        croniter(expr, second_at_beginning=_has_seconds(expr))
    except (CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"invalid cron {_q(text)}: {_cron_reason(expr, exc)}") from None
    cron = Cron(expr, timezone, text)
    # Any date pattern repeats within 400 years and croniter looks decades ahead: none found, none exists.
    if cron.next_due(_REFERENCE) is None:
        raise ScheduleError(f"cron {_q(text)} never fires: no date matches its day and month fields (e.g. day 30 of February)")
    return cron


_REFERENCE = 946_684_800.0  # 2000-01-01T00:00:00Z: a fixed start, so that validity does not depend on the clock


def _cron_reason(expr: str, exc: Exception) -> str:
    from croniter import CroniterError, croniter  # here, not at the top: see _cron

    names = ("second", "minute", "hour", "day of month", "month", "day of week")
    fields = expr.split()
    labels = names if len(fields) == 6 else names[1:]
    for i, label in enumerate(labels[: len(fields)]):
        alone = ["*"] * len(fields)
        alone[i] = fields[i]  # this field with every other one a wildcard
        try:
            croniter(" ".join(alone), second_at_beginning=len(fields) == 6)
        except (CroniterError, ValueError, KeyError):
            return f"bad {label} field {_q(fields[i])}"
    return str(exc)


def _one_shot(stamp: str, timezone: str, text: str) -> OneShot:
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        raise ScheduleError(f"cannot read the time in {_q(text)} at {_q(stamp)}; write e.g. 'at 2026-12-01T09:00:00Z'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(timezone))
    try:
        at = moment.timestamp()
        datetime.fromtimestamp(at, UTC)  # the time must be one results can be stored and shown at
    except (OverflowError, ValueError, OSError):
        raise ScheduleError(f"the time in {_q(text)} is out of range (year 1 .. 9999 in UTC)") from None
    return OneShot(at, text)


def _interval_seconds(body: str) -> float | None:
    try:
        return parse_duration(body)
    except ValueError:
        pass
    m = _EVERY_N_UNIT.fullmatch(body)
    if m is None or m.group(2) not in _UNIT_WORDS:
        return None
    return float(m.group(1) or 1) * _UNIT_WORDS[m.group(2)]


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone called name; ScheduleError saying what to write when there is none."""
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file name
        raise ScheduleError(f"unknown time zone {name[:60]!r}; use an IANA name such as Europe/Berlin or UTC") from None


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _has_seconds(expr: str) -> bool:
    return len(expr.split()) == 6


def _pins_hours(expr: str) -> bool:
    """Whether the expression fires at fixed hours (then a repeated wall time must not fire twice)."""
    fields = expr.split()
    return not fields[2 if len(fields) == 6 else 1].startswith("*")


def _is_repeat(moment: datetime, zone: ZoneInfo) -> bool:
    """Whether this instant's wall time already happened earlier the same night (DST fall-back)."""
    wall = moment.replace(tzinfo=None)
    return wall.replace(tzinfo=zone, fold=0).timestamp() < moment.timestamp()
