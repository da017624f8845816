"""The ECS wait trigger (``ecsjobs.waiting.triggers``) as the triggerer stores and rebuilds it."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.waits import LOG_GROUP, rebuilt, wait_trigger


def test_serialize_round_trips_through_the_classpath():
    trigger = wait_trigger(
        "arn:aws:ecs:us-east-1:123456789012:task/batch-jobs/abc",
        deadline="2026-03-02T04:00:00",
        stop_reason="deadline",
        kill_reason=None,
        log_group=LOG_GROUP,
        log_stream="ecs/batch-container/abc",
        botocore_config={"retries": {"mode": "adaptive", "max_attempts": 10}},
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == "ecsjobs.waiting.triggers.EcsTaskWaitTrigger"
    assert rebuilt(trigger).serialize() == (classpath, kwargs)
    assert kwargs["deadline"] == datetime(2026, 3, 2, 4, tzinfo=UTC).timestamp()
