"""Pure: calendar phrases ("every monday at 2pm") -> 5-field cron expressions."""

from __future__ import annotations

import re

DAYS = {
    "monday": "MON", "mon": "MON", "tuesday": "TUE", "tue": "TUE", "tues": "TUE",
    "wednesday": "WED", "wed": "WED", "thursday": "THU", "thu": "THU", "thurs": "THU",
    "friday": "FRI", "fri": "FRI", "saturday": "SAT", "sat": "SAT", "sunday": "SUN", "sun": "SUN",
}  # fmt: skip
_DAY_NUMBER = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5, "5th": 5}
_TIME = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*(am|pm)?")
_DAY_OF_MONTH = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?")

PHRASES = (
    "every day at 9am",
    "every weekday at 08:00",
    "every weekend at 10am",
    "every monday and thursday at 14:30",
    "every first friday of month at 9am",
    "every last day of month at 23:00",
    "every month on the 15th at noon",
    "every hour at :15",
)


class PhraseError(ValueError):
    """A phrase that is not understood; `token` is the word where reading stopped."""

    def __init__(self, message: str, token: str) -> None:
        super().__init__(message)
        self.token = token


def phrase_to_cron(phrase: str) -> str:
    """Cron (seconds first when a time has seconds) for a normalised, lower-case 'every ...' phrase."""
    words = phrase.replace(",", " , ").split()
    if not words or words[0] != "every":
        raise PhraseError("a calendar phrase starts with 'every'", words[0] if words else "")
    rest, time_words = _split_at(words[1:])
    second, minute, hour = _time(time_words) if time_words is not None else (0, 0, 0)
    if rest == ["hour"]:
        return _cron(second, minute, "*", "*", "*", time_words, hourly=True)
    dom, dow = _days(rest)
    return _cron(second, minute, str(hour), dom, dow, time_words)


def _split_at(words: list[str]) -> tuple[list[str], list[str] | None]:
    if "at" not in words:
        return words, None
    i = words.index("at")
    if i + 1 >= len(words):
        raise PhraseError("'at' needs a time such as 9am, 14:30 or noon", "at")
    return words[:i], words[i + 1 :]


def _cron(second: int, minute: int, hour: str, dom: str, dow: str, time_words: list[str] | None, hourly: bool = False) -> str:
    if hourly and (time_words is None or not time_words[0].startswith(":")):
        raise PhraseError("write 'every hour at :MM', e.g. every hour at :15", time_words[0] if time_words else "hour")
    fields = f"{minute} {hour} {dom} * {dow}"
    return f"{second} {fields}" if second else fields


def _days(words: list[str]) -> tuple[str, str]:
    """(day-of-month, day-of-week) cron fields for the words between 'every' and 'at'."""
    if not words:
        raise PhraseError("say which days, e.g. 'every day at 9am'", "every")
    if words == ["day"]:
        return "*", "*"
    if words == ["weekday"]:
        return "*", "MON-FRI"
    if words in (["weekend"], ["weekend", "day"]):
        return "*", "SAT,SUN"
    if words[0] in _ORDINALS or words[0] == "last":
        return _nth_of_month(words)
    if words[0] == "month":
        return _month_day(words[1:]), "*"
    days: list[str] = []
    for word in words:
        if word in ("and", ","):
            continue
        day = DAYS.get(word.removesuffix("s")) or DAYS.get(word)
        if day is None:
            raise PhraseError(f"{word[:40]!r} is not a day; write monday..sunday, day, weekday or weekend", word)
        days.append(day)
    return "*", ",".join(dict.fromkeys(days))


def _nth_of_month(words: list[str]) -> tuple[str, str]:
    ordinal, *rest = words
    if rest[-2:] == ["the", "month"]:
        rest = [*rest[:-2], "month"]
    if len(rest) != 3 or rest[1:] != ["of", "month"]:
        bad = next((w for w in rest if w not in DAYS and w not in ("day", "of", "month")), rest[-1] if rest else ordinal)
        raise PhraseError("write e.g. 'every first friday of month' or 'every last day of month'", bad)
    what = rest[0]
    if ordinal == "last":
        if what == "day":
            return "L", "*"
        if what in DAYS:
            return "*", f"L{_DAY_NUMBER[DAYS[what]]}"
    elif what in DAYS:
        return "*", f"{DAYS[what]}#{_ORDINALS[ordinal]}"
    raise PhraseError(f"{what[:40]!r} is not a day; write monday..sunday (or 'last day')", what)


def _month_day(words: list[str]) -> str:
    if words[:2] == ["on", "the"]:
        words = words[2:]
    elif words[:1] == ["on"]:
        words = words[1:]
    m = _DAY_OF_MONTH.fullmatch(words[0]) if len(words) == 1 else None
    if m is None or not 1 <= int(m.group(1)) <= 31:
        raise PhraseError("write e.g. 'every month on the 15th'", words[0] if words else "month")
    return m.group(1)


def _time(words: list[str]) -> tuple[int, int, int]:
    """(second, minute, hour) of '9am', '9:30pm', '21:15', '08:00:30', 'noon', 'midnight', ':15'."""
    text = "".join(words)
    if text == "noon":
        return 0, 0, 12
    if text == "midnight":
        return 0, 0, 0
    if text.startswith(":") and text[1:].isdigit() and int(text[1:]) < 60:
        return 0, int(text[1:]), 0
    m = _TIME.fullmatch(text)
    if m is None:
        raise PhraseError("write a time such as 9am, 9:30pm, 21:15, noon or midnight", words[0])
    hour, minute, second = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    if m.group(4):
        if not 1 <= hour <= 12:
            raise PhraseError(f"{text[:40]!r}: with am/pm the hour is 1..12", words[0])
        hour = hour % 12 + (12 if m.group(4) == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise PhraseError(f"{text[:40]!r} is not a time of day", words[0])
    return second, minute, hour
