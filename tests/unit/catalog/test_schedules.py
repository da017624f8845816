"""Schedules: EventBridge expressions fire when EventBridge would, through the timetables Airflow uses.

Expected instants are worked out by hand from a calendar (2026-01-01 is a Thursday) and written in UTC
unless a test is about time zones.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable

from ecsjobs.catalog.schedules import (
    EventBridgeCronTimetable,
    ScheduleError,
    describe_schedule,
    next_fire_times,
    parse_schedule,
)

NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expression: str, after: datetime | str = NEW_YEAR, n: int = 3) -> list[str]:
    after = utc(after) if isinstance(after, str) else after
    return [f"{fire.astimezone(UTC):%Y-%m-%d %H:%M}" for fire in next_fire_times(expression, "UTC", after, n)]


def local_and_utc(expression: str, timezone: str, after: str, n: int = 3) -> list[tuple[str, str]]:
    after_local = pendulum.parse(after, tz=timezone)
    return [
        (fire.isoformat(), f"{fire.astimezone(UTC):%Y-%m-%d %H:%M}Z")
        for fire in next_fire_times(expression, timezone, after_local, n)
    ]


def runs(timetable, earliest: datetime, n: int) -> list[datetime]:
    """The first ``n`` runs the scheduler creates for a catching-up DAG starting at ``earliest``."""
    restriction = TimeRestriction(earliest=pendulum.instance(earliest), latest=None, catchup=True)
    result, last = [], None
    for _ in range(n):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        result.append(info.run_after)
        last = info.data_interval
    return result


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0 10 * * ? *)", NEW_YEAR, ["2026-01-01 10:00", "2026-01-02 10:00", "2026-01-03 10:00"]),
        ("cron(15 12 * * ? *)", NEW_YEAR, ["2026-01-01 12:15", "2026-01-02 12:15", "2026-01-03 12:15"]),
        # Thursday, Friday, then Monday
        ("cron(0 18 ? * MON-FRI *)", NEW_YEAR, ["2026-01-01 18:00", "2026-01-02 18:00", "2026-01-05 18:00"]),
        ("cron(0 8 1 * ? *)", NEW_YEAR, ["2026-01-01 08:00", "2026-02-01 08:00", "2026-03-01 08:00"]),
        ("cron(0/15 * * * ? *)", NEW_YEAR, ["2026-01-01 00:15", "2026-01-01 00:30", "2026-01-01 00:45"]),
        # Friday night, then the weekend is skipped
        (
            "cron(0/10 * ? * MON-FRI *)",
            "2026-01-02 23:40",
            ["2026-01-02 23:50", "2026-01-05 00:00", "2026-01-05 00:10"],
        ),
        (
            "cron(0/5 8-17 ? * MON-FRI *)",
            "2026-01-02 17:50",
            ["2026-01-02 17:55", "2026-01-05 08:00", "2026-01-05 08:05"],
        ),
        # first Monday: January 5th; February and March start on a Sunday; April 1st is a Wednesday
        ("cron(0 9 ? * 2#1 *)", NEW_YEAR, ["2026-01-05 09:00", "2026-02-02 09:00", "2026-03-02 09:00"]),
        ("rate(5 minutes)", NEW_YEAR, ["2026-01-01 00:05", "2026-01-01 00:10", "2026-01-01 00:15"]),
        ("rate(1 hour)", NEW_YEAR, ["2026-01-01 01:00", "2026-01-01 02:00", "2026-01-01 03:00"]),
        ("rate(7 days)", NEW_YEAR, ["2026-01-08 00:00", "2026-01-15 00:00", "2026-01-22 00:00"]),
    ],
)
def test_the_examples_of_the_eventbridge_docs(expression: str, after: datetime | str, expected: list[str]):
    assert fires(expression, after) == expected


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # L: the last day, in a common and a leap year
        ("cron(0 0 L * ? *)", "2027-01-15", ["2027-01-31 00:00", "2027-02-28 00:00", "2027-03-31 00:00"]),
        ("cron(0 0 L * ? *)", "2028-01-15", ["2028-01-31 00:00", "2028-02-29 00:00", "2028-03-31 00:00"]),
        # 2100 is not a leap year, 2104 is
        ("cron(0 0 L 2 ? *)", "2099-06-01", ["2100-02-28 00:00", "2101-02-28 00:00", "2102-02-28 00:00"]),
        ("cron(0 0 L 2 ? *)", "2103-06-01", ["2104-02-29 00:00", "2105-02-28 00:00", "2106-02-28 00:00"]),
        # LW: Jan 31 and Feb 28 are Saturdays, Mar 31 a Tuesday
        ("cron(0 9 LW * ? *)", NEW_YEAR, ["2026-01-30 09:00", "2026-02-27 09:00", "2026-03-31 09:00"]),
        # 6L: the last Friday
        ("cron(15 10 ? * 6L *)", NEW_YEAR, ["2026-01-30 10:15", "2026-02-27 10:15", "2026-03-27 10:15"]),
        # 15W: Jan 15 is a Thursday; Feb 15 and Mar 15 are Sundays, so Monday the 16th
        ("cron(0 9 15W * ? *)", NEW_YEAR, ["2026-01-15 09:00", "2026-02-16 09:00", "2026-03-16 09:00"]),
        # Aug 15 is a Saturday, so Friday the 14th
        ("cron(0 9 15W * ? *)", "2026-08-01", ["2026-08-14 09:00", "2026-09-15 09:00", "2026-10-15 09:00"]),
        # 1W: Aug 1 is a Saturday, so Monday the 3rd (not July 31st); Nov 1 is a Sunday, so Monday the 2nd
        ("cron(0 9 1W * ? *)", "2026-07-02", ["2026-08-03 09:00", "2026-09-01 09:00", "2026-10-01 09:00"]),
        ("cron(0 9 1W * ? *)", "2026-10-02", ["2026-11-02 09:00", "2026-12-01 09:00", "2027-01-01 09:00"]),
        # 31W: May 31 is a Sunday, so Friday the 29th (not June 1st); 30-day months have no 31st
        ("cron(0 9 31W * ? *)", "2026-04-01", ["2026-05-29 09:00", "2026-07-31 09:00", "2026-08-31 09:00"]),
        # #5: only January, May, July and October 2026 have a fifth Friday
        ("cron(0 9 ? * 6#5 *)", NEW_YEAR, ["2026-01-30 09:00", "2026-05-29 09:00", "2026-07-31 09:00"]),
        # year field
        ("cron(0 12 1 1 ? 2027-2028)", NEW_YEAR, ["2027-01-01 12:00", "2028-01-01 12:00"]),
        (
            "cron(0 0 1 1 ? 2026/2)",
            "2026-06-01",
            ["2028-01-01 00:00", "2030-01-01 00:00", "2032-01-01 00:00"],
        ),
        ("cron(0 0 1 1 ? 1970)", "1969-12-31", ["1970-01-01 00:00"]),
        ("cron(59 23 31 12 ? 2199)", "2199-01-01", ["2199-12-31 23:59"]),
        ("cron(0 12 * * ? 2020)", NEW_YEAR, []),
    ],
)
def test_eventbridge_only_wildcards_and_the_year(expression: str, after: datetime | str, expected: list[str]):
    assert isinstance(parse_schedule(expression), EventBridgeCronTimetable)
    assert fires(expression, utc(after) if isinstance(after, str) else after) == expected


@pytest.mark.parametrize(
    ("day_of_week", "weekday"),
    [
        ("1", "Sun"),
        ("2", "Mon"),
        ("3", "Tue"),
        ("4", "Wed"),
        ("5", "Thu"),
        ("6", "Fri"),
        ("7", "Sat"),
        ("L", "Sat"),
    ],
)
def test_day_of_week_counts_from_sunday(day_of_week: str, weekday: str):
    expression = f"cron(0 0 ? * {day_of_week} *)"
    mapped = next_fire_times(expression, "UTC", NEW_YEAR, 3)
    custom = next_fire_times(f"cron(0 0 ? * {day_of_week} 2026)", "UTC", NEW_YEAR, 3)
    assert [f"{fire:%a}" for fire in mapped + custom] == [weekday] * 6
    assert mapped == custom


@pytest.mark.parametrize(
    ("timezone", "after", "expected"),
    [
        # 02:00 does not exist on 8 March (clocks go 02:00 -> 03:00): it fires at 03:00, the same instant
        (
            "America/New_York",
            "2026-03-07",
            [
                ("2026-03-07T02:00:00-05:00", "2026-03-07 07:00Z"),
                ("2026-03-08T03:00:00-04:00", "2026-03-08 07:00Z"),
                ("2026-03-09T02:00:00-04:00", "2026-03-09 06:00Z"),
            ],
        ),
        # on 1 November 01:00-01:59 repeats; 02:00 comes once, in standard time
        (
            "America/New_York",
            "2026-10-31",
            [
                ("2026-10-31T02:00:00-04:00", "2026-10-31 06:00Z"),
                ("2026-11-01T02:00:00-05:00", "2026-11-01 07:00Z"),
                ("2026-11-02T02:00:00-05:00", "2026-11-02 07:00Z"),
            ],
        ),
        # 02:00 does not exist on 29 March (clocks go 02:00 -> 03:00): it fires at 03:00
        (
            "Europe/Berlin",
            "2026-03-28",
            [
                ("2026-03-28T02:00:00+01:00", "2026-03-28 01:00Z"),
                ("2026-03-29T03:00:00+02:00", "2026-03-29 01:00Z"),
                ("2026-03-30T02:00:00+02:00", "2026-03-30 00:00Z"),
            ],
        ),
        # 02:00-02:59 repeats on 25 October: it fires once, at the second 02:00
        (
            "Europe/Berlin",
            "2026-10-24",
            [
                ("2026-10-24T02:00:00+02:00", "2026-10-24 00:00Z"),
                ("2026-10-25T02:00:00+01:00", "2026-10-25 01:00Z"),
                ("2026-10-26T02:00:00+01:00", "2026-10-26 01:00Z"),
            ],
        ),
    ],
)
def test_a_daily_2am_job_across_dst_changes(timezone: str, after: str, expected: list[tuple[str, str]]):
    assert local_and_utc("cron(0 2 * * ? *)", timezone, after) == expected


def test_the_eventbridge_timetable_treats_dst_like_airflow():
    # the last Sunday of March and October are the EU's DST days
    assert local_and_utc("cron(30 2 ? * 1L *)", "Europe/Berlin", "2026-03-01", 2) == [
        ("2026-03-29T03:30:00+02:00", "2026-03-29 01:30Z"),
        ("2026-04-26T02:30:00+02:00", "2026-04-26 00:30Z"),
    ]
    assert local_and_utc("cron(30 2 ? * 1L *)", "Europe/Berlin", "2026-10-01", 2) == [
        ("2026-10-25T02:30:00+01:00", "2026-10-25 01:30Z"),
        ("2026-11-29T02:30:00+01:00", "2026-11-29 01:30Z"),
    ]
    # firing every hour follows the clock: 02:30 twice in October, never in March
    assert [local for local, _ in local_and_utc("cron(30 * ? * 1L *)", "Europe/Berlin", "2026-10-25", 5)] == [
        "2026-10-25T00:30:00+02:00",
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]
    assert [local for local, _ in local_and_utc("cron(30 * ? * 1L *)", "Europe/Berlin", "2026-03-29", 3)] == [
        "2026-03-29T00:30:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
    ]


@pytest.mark.parametrize("timezone", ["America/New_York", "Europe/Berlin"])
@pytest.mark.parametrize(
    "expression", ["cron(0 2 * * ? *)", "cron(30 1 * * ? *)", "cron(0/20 * * * ? *)", "cron(0 0/2 * * ? *)"]
)
def test_the_eventbridge_timetable_agrees_with_cron_trigger_timetable(expression: str, timezone: str):
    """Expressions both can say fire alike, so adding an L to a schedule keeps its DST behaviour."""
    custom = EventBridgeCronTimetable(expression, timezone=timezone)
    mapped = parse_schedule(expression, timezone)
    assert isinstance(mapped, CronTriggerTimetable)
    for start in (datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 10, 24, tzinfo=UTC)):
        assert runs(custom, start, 100) == runs(mapped, start, 100)


@pytest.mark.parametrize(
    ("expression", "cron"),
    [
        ("cron(0/15 * * * ? *)", "*/15 * * * *"),
        ("cron(5/10 * * * ? *)", "5-59/10 * * * *"),
        ("cron(0/5 8-17 ? * MON-FRI *)", "*/5 8-17 * * 1-5"),
        ("cron(0 0 ? * SUN,SAT *)", "0 0 * * 0,6"),
        ("cron(0 0 ? * L *)", "0 0 * * 6"),
        ("cron(0 8 1,15 JAN-MAR ? *)", "0 8 1,15 1-3 *"),
        ("cron(0 12 * * ? 1970-2199)", "0 12 * * *"),
        ("@daily", "0 0 * * *"),
        ("0 */6 * * *", "0 */6 * * *"),
    ],
)
def test_what_standard_cron_can_say_maps_to_cron_trigger_timetable(expression: str, cron: str):
    timetable = parse_schedule(expression, "Europe/Berlin")
    assert isinstance(timetable, CronTriggerTimetable)
    assert timetable.serialize()["expression"] == cron
    assert timetable.serialize()["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    "expression",
    ["cron(0 9 ? * 2#1 *)", "cron(0 22 L * ? *)", "cron(0 9 15W * ? *)", "cron(0 12 * * ? 2027)"],
)
def test_what_it_cannot_say_maps_to_the_eventbridge_timetable(expression: str):
    timetable = parse_schedule(expression, "Europe/Berlin")
    assert isinstance(timetable, EventBridgeCronTimetable)
    assert timetable.serialize() == {"expression": expression, "timezone": "Europe/Berlin"}
    assert timetable.summary == expression


def test_rate_maps_to_delta_trigger_timetable_and_none_to_no_schedule():
    timetable = parse_schedule("rate(30 minutes)")
    assert isinstance(timetable, DeltaTriggerTimetable)
    assert timetable.summary == str(timedelta(minutes=30))
    assert [parse_schedule(manual) for manual in (None, "none", "null", "None")] == [None] * 4
    assert next_fire_times(None, "UTC", NEW_YEAR, 3) == []


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 10 * * ?)", "EventBridge cron has 6 fields, got 5"),
        ("cron(0 0 10 * * ? *)", "got 7 (EventBridge has no seconds field)"),
        ("cron(0 10 * * ? *", "lacks its closing ')'"),
        ("cron(0 10 * * * *)", "day-of-month '*' and day-of-week '*': exactly one of them must be '?'"),
        ("cron(0 10 1 * MON *)", "day-of-month '1' and day-of-week 'MON': exactly one of them must be '?'"),
        ("cron(0 10 ? * ? *)", "exactly one of them must be '?'"),
        ("cron(0 ? * * ? *)", "hours: '?' is only allowed in day-of-month or day-of-week; expected 0-23"),
        ("cron(60 10 * * ? *)", "minutes: 60 is out of range; expected 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24 is out of range; expected 0-23"),
        ("cron(0 10 32 * ? *)", "day-of-month: 32 is out of range; expected ?, or 1-31"),
        ("cron(0 10 ? * 0 *)", "day-of-week: 0 is out of range; expected ?, or 1-7 or SUN-SAT (1 = Sunday)"),
        ("cron(0 10 * 13 ? *)", "month: 13 is out of range; expected 1-12 or JAN-DEC"),
        ("cron(0 10 * * ? 2200)", "year: 2200 is out of range; expected 1970-2199"),
        ("cron(0 10 * JANUARY ? *)", "month: 'JANUARY' is not a number or name; expected 1-12 or JAN-DEC"),
        ("cron(0 10 ? * FUN *)", "day-of-week: 'FUN' is not a number or name"),
        ("cron(0/0 10 * * ? *)", "minutes: increment '0' in '0/0' must be 1-59"),
        ("cron(0 10-8 * * ? *)", "hours: range '10-8' runs backwards"),
        ("cron(0 10 ? * 3#6 *)", "day-of-week: '3#6' asks for occurrence 6 of a weekday, which must be 1-5"),
        ("cron(0 10 ? * 3#1,6#3 *)", "day-of-week: '3#1,6#3' is not allowed: L, nL and n#k stand alone"),
        ("cron(0 10 ? * 2W *)", "day-of-week: '2W' is not a number or name"),
        ("cron(0 10 15W,20W * ? *)", "day-of-month: '15W,20W' is not allowed: L, LW and nW stand alone"),
        ("cron(0 10 1#2 * ? *)", "'#' is for day-of-week"),
        ("cron(0 10 ? * 1/2 *)", "EventBridge has no increments in day-of-week"),
        ("rate(1 minutes)", "rate(1 minutes) needs the unit 'minute' for a value of 1"),
        ("rate(5 minute)", "rate(5 minute) needs the unit 'minutes' for a value of 5"),
        ("rate(0 hours)", "rate value '0' is not a positive whole number"),
        ("rate(1.5 hours)", "rate value '1.5' is not a positive whole number"),
        ("rate(2 weeks)", "rate unit 'weeks' is unknown; expected minute(s), hour(s) or day(s)"),
        ("rate(5)", "'rate(5)' is not rate(value unit); expected e.g. rate(5 minutes)"),
        ("0 10 * * ? *", "cron has 5 fields, got 6; an EventBridge expression needs its cron(...) wrapper"),
        ("0 10 * *", "cron has 5 fields, got 4; expected 'minute hour day-of-month month day-of-week'"),
        ("61 * * * *", "invalid cron expression"),
        ("@once", "unknown preset '@once'; expected one of @hourly, @daily"),
        ("", "the schedule is empty"),
    ],
)
def test_malformed_expressions_say_what_is_wrong_and_what_is_expected(expression: str, message: str):
    with pytest.raises(ScheduleError) as error:
        parse_schedule(expression)
    assert message in str(error.value)


def test_an_unknown_time_zone_or_a_schedule_that_never_fires_is_an_error():
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'; expected an IANA name"):
        parse_schedule("cron(0 2 * * ? *)", "Mars/Olympus")
    with pytest.raises(ScheduleError, match="never fires on or after the start date 2026-01-01 00:00"):
        parse_schedule("cron(0 12 * * ? 2020-2025)", start_date=NEW_YEAR)
    with pytest.raises(ScheduleError, match="never fires"):
        parse_schedule("cron(0 0 31 2 ? *)", start_date=NEW_YEAR)
    assert next_fire_times("cron(0 0 31 2 ? *)", "UTC", NEW_YEAR, 3) == []
    assert parse_schedule("cron(0 12 * * ? 2026)", start_date=NEW_YEAR) is not None


class TestSchedulingLikeCronTriggerTimetable:
    timetable = EventBridgeCronTimetable("cron(0 10 L * ? *)")

    def next_run(self, last: datetime | None, earliest: datetime | None, catchup: bool, latest=None):
        interval = DataInterval.exact(pendulum.instance(last)) if last else None
        restriction = TimeRestriction(
            earliest=earliest and pendulum.instance(earliest), latest=latest, catchup=catchup
        )
        info = self.timetable.next_dagrun_info(last_automated_data_interval=interval, restriction=restriction)
        return info and info.run_after

    def latest_fire_before_now(self) -> datetime:
        now = datetime.now(UTC)
        return [
            fire
            for fire in next_fire_times("cron(0 10 L * ? *)", "UTC", now - timedelta(days=70), 3)
            if fire <= now
        ][-1]

    def test_with_catchup_runs_start_at_the_start_date_and_follow_each_other(self):
        assert self.next_run(None, utc("2026-01-31 10:00"), catchup=True) == utc("2026-01-31 10:00")
        assert self.next_run(utc("2026-01-31 10:00"), utc("2026-01-01"), catchup=True) == utc(
            "2026-02-28 10:00"
        )

    def test_without_catchup_only_the_latest_missed_fire_runs(self):
        assert self.next_run(None, utc("2020-01-01"), catchup=False) == self.latest_fire_before_now()
        assert (
            self.next_run(utc("2020-01-31 10:00"), utc("2020-01-01"), catchup=False)
            == self.latest_fire_before_now()
        )
        assert self.next_run(None, utc("2199-11-01"), catchup=False) == utc("2199-11-30 10:00")

    def test_no_run_after_the_end_date_or_the_last_year(self):
        assert (
            self.next_run(None, utc("2026-01-01"), catchup=True, latest=pendulum.datetime(2026, 1, 30))
            is None
        )
        ended = EventBridgeCronTimetable("cron(0 12 1 1 ? 2020)")
        for catchup in (True, False):
            info = ended.next_dagrun_info(
                last_automated_data_interval=DataInterval.exact(pendulum.datetime(2020, 1, 1, 12)),
                restriction=TimeRestriction(
                    earliest=pendulum.datetime(2019, 1, 1), latest=None, catchup=catchup
                ),
            )
            assert info is None

    def test_a_manual_run_covers_its_own_instant(self):
        at = pendulum.datetime(2026, 5, 4, 13, 7)
        assert self.timetable.infer_manual_data_interval(run_after=at) == DataInterval(at, at)


@pytest.mark.parametrize(
    ("expression", "timezone", "words"),
    [
        ("cron(0 2 * * ? *)", "UTC", "at 02:00 (UTC)"),
        (
            "cron(0 9 ? * 2#1 *)",
            "Europe/Berlin",
            "at 09:00, on the first Monday of the month (Europe/Berlin)",
        ),
        ("cron(0 22 L * ? *)", "UTC", "at 22:00, on the last day of the month (UTC)"),
        ("cron(0/15 * * * ? *)", "UTC", "every 15 minutes (UTC)"),
        ("cron(0 0 ? * L 2026)", "UTC", "at 00:00, only on Saturday, only in 2026 (UTC)"),
        ("30 6 * * 1-5", "UTC", "at 06:30, Monday through Friday (UTC)"),
        ("@weekly", "America/New_York", "at 00:00, only on Sunday (America/New_York)"),
        ("rate(1 hour)", "UTC", "every hour"),
        ("rate(30 minutes)", "UTC", "every 30 minutes"),
        (None, "UTC", "never: manual and backfill runs only"),
    ],
)
def test_describe_schedule_in_words(expression: str | None, timezone: str, words: str):
    assert describe_schedule(expression, timezone) == words


@pytest.mark.parametrize(
    "expression", ["cron(15 10 ? * 6L *)", "cron(0 2 * * ? *)", "rate(30 minutes)", "@daily"]
)
def test_a_serialized_dag_schedules_the_same_runs(expression: str):
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    timetable = parse_schedule(expression, "Europe/Berlin", NEW_YEAR)
    dag = DAG(dag_id="job", schedule=timetable, start_date=NEW_YEAR, catchup=True)
    stored = json.loads(json.dumps(DagSerialization.to_dict(dag)))  # what the metadata DB holds
    restored = DagSerialization.from_dict(stored).timetable
    assert type(restored) is type(timetable)
    assert runs(restored, NEW_YEAR, 5) == runs(timetable, NEW_YEAR, 5)


def test_the_plugin_registers_the_eventbridge_timetable():
    from airflow import plugins_manager
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization
    from ecsjobs_plugin import EcsJobsPlugin

    assert EcsJobsPlugin.name == "ecsjobs"
    assert EcsJobsPlugin.timetables == [EventBridgeCronTimetable]
    registered = (
        plugins_manager.get_timetables_plugins()
    )  # found in the plugins folder, as the scheduler does
    assert registered["ecsjobs.catalog.schedules.EventBridgeCronTimetable"] is EventBridgeCronTimetable

    dag = DAG(
        dag_id="job", schedule=EventBridgeCronTimetable("cron(15 10 ? * 6L *)", timezone="Europe/Berlin")
    )
    assert DagSerialization.to_dict(dag)["dag"]["timetable"] == {
        "__type": "ecsjobs.catalog.schedules.EventBridgeCronTimetable",
        "__var": {"expression": "cron(15 10 ? * 6L *)", "timezone": "Europe/Berlin"},
    }
    # the last Fridays of January and February 2026, 10:15 in Berlin (UTC+1)
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable
    assert runs(restored, NEW_YEAR, 2) == [utc("2026-01-30 09:15"), utc("2026-02-27 09:15")]
