"""A rule's or schedule's schedule as the job's schedule keys, each noted exact only when its fire times are
the source's (``source_times`` says what the source's are)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ecsjobs.catalog.schedules import next_fire_times
from ecsjobs.importer.imported import Imported
from ecsjobs.importer.source_times import dst_differences, rate_as_cron, unknown_phase
from ecsjobs.importer.sources import Source


def schedule_keys(source: Source, imported: Imported, today: date) -> dict[str, Any]:
    """The job's schedule keys, each noted exact only when its fire times are the source's
    (``source_times`` says what the source's are)."""
    keys: dict[str, Any] = {}
    expression = source.expression or ""
    timezone = source.timezone or "UTC"
    if expression.startswith("at("):
        imported.note("review", "ScheduleExpression", f"{expression} runs once: trigger the job by hand then")
    elif expression.startswith("rate("):
        keys["schedule"] = _rate(source, imported)
        if timezone != "UTC":
            imported.note(
                "exact", "ScheduleExpressionTimezone", f"{timezone} does not move a rate (a day is 24 hours)"
            )
    else:
        keys["schedule"] = expression
        imported.note("exact", "ScheduleExpression", expression)
        if timezone != "UTC":
            keys["timezone"] = timezone
            _dst_note(source, expression, timezone, imported, today)
    zone = ZoneInfo(keys.get("timezone", "UTC"))
    start = today
    if source.start is not None:
        start = source.start.astimezone(zone).date()
        _start_note(source, keys.get("schedule"), keys.get("timezone", "UTC"), start, imported, today)
    keys["start_date"] = start
    if source.end is not None:
        last = (source.end - timedelta(seconds=1)).astimezone(UTC)
        keys["end_date"] = last.strftime("%Y-%m-%dT%H:%M:%SZ")
        imported.note(
            "exact",
            "EndDate",
            f"the schedule fires before {source.end.isoformat()}: end_date {keys['end_date']} is its last "
            "instant (Airflow's end_date is inclusive)",
        )
    window = source.flexible_window or {}
    if window.get("Mode", "OFF") != "OFF":
        minutes = window.get("MaximumWindowInMinutes")
        imported.note(
            "review",
            "FlexibleTimeWindow",
            f"fired up to {minutes} min late on purpose; Airflow fires on time",
        )
    if not source.enabled:
        keys["paused"] = True
        imported.note("exact", "State", "DISABLED: the job is created paused")
    return keys


def _rate(source: Source, imported: Imported) -> str:
    """A rate's instants depend on when it started counting: a schedule with a ``StartDate`` becomes the
    ``cron(...)`` of its instants where there is one; otherwise the job keeps the interval, for review."""
    expression = source.expression or ""
    if source.kind == "schedule" and source.start is not None:
        cron = rate_as_cron(expression, source.start)
        if cron is not None:
            imported.note(
                "exact",
                "ScheduleExpression",
                f"{expression} from StartDate {source.start.isoformat()} fires when {cron} does (UTC)",
            )
            return cron
        why = f"it counts from StartDate {source.start.isoformat()}, which no cron(...) can say"
    else:
        why = unknown_phase(source) or ""
    imported.note(
        "review",
        "ScheduleExpression",
        f"{expression}: the same interval, but {why}; Airflow counts from when it first schedules the job. "
        "Write the source's instants as a cron(...) to keep them",
    )
    return expression


def _dst_note(source: Source, expression: str, timezone: str, imported: Imported, today: date) -> None:
    """Scheduler and Airflow treat a local time that a daylight saving change skips or repeats otherwise:
    the changes of the next two years where this schedule's fires differ, or the time zone as exact."""
    differences = dst_differences(source, expression, timezone, today)
    if not differences:
        imported.note("exact", "ScheduleExpressionTimezone", f"{timezone}, daylight saving changes included")
        return
    more = f"; and {len(differences) - 2} more changes" if len(differences) > 2 else ""
    imported.note(
        "review",
        "ScheduleExpressionTimezone",
        f"{timezone}: on daylight saving changes the job fires otherwise: {'; '.join(differences[:2])}{more}",
    )


def _start_note(
    source: Source, schedule: str | None, timezone: str, start: date, imported: Imported, today: date
) -> None:
    """A job starts at midnight of its start date; a source that starts later that day must not be
    preceded by a fire of the job."""
    assert source.start is not None
    midnight = datetime.combine(start, time(), ZoneInfo(timezone))
    first = next_fire_times(schedule, timezone, midnight - timedelta(microseconds=1), 1) if schedule else []
    early = [fire for fire in first if fire < source.start]
    if early and source.start.date() >= today:
        imported.note(
            "review",
            "StartDate",
            f"{source.start.isoformat()}: the job fires at {early[0].isoformat()} on its start date {start}, "
            "before the source began: keep it paused until then",
        )
    else:
        imported.note("exact", "StartDate", f"{source.start.isoformat()} becomes start_date {start}")
