"""The catalog's ``schedule``: EventBridge expressions verbatim, 5-field cron, Airflow presets or none.

Jobs migrate from EventBridge rules, so an expression copied from a rule must fire at the instants the rule
fired. What standard cron can say exactly becomes Airflow's own ``CronTriggerTimetable``; what it cannot
(``L``, ``W``, ``#``, a year) becomes ``EventBridgeCronTimetable``, which the ``ecsjobs`` plugin registers
so that the scheduler can deserialize DAGs using it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pendulum
from airflow.exceptions import AirflowTimetableInvalid
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable
from cron_descriptor import CasingTypeEnum, ExpressionDescriptor, FormatException

from ecsjobs.catalog.cron import (
    HOURS,
    MINUTES,
    MONTH,
    YEAR,
    Cron,
    ScheduleError,
    all_values,
    cron_list,
    parse_cron,
)

PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


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
        self._cron = parse_cron(expression)
        self._every_hour = self._cron.hours == all_values(HOURS)
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
        if (
            offset is not None
            and offset == (midnight + timedelta(days=1)).replace(tzinfo=self._zone).utcoffset()
        ):
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


def _describe(expression: str, cron: Cron) -> str:
    """The description Airflow's UI gives cron schedules, for an EventBridge cron expression."""
    _, _, dom, _, dow, _ = expression[len("cron(") : -1].split()
    fields = (
        "0",  # cron_descriptor's 7-field form starts with seconds
        cron_list(cron.minutes, MINUTES),  # values rather than text: it misreads increments like 1970/5
        cron_list(cron.hours, HOURS),
        dom,
        cron_list(cron.months, MONTH),
        "7" if dow == "L" else dow,  # it lacks the lone L (Saturday)
        cron_list(cron.years, YEAR),
    )
    try:
        return str(
            ExpressionDescriptor(
                " ".join(fields),
                casing_type=CasingTypeEnum.Sentence,
                use_24hour_time_format=True,
                day_of_week_start_index_zero=False,
            ).get_description()
        )
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
        standard = parse_cron(text).standard
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
    zone, fires = ZoneInfo(timezone), list[datetime]()
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
