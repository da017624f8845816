"""The catalog's ``schedule``: EventBridge expressions verbatim, 5-field cron, Airflow presets or none.

Jobs migrate from EventBridge rules, so an expression copied from a rule must fire at the instants the rule
fired. What standard cron can say exactly becomes Airflow's own ``CronTriggerTimetable``; what it cannot
(``L``, ``W``, ``#``, a year) becomes ``EventBridgeCronTimetable``, which the ``ecsjobs`` plugin registers
so that the scheduler can deserialize DAGs using it.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from itertools import groupby
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pendulum
from airflow.exceptions import AirflowTimetableInvalid
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable
from cron_descriptor import CasingTypeEnum, ExpressionDescriptor, FormatException

from ecsjobs.errors import EcsJobsError

PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


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


class _Cron(NamedTuple):
    """A parsed EventBridge cron expression."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: DayRule
    months: tuple[int, ...]
    years: tuple[int, ...]
    standard: str | None
    """The same schedule as a 5-field cron expression, when there is one."""


def _parse_cron(expression: str) -> _Cron:
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
    if dow_text == "?":
        (days, dom), dow = _month_days(dom_text), "*"
    else:
        (days, dow), dom = _weekdays(dow_text), "*"
    standard = None
    if dom is not None and dow is not None and years == _all(YEAR):
        cron_fields = (
            _cron_list(minutes, MINUTES),
            _cron_list(hours, HOURS),
            dom,
            _cron_list(months, MONTH),
            dow,
        )
        standard = " ".join(cron_fields)
    return _Cron(minutes, hours, days, months, years, standard)


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
    return partial(_listed_days, days), _cron_list(days, DAY_OF_MONTH)


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
    return partial(_listed_weekdays, weekdays), _cron_list(cron_weekdays, _CRON_DAY_OF_WEEK)


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


def _all(field: _Field) -> tuple[int, ...]:
    return tuple(range(field.low, field.high + 1))


def _cron_list(values: tuple[int, ...], field: _Field) -> str:
    """Standard cron text for a set of values: ``*``, ``*/15``, ``5-59/10`` or runs like ``1-5,7``."""
    if values == _all(field):
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


