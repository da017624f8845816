"""When a rule or schedule fires, from the source alone and as AWS documents it: the other side of
``import --check``, and the reference the importer's schedule notes are measured against.

- A rule's ``cron(...)`` is read in UTC. Its ``rate(...)`` "starts when you create the scheduled event rule",
  which ``describe-rule`` does not return, so its instants are unknown
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html).
- A schedule's ``cron(...)`` is read in its time zone. When daylight saving time skips a local time, that
  invocation is skipped; when it repeats one, the schedule runs once, and AWS does not say at which of the two
  instants (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#daylist-savings-time).
- A schedule's ``rate(...)`` first fires at its ``StartDate`` (at once on creation without one), then every
  period, a day being 24 hours whatever the time zone (same page, "Rate-based schedules").
- A schedule fires from its ``StartDate`` on and before its ``EndDate`` (``CreateSchedule``'s parameters:
  https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html).

Both run to the minute ("60 second precision"), so instants are compared to the minute.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ecsjobs.catalog.schedules import EventBridgeCronTimetable, next_fire_times, rate_period
from ecsjobs.importer.sources import Source

_TICK = timedelta(microseconds=1)
_SUNDAY_FIRST = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class Fire:
    """One invocation: its instant (UTC, to the minute) and, when the source might fire at another instant
    instead, why."""

    at: datetime
    doubt: str | None = None


class UnknownFires(Exception):  # noqa: N818 - a reason, not a failure
    """The source's instants cannot be known from what AWS returns; the message says why."""


def source_fires(source: Source, after: datetime, n: int) -> list[Fire]:
    """The source's next ``n`` invocations strictly after ``after``; :class:`UnknownFires` when the source
    does not say them."""
    expression = source.expression or ""
    lower = after if source.start is None else max(after, source.start - _TICK)
    if expression.startswith("at("):
        once = at_instant(expression, source.timezone or "UTC")
        return [Fire(once)] if once > lower else []
    if expression.startswith("rate("):
        return _rate_fires(source, lower, n)
    if source.kind == "rule":
        return _rule_fires(expression, lower, n)
    return _scheduler_cron_fires(source, lower, n)


def at_instant(expression: str, timezone: str) -> datetime:
    """The instant of a one-time ``at(yyyy-mm-ddThh:mm:ss)``, read in the schedule's time zone."""
    local = datetime.fromisoformat(expression.removeprefix("at(").removesuffix(")"))
    return local.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def rate_as_cron(expression: str, start: datetime) -> str | None:
    """A UTC ``cron(...)`` firing at the instants of a ``rate(...)`` counted from ``start``: there is one
    when the period divides an hour or a day, or is a day or a week."""
    minutes = int(rate_period(expression) / timedelta(minutes=1))
    first = start.astimezone(UTC)
    if minutes < 60 and 60 % minutes == 0:
        return "cron(* * * * ? *)" if minutes == 1 else f"cron({first.minute % minutes}/{minutes} * * * ? *)"
    hours, whole = divmod(minutes, 60)
    if not whole and hours < 24 and 24 % hours == 0:
        every = "*" if hours == 1 else f"{first.hour % hours}/{hours}"
        return f"cron({first.minute} {every} * * ? *)"
    if minutes == 24 * 60:
        return f"cron({first.minute} {first.hour} * * ? *)"
    if minutes == 7 * 24 * 60:
        return f"cron({first.minute} {first.hour} ? * {_SUNDAY_FIRST[first.isoweekday() % 7]} *)"
    return None


def dst_differences(source: Source, schedule: str, timezone: str, today: date, days: int = 731) -> list[str]:
    """Where a job with ``schedule`` in ``timezone`` fires otherwise than the schedule ``source`` on the
    daylight saving changes (of either time zone) in the next ``days`` days, a line per differing one."""
    zones = {ZoneInfo(timezone), ZoneInfo(source.timezone or "UTC")}
    zone, found = ZoneInfo(timezone), []
    for offset in range(days):
        day = today + timedelta(days=offset)
        if all(_offset(day, z) == _offset(day + timedelta(days=1), z) for z in zones):
            continue
        start = datetime.combine(day - timedelta(days=1), time(), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=2), time(), zone).astimezone(UTC)
        window = replace(source, end=min(source.end, end) if source.end else end)
        theirs = source_fires(window, start, 10_000)
        ours = [f for f in next_fire_times(schedule, timezone, start, len(theirs) + 4) if f < end]
        if difference := first_difference([minute(f) for f in ours], theirs, numbered=False):
            skipped = _skipped(source, day)
            found.append(f"{day}: {skipped}{difference}")
    return found


