"""EventBridge ``cron(Minutes Hours Day-of-month Month Day-of-week Year)`` read as EventBridge reads it:
the fields, their ranges and names, ``?``, ``L``, ``W`` and ``#``, and the days of a month each one picks
(EventBridge User Guide, "Cron expressions")."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date
from functools import partial
from itertools import groupby
from typing import NamedTuple

from ecsjobs.errors import EcsJobsError


class ScheduleError(EcsJobsError, ValueError):
    """A schedule that cannot be used; the message says what is wrong and what is expected."""


class _Field(NamedTuple):
    """One field of an EventBridge cron expression: its range, value names and accepted syntax."""

    name: str
    low: int
    high: int
    syntax: str
    names: tuple[str, ...] = ()

    def error(self, problem: str) -> ScheduleError:
        return ScheduleError(f"{self.name}: {problem}; expected {self.syntax}")


_LISTS = "combined with , - * /"
MINUTES = _Field("minutes", 0, 59, f"0-59 {_LISTS}")
HOURS = _Field("hours", 0, 23, f"0-23 {_LISTS}")
DAY_OF_MONTH = _Field(
    "day-of-month", 1, 31, f"?, or 1-31 {_LISTS}, or one of L, LW, nW (15W = weekday nearest the 15th)"
)
MONTH = _Field(
    "month", 1, 12, f"1-12 or JAN-DEC {_LISTS}", tuple(name.upper() for name in calendar.month_abbr[1:])
)
DAY_OF_WEEK = _Field(
    "day-of-week",
    1,
    7,
    "?, or 1-7 or SUN-SAT (1 = Sunday) combined with , - *, or one of L (Saturday), "
    "nL (6L = last Friday of the month), n#k (3#2 = second Tuesday of the month)",
    ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"),
)
YEAR = _Field("year", 1970, 2199, f"1970-2199 {_LISTS}")
_CRON_DAY_OF_WEEK = _Field("cron day-of-week", 0, 6, "0-6")

DayRule = Callable[[int, int], list[int]]
"""The days of a (year, month) on which a schedule fires."""


class Cron(NamedTuple):
    """A parsed EventBridge cron expression."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: DayRule
    months: tuple[int, ...]
    years: tuple[int, ...]
    standard: str | None
    """The same schedule as a 5-field cron expression, when there is one."""


def parse_cron(expression: str) -> Cron:
    if not expression.endswith(")"):
        raise ScheduleError(f"{expression!r} lacks its closing ')'; expected cron(fields)")
    fields = expression[len("cron(") : -1].split()
    if len(fields) != 6:
        hint = " (EventBridge has no seconds field)" if len(fields) == 7 else ""
        raise ScheduleError(
            f"EventBridge cron has 6 fields, got {len(fields)}{hint}; expected "
            "cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 2 * * ? *)"
        )
    minute_text, hour_text, dom_text, month_text, dow_text, year_text = fields
    if (dom_text == "?") == (dow_text == "?"):
        raise ScheduleError(
            f"day-of-month {dom_text!r} and day-of-week {dow_text!r}: exactly one of them must be '?', "
            "e.g. cron(0 2 * * ? *) or cron(0 2 ? * MON *)"
        )
    minutes, hours = _values(minute_text, MINUTES), _values(hour_text, HOURS)
    months, years = _values(month_text, MONTH), _values(year_text, YEAR)
    dom: str | None
    dow: str | None
    if dow_text == "?":
        (days, dom), dow = _month_days(dom_text), "*"
    else:
        (days, dow), dom = _weekdays(dow_text), "*"
    standard = None
    if dom is not None and dow is not None and years == all_values(YEAR):
        cron_fields = (
            cron_list(minutes, MINUTES),
            cron_list(hours, HOURS),
            dom,
            cron_list(months, MONTH),
            dow,
        )
        standard = " ".join(cron_fields)
    return Cron(minutes, hours, days, months, years, standard)


def _month_days(text: str) -> tuple[DayRule, str | None]:
    """The day-of-month rule, and the standard cron field saying the same (None for L and W)."""
    if text == "L":
        return _last_day, None
    if text == "LW":
        return _last_weekday, None
    if match := re.fullmatch(r"([0-9]+)W", text):
        return partial(_nearest_weekday, _value(match[1], DAY_OF_MONTH)), None
    if re.search(r"[LW#]", text):
        raise DAY_OF_MONTH.error(f"{text!r} is not allowed: L, LW and nW stand alone, '#' is for day-of-week")
    days = _values(text, DAY_OF_MONTH)
    return partial(_listed_days, days), cron_list(days, DAY_OF_MONTH)