class EventBridgeCronTimetable(Timetable):
    """
    Timetable that triggers DAG runs when an EventBridge ``cron(...)`` expression fires.

    For what standard cron cannot say (``L``, ``W``, ``#``, the year field); anything else maps to
    ``CronTriggerTimetable``, and this class behaves the same way so a schedule does not change when an
    ``L`` is added: a run's data interval is its fire instant, and without catchup only the latest missed
    fire runs. Local times follow Airflow's cron rules: a time skipped by a DST change fires shifted by the
    gap (02:30 becomes 03:30), a repeated time fires once at its second occurrence, and schedules firing
    every hour follow the clock through both changes (EventBridge Scheduler instead drops skipped times).

    :param expression: the EventBridge expression as written, e.g. ``cron(15 10 ? * 6L *)``
    :param timezone: IANA time zone the expression is evaluated in
    """

    def __init__(self, expression: str, *, timezone: str = "UTC") -> None:
        self._expression = expression
        self._timezone = timezone
        self._zone = _zone(timezone)
        self._cron = _parse_cron(expression)
        self._every_hour = self._cron.hours == _all(HOURS)
        self.description = _describe(expression, self._cron)

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(data["expression"], timezone=data["timezone"])

    def serialize(self) -> dict[str, Any]:
        return {"expression": self._expression, "timezone": self._timezone}

    @property
    def summary(self) -> str:
        return self._expression

    def infer_manual_data_interval(self, *, run_after: pendulum.DateTime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        now = datetime.now(UTC)
        if last_automated_data_interval is not None:
            start = self._next(last_automated_data_interval.end)
        elif restriction.earliest is not None:
            start = self._next(restriction.earliest, inclusive=True)
        else:
            start = self._next(now)
        if start is not None and not restriction.catchup:
            candidates = [start, self._prev(now)]
            if restriction.earliest is not None:
                candidates.append(self._next(restriction.earliest, inclusive=True))
            start = max(candidate for candidate in candidates if candidate is not None)
        if start is None or (restriction.latest is not None and restriction.latest < start):
            return None
        return DagRunInfo.exact(pendulum.instance(start))

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire strictly after ``moment``: the expression evaluated alone, without a DAG."""
        return self._next(moment)

    def local_times(self, start: date) -> Iterator[datetime]:
        """The expression's wall-clock times (naive, in its time zone) from ``start`` on, before any DST rule:
        for a caller that resolves skipped and repeated times another way (EventBridge Scheduler's)."""
        for day in self._days(start, reverse=False):
            midnight = datetime.combine(day, time())
            for hour in self._cron.hours:
                for minute in self._cron.minutes:
                    yield midnight + timedelta(hours=hour, minutes=minute)

    def _next(self, after: datetime, *, inclusive: bool = False) -> datetime | None:
        """The first fire after ``after`` (or at it, if ``inclusive``); None when the years run out."""
        after = after.astimezone(UTC)
        first_day = after.astimezone(self._zone).date() - timedelta(days=1)  # a DST gap may push fires a day
        for day in self._days(first_day, reverse=False):
            fires = self._fires_on(day)
            index = (bisect_left if inclusive else bisect_right)(fires, after)
            if index < len(fires):
                return fires[index]
        return None

    def _prev(self, before: datetime) -> datetime | None:
        """The last fire at or before ``before``; None when there is none."""
        before = before.astimezone(UTC)
        last_day = before.astimezone(self._zone).date() + timedelta(days=1)
        for day in self._days(last_day, reverse=True):
            fires = self._fires_on(day)
            if index := bisect_right(fires, before):
                return fires[index - 1]
        return None

    def _days(self, start: date, *, reverse: bool) -> Iterator[date]:
        """Local dates the expression fires on, from ``start`` on (or back): years, months, then days."""
        sign = -1 if reverse else 1
        order: Callable[[Any], Any] = reversed if reverse else iter
        for year in order(self._cron.years):
            if (year - start.year) * sign < 0:
                continue
            for month in order(self._cron.months):
                if ((year - start.year) * 12 + month - start.month) * sign < 0:
                    continue
                for day in order(self._cron.days(year, month)):
                    if (date(year, month, day) - start).days * sign >= 0:
                        yield date(year, month, day)

    def _fires_on(self, day: date) -> list[datetime]:
        """The UTC instants the expression fires at on one local date, sorted."""
        midnight = datetime.combine(day, time())
        times = [
            midnight + timedelta(hours=h, minutes=m) for h in self._cron.hours for m in self._cron.minutes
        ]
        offset = midnight.replace(tzinfo=self._zone).utcoffset()
        if offset == (midnight + timedelta(days=1)).replace(tzinfo=self._zone).utcoffset():
            return [(local - offset).replace(tzinfo=UTC) for local in times]
        return sorted({fire for local in times for fire in self._resolve(local)})

    def _resolve(self, local: datetime) -> set[datetime]:
        """UTC instants of a local time on a DST-change day, picked as ``CronTriggerTimetable`` does."""
        instants = {local.replace(tzinfo=self._zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
        if self._every_hour:  # follow the clock: both of a repeated time, none of a skipped one
            return {
                instant
                for instant in instants
                if instant.astimezone(self._zone).replace(tzinfo=None) == local
            }
        return {max(instants)}  # the second of a repeated time; a skipped time shifted by the gap


def _describe(expression: str, cron: _Cron) -> str:
    """The description Airflow's UI gives cron schedules, for an EventBridge cron expression."""
    _, _, dom, _, dow, _ = expression[len("cron(") : -1].split()
    fields = (
        "0",  # cron_descriptor's 7-field form starts with seconds
        _cron_list(cron.minutes, MINUTES),  # values rather than text: it misreads increments like 1970/5
        _cron_list(cron.hours, HOURS),
        dom,
        _cron_list(cron.months, MONTH),
        "7" if dow == "L" else dow,  # it lacks the lone L (Saturday)
        _cron_list(cron.years, YEAR),
    )
    try:
        return ExpressionDescriptor(
            " ".join(fields),
            casing_type=CasingTypeEnum.Sentence,
            use_24hour_time_format=True,
            day_of_week_start_index_zero=False,
        ).get_description()
    except FormatException:
        return expression


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {timezone!r}; expected an IANA name like 'UTC' or 'Europe/Berlin'"
        ) from None


def _rate(expression: str) -> tuple[int, str]:
    """The value and (singular) unit of ``rate(value unit)``, checked as EventBridge checks them."""
    words = expression[len("rate(") : -1].split() if expression.endswith(")") else []
    if len(words) != 2:
        raise ScheduleError(f"{expression!r} is not rate(value unit); expected e.g. rate(5 minutes)")
    value, unit = words
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        raise ScheduleError(
            f"rate value {value!r} is not a positive whole number; expected e.g. rate(5 minutes)"
        )
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        raise ScheduleError(f"rate unit {unit!r} is unknown; expected minute(s), hour(s) or day(s)")
    expected = singular if int(value) == 1 else f"{singular}s"
    if unit != expected:
        raise ScheduleError(f"rate({value} {unit}) needs the unit {expected!r} for a value of {value}")
    return int(value), singular


def _standard(expression: str, timezone: str) -> CronTriggerTimetable:
    """A 5-field cron expression or preset, checked by Airflow itself."""
    if expression.startswith("@") and expression not in PRESETS:
        raise ScheduleError(
            f"unknown preset {expression!r}; expected one of {', '.join(PRESETS)} "
            "(for a one-off run use none and trigger the job)"
        )
    fields = expression.split()
    if not expression.startswith("@") and len(fields) != 5:
        hint = "; an EventBridge expression needs its cron(...) wrapper" if len(fields) == 6 else ""
        raise ScheduleError(
            f"cron has 5 fields, got {len(fields)}{hint}; expected 'minute hour day-of-month month "
            "day-of-week' like '0 2 * * *', cron(...), rate(...), a preset or none"
        )
    timetable = CronTriggerTimetable(expression, timezone=timezone)
    try:
        timetable.validate()
    except AirflowTimetableInvalid as error:
        raise ScheduleError(f"invalid cron expression: {error}") from None
    return timetable


def parse_schedule(
    expression: str | None, timezone: str = "UTC", start_date: datetime | None = None
) -> Timetable | None:
    """
    What to give ``DAG(schedule=...)`` for a catalog ``schedule``: a timetable, or None (manual only).

    Presets become timetables too, so the time zone and trigger semantics never depend on the DAG's
    ``start_date`` or on ``[scheduler] create_cron_data_intervals``. ``rate(...)`` becomes a
    ``DeltaTriggerTimetable``: where EventBridge counts from the rule's creation, Airflow counts from the
    job's ``start_date`` (with catchup) or from when the scheduler first sees the job, then from each run.
    Given ``start_date`` (naive means UTC), a schedule that never fires from then on is an error.
    """
    zone = _zone(timezone)
    text = (expression or "").strip()
    if expression is None or text.lower() in ("none", "null"):
        return None
    if not text:
        raise ScheduleError("the schedule is empty; expected cron(...), rate(...), a cron, a preset or none")
    schedule: Timetable
    if text.startswith("rate("):
        value, unit = _rate(text)
        schedule = DeltaTriggerTimetable(value * _RATE_UNITS[unit])
    elif text.startswith("cron("):
        standard = _parse_cron(text).standard
        if standard is None:
            schedule = EventBridgeCronTimetable(text, timezone=timezone)
        else:
            schedule = CronTriggerTimetable(standard, timezone=timezone)
    else:
        schedule = _standard(text, timezone)
    if start_date is not None and _next_run(schedule, earliest=_aware(start_date)) is None:
        start = _aware(start_date).astimezone(zone)
        raise ScheduleError(
            f"{text!r} never fires on or after the start date {start:%Y-%m-%d %H:%M} ({timezone})"
        )
    return schedule


def rate_period(expression: str) -> timedelta:
    """How often ``rate(N unit)`` fires."""
    value, unit = _rate(expression.strip())
    return value * _RATE_UNITS[unit]


def describe_schedule(expression: str | None, timezone: str = "UTC") -> str:
    """The schedule in words, for people reading a job list."""
    schedule = parse_schedule(expression, timezone)
    if schedule is None:
        return "never: manual and backfill runs only"
    if isinstance(schedule, DeltaTriggerTimetable):
        value, unit = _rate((expression or "").strip())
        return f"every {unit}" if value == 1 else f"every {value} {unit}s"
    text = schedule.description or schedule.summary
    return f"{text[0].lower()}{text[1:]} ({timezone})"


def next_fire_times(expression: str | None, timezone: str, after: datetime, n: int) -> list[datetime]:
    """
    The next ``n`` fire instants strictly after ``after`` (naive means UTC), in ``timezone``.

    Asked of the timetable the way the scheduler asks after a run, so these are the instants Airflow uses.
    A rate counts from ``after``, as EventBridge counts from the rule's creation.
    """
    schedule = parse_schedule(expression, timezone)
    if schedule is None:
        return []
    zone, fires = ZoneInfo(timezone), []
    last: pendulum.DateTime | None = _aware(after)
    while len(fires) < n and (last := _next_run(schedule, last=last)) is not None:
        fires.append(datetime.fromtimestamp(last.timestamp(), zone))
    return fires


def _next_run(
    schedule: Timetable, *, last: pendulum.DateTime | None = None, earliest: pendulum.DateTime | None = None
) -> pendulum.DateTime | None:
    """When the scheduler runs a catching-up job next: after a run at ``last``, or first from ``earliest``."""
    interval = DataInterval.exact(last) if last else None
    restriction = TimeRestriction(earliest=earliest, latest=None, catchup=True)
    try:
        info = schedule.next_dagrun_info(last_automated_data_interval=interval, restriction=restriction)
    except ValueError:  # croniter gives up on dates that never come, like 30 February
        return None
    return info.run_after if info else None


def _aware(moment: datetime) -> pendulum.DateTime:
    return pendulum.instance(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