def first_difference(ours: list[datetime], theirs: list[Fire], numbered: bool = True) -> str | None:
    """The first fire where a job's instants (``ours``) and the source's differ, or are not known to agree."""

    def fire(index: int) -> str:
        return f"fire {index + 1}: " if numbered else ""

    for index, (mine, theirs_at) in enumerate(zip(ours, theirs, strict=False)):
        if theirs_at.doubt:
            return f"{fire(index)}{theirs_at.doubt}; the job fires at {_utc(mine)}"
        if mine != theirs_at.at:
            return f"{fire(index)}the job fires at {_utc(mine)}, the source at {_utc(theirs_at.at)}"
    if len(ours) > len(theirs):
        return f"{fire(len(theirs))}the job fires at {_utc(ours[len(theirs)])}, the source does not"
    if len(theirs) > len(ours):
        return f"{fire(len(ours))}the source fires at {_utc(theirs[len(ours)].at)}, the job does not"
    return None


def minute(moment: datetime) -> datetime:
    """The instant in UTC, to the minute."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _rule_fires(expression: str, lower: datetime, n: int) -> list[Fire]:
    timetable, fires = EventBridgeCronTimetable(expression), list[Fire]()
    moment = timetable.next_after(lower)
    while len(fires) < n and moment is not None:
        fires.append(Fire(minute(moment)))
        moment = timetable.next_after(moment)
    return fires


def _scheduler_cron_fires(source: Source, lower: datetime, n: int) -> list[Fire]:
    timezone = source.timezone or "UTC"
    zone, fires = ZoneInfo(timezone), []
    timetable = EventBridgeCronTimetable(source.expression or "", timezone=timezone)
    for local in timetable.local_times(lower.astimezone(zone).date() - timedelta(days=1)):
        first, second = (local.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
        if not _exists(local, zone):
            continue  # skipped by the change to daylight saving time: Scheduler skips it too
        if second <= lower:
            continue
        if source.end is not None and first >= source.end:
            break
        doubt = None
        if first != second:
            doubt = (
                f"{local:%Y-%m-%d %H:%M} happens twice in {timezone}; Scheduler invokes once, at "
                f"{_utc(first)} or {_utc(second)} (AWS does not say which)"
            )
        fires.append(Fire(minute(first), doubt))
        if len(fires) == n:
            break
    return sorted(fires, key=lambda fire: fire.at)


def unknown_phase(source: Source) -> str | None:
    """Why a ``rate(...)``'s instants cannot be known from the source; None when its StartDate says them."""
    if source.kind == "rule":
        return "a rule's rate() counts from the rule's creation, which EventBridge does not return"
    if source.start is None:
        created = f" ({source.created.isoformat()})" if source.created else ""
        return (
            f"a schedule's rate() without a StartDate counts from its creation{created}, "
            "which AWS does not document to the second"
        )
    return None


def _rate_fires(source: Source, lower: datetime, n: int) -> list[Fire]:
    if why := unknown_phase(source):
        raise UnknownFires(why)
    assert source.start is not None
    period = rate_period(source.expression or "")
    steps = (lower - source.start) // period + 1 if lower >= source.start else 0
    fires: list[Fire] = []
    moment = source.start + steps * period
    while len(fires) < n and (source.end is None or moment < source.end):
        fires.append(Fire(minute(moment)))
        moment += period
    return fires


def _skipped(source: Source, day: date) -> str:
    """The schedule's local times on ``day`` that the change to daylight saving time skips, said."""
    timezone = source.timezone or "UTC"
    if not (source.expression or "").startswith("cron(") or timezone == "UTC":
        return ""
    zone, times = ZoneInfo(timezone), []
    for local in EventBridgeCronTimetable(source.expression or "", timezone=timezone).local_times(day):
        if local.date() != day:
            break
        if not _exists(local, zone):
            times.append(f"{local:%H:%M}")
    if not times:
        return ""
    shown = ", ".join(times[:3]) + (f" and {len(times) - 3} more" if len(times) > 3 else "")
    return f"{shown} does not exist that day in {timezone}, so Scheduler skips it; "


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    """Whether a wall-clock time happens in ``zone`` (a change to daylight saving time skips some)."""
    return local.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local


def _offset(day: date, zone: ZoneInfo) -> timedelta | None:
    return datetime.combine(day, time(), zone).utcoffset()


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
