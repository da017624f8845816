"""What one DescribeTasks answer says of the tasks asked about (``ecsjobs.waiting.sightings``): the stopped
ones with their times as the text a trigger event carries, and the ones ECS no longer knows."""

from __future__ import annotations

from datetime import UTC, datetime

from ecsjobs.waiting import sightings


def test_missing_and_stopped_tasks_in_an_ecs_answer():
    running, stopped, aged_out = (f"arn:aws:ecs:us-east-1:1:task/c/{n}" for n in ("run", "stop", "old"))
    stopped_at = datetime(2026, 3, 2, 2, 0, 5, tzinfo=UTC)
    final = {"taskArn": stopped, "lastStatus": "STOPPED", "stoppedAt": stopped_at, "containers": []}
    response = {
        "tasks": [{"taskArn": running, "lastStatus": "RUNNING"}, final],
        "failures": [{"arn": aged_out, "reason": "MISSING"}],  # how ECS answers about an aged-out task
    }

    seen = sightings.sightings(response, [running, "stop", aged_out], 42.0)

    assert seen == {
        "stop": sightings.Sighting({**final, "stoppedAt": "2026-03-02T02:00:05+00:00"}, 42.0),
        aged_out: sightings.Sighting(None, 42.0),
    }
