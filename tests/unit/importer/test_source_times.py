"""When a source fires, as AWS documents it (``ecsjobs.importer.source_times``): the reference the importer's
notes and ``import --check`` are held to."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ecsjobs.catalog.schedules import next_fire_times
from ecsjobs.importer.source_times import (
    UnknownFires,
    dst_differences,
    rate_as_cron,
    source_fires,
)
from ecsjobs.importer.sources import Source

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, 3, 20, tzinfo=UTC)  # a Thursday


def _schedule(expression: str, timezone: str = "UTC", **fields) -> Source:
    return Source("schedule", "s", "arn:s", expression, (), timezone=timezone, **fields)


@pytest.mark.parametrize(
    ("expression", "cron"),
    [
        ("rate(1 minute)", "cron(* * * * ? *)"),
        ("rate(15 minutes)", "cron(5/15 * * * ? *)"),
        ("rate(1 hour)", "cron(20 * * * ? *)"),
        ("rate(6 hours)", "cron(20 3/6 * * ? *)"),
        ("rate(1 day)", "cron(20 3 * * ? *)"),
        ("rate(7 days)", "cron(20 3 ? * THU *)"),
        ("rate(90 minutes)", None),
        ("rate(5 hours)", None),
        ("rate(2 days)", None),
    ],
    ids=lambda value: str(value),
)
def test_a_rate_from_its_start_is_a_cron_only_when_one_fires_at_the_same_instants(expression, cron):
    assert rate_as_cron(expression, START) == cron
    if cron:
        after = datetime(2026, 3, 1, tzinfo=UTC)
        theirs = [fire.at for fire in source_fires(_schedule(expression, start=START), after, 30)]
        assert next_fire_times(cron, "UTC", after, 30) == theirs


def test_scheduler_skips_a_time_daylight_saving_skips_and_doubts_a_repeated_one():
    fires = source_fires(
        _schedule("cron(30 1,2 * * ? *)", "America/New_York"), datetime(2027, 3, 13, tzinfo=UTC), 4
    )
    local = [f"{fire.at.astimezone(UTC):%m-%d %H:%M}" for fire in fires]
    assert local == ["03-13 06:30", "03-13 07:30", "03-14 06:30", "03-15 05:30"]  # no 02:30 on 14 March
    fall = source_fires(
        _schedule("cron(30 1 * * ? *)", "America/New_York"), datetime(2027, 11, 6, 12, tzinfo=UTC), 1
    )
    assert fall[0].doubt and "happens twice" in fall[0].doubt and "AWS does not say which" in fall[0].doubt


def test_a_schedule_fires_from_its_start_and_before_its_end():
    source = _schedule(
        "cron(0 9 * * ? *)",
        start=datetime(2090, 1, 1, 9, tzinfo=UTC),
        end=datetime(2090, 1, 3, 9, tzinfo=UTC),
    )
    fires = source_fires(source, datetime(2026, 12, 7, tzinfo=UTC), 10)
    assert [fire.at.day for fire in fires] == [1, 2], "StartDate inclusive, EndDate exclusive"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (Source("rule", "r", "arn:r", "rate(5 minutes)", ()), "counts from the rule's creation"),
        (_schedule("rate(1 day)"), "without a StartDate counts from its creation"),
    ],
    ids=["rule rate", "schedule rate without a start"],
)
def test_a_rate_counted_from_a_creation_has_unknown_instants(source, why):
    with pytest.raises(UnknownFires, match=why):
        source_fires(source, datetime(2026, 12, 7, tzinfo=UTC), 1)


def test_only_the_daylight_saving_changes_where_airflow_fires_otherwise_are_named():
    today = date(2026, 12, 7)
    assert (
        dst_differences(
            _schedule("cron(0 9 * * ? *)", "Europe/Berlin"), "cron(0 9 * * ? *)", "Europe/Berlin", today
        )
        == []
    )
    gap = dst_differences(
        _schedule("cron(30 2 * * ? *)", "Europe/Berlin"), "cron(30 2 * * ? *)", "Europe/Berlin", today
    )
    assert gap[0] == (
        "2027-03-28: 02:30 does not exist that day in Europe/Berlin, so Scheduler skips it; the job fires at "
        "2027-03-28 01:30 UTC, the source at 2027-03-29 00:30 UTC"
    )
    assert len(gap) == 4 and all("happens twice" in change for change in gap[1::2]), gap  # spring, autumn x2