def _weekdays(text: str) -> tuple[DayRule, str | None]:
    """The day-of-week rule, and the standard cron field saying the same (None for nL and #)."""
    if text == "L":  # the last day of the week
        text = "7"
    if match := re.fullmatch(r"(\w+)L", text):
        return partial(_last_of_month, _value(match[1], DAY_OF_WEEK)), None
    if match := re.fullmatch(r"(\w+)#([0-9]+)", text):
        nth = int(match[2])
        if not 1 <= nth <= 5:
            raise DAY_OF_WEEK.error(f"{text!r} asks for occurrence {nth} of a weekday, which must be 1-5")
        return partial(_nth_of_month, _value(match[1], DAY_OF_WEEK), nth), None
    if "#" in text or re.search(r"L(,|$)", text):
        raise DAY_OF_WEEK.error(f"{text!r} is not allowed: L, nL and n#k stand alone, not in lists")
    if "/" in text:
        raise DAY_OF_WEEK.error(f"{text!r} is not allowed: EventBridge has no increments in day-of-week")
    weekdays = _values(text, DAY_OF_WEEK)
    cron_weekdays = tuple(weekday - 1 for weekday in weekdays)  # cron counts from Sunday = 0
    return partial(_listed_weekdays, weekdays), cron_list(cron_weekdays, _CRON_DAY_OF_WEEK)


def _values(text: str, field: _Field) -> tuple[int, ...]:
    """The sorted values of a field written with ``,`` ``-`` ``*`` ``/``."""
    if "?" in text:
        raise field.error("'?' is only allowed in day-of-month or day-of-week")
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step = item.partition("/")
        if base == "*":
            first, last = field.low, field.high
        elif "-" in base:
            first, last = (_value(bound, field) for bound in base.split("-", 1))
            if first > last:
                raise field.error(f"range {base!r} runs backwards; write it as a list of two ranges")
        else:
            first = _value(base, field)
            last = field.high if slash else first
        increment = int(step) if step.isascii() and step.isdigit() else 0
        if slash and not 1 <= increment <= field.high - field.low:
            raise field.error(f"increment {step!r} in {item!r} must be 1-{field.high - field.low}")
        values.update(range(first, last + 1, increment or 1))
    return tuple(sorted(values))


def _value(text: str, field: _Field) -> int:
    if text.upper() in field.names:
        return field.low + field.names.index(text.upper())
    if not (text.isascii() and text.isdigit()):
        raise field.error(f"{text!r} is not a number" + (" or name" if field.names else ""))
    if not field.low <= int(text) <= field.high:
        raise field.error(f"{text} is out of range")
    return int(text)


def all_values(field: _Field) -> tuple[int, ...]:
    return tuple(range(field.low, field.high + 1))


def cron_list(values: tuple[int, ...], field: _Field) -> str:
    """Standard cron text for a set of values: ``*``, ``*/15``, ``5-59/10`` or runs like ``1-5,7``."""
    if values == all_values(field):
        return "*"
    step = values[1] - values[0] if len(values) > 2 else 0
    if step > 1 and values == tuple(range(values[0], field.high + 1, step)):
        return f"*/{step}" if values[0] == field.low else f"{values[0]}-{field.high}/{step}"
    runs = [
        [value for _, value in run] for _, run in groupby(enumerate(values), lambda pair: pair[1] - pair[0])
    ]
    return ",".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def _weekday(year: int, month: int, day: int) -> int:
    """EventBridge weekday number: 1 = Sunday ... 7 = Saturday."""
    return date(year, month, day).isoweekday() % 7 + 1


def _month_length(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _listed_days(days: tuple[int, ...], year: int, month: int) -> list[int]:
    return [day for day in days if day <= _month_length(year, month)]


def _listed_weekdays(weekdays: tuple[int, ...], year: int, month: int) -> list[int]:
    days = range(1, _month_length(year, month) + 1)
    return [day for day in days if _weekday(year, month, day) in weekdays]


def _last_day(year: int, month: int) -> list[int]:
    return [_month_length(year, month)]


def _last_weekday(year: int, month: int) -> list[int]:
    return _nearest_weekday(_month_length(year, month), year, month)


def _nearest_weekday(day: int, year: int, month: int) -> list[int]:
    """``nW``: the weekday nearest ``day`` without leaving the month; no day when the month is too short."""
    last = _month_length(year, month)
    if day > last:
        return []
    weekday = _weekday(year, month, day)
    if weekday == 7:  # Saturday: the Friday before, unless that is in the previous month
        return [day - 1 if day > 1 else day + 2]
    if weekday == 1:  # Sunday: the Monday after, unless that is in the next month
        return [day + 1 if day < last else day - 2]
    return [day]


def _last_of_month(weekday: int, year: int, month: int) -> list[int]:
    last = _month_length(year, month)
    return [last - (_weekday(year, month, last) - weekday) % 7]


def _nth_of_month(weekday: int, nth: int, year: int, month: int) -> list[int]:
    day = 1 + (weekday - _weekday(year, month, 1)) % 7 + 7 * (nth - 1)
    return [day] if day <= _month_length(year, month) else []
