"""A task's end as a poller sees it: its final description, JSON-ready for a trigger event, or None when ECS
no longer knows the task."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecsjobs.ecs import EcsTask, TaskStatus, resource_name


@dataclass(frozen=True)
class Sighting:
    """A task's end as the poller saw it: its final description (JSON-ready), or None if ECS lost it."""

    task: EcsTask | None
    detected_at: float  # epoch seconds


def sightings(response: dict[str, Any], arns: list[str], detected_at: float) -> dict[str, Sighting]:
    """The requested tasks whose wait is over: STOPPED ones, and ones ECS does not know (``MISSING``).

    ECS answers ``failures: [{"arn", "reason": "MISSING"}]`` for a task that aged out (about an hour after it
    stopped) and, briefly, for one it has just started; a task in neither list is treated the same way. The
    poller reports a missing task only after ``MISSING_GRACE``.
    """
    described: dict[str, dict[str, Any]] = {}
    for task in response.get("tasks", []):
        described[task["taskArn"]] = task
        described[resource_name(task["taskArn"])] = task  # the request may name a task by its id
    seen = {}
    for arn in arns:
        task = described.get(arn)
        if task is None:
            seen[arn] = Sighting(None, detected_at)
        elif task.get("lastStatus") == TaskStatus.STOPPED:
            seen[arn] = Sighting(jsonable(task), detected_at)
    return seen


def jsonable(value: Any) -> Any:
    """A DescribeTasks answer with its datetimes as ISO 8601 strings, so that it fits in a trigger event."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value
