"""ECS's own shapes, read the same way everywhere: a task and its containers as DescribeTasks returns them,
a task's status, the resource an ARN names and the times DescribeTasks reports.

``EcsTask`` and ``EcsContainer`` are the fields of DescribeTasks' ``Task`` and ``Container``
(types-boto3-ecs's ``TaskTypeDef``, ``ContainerTypeDef``) that this project reads. They are their own
TypedDicts because a task also travels in trigger events and XCom as JSON, where its times are ISO 8601 text
rather than datetimes: ``moment`` reads either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict


class EcsContainer(TypedDict, total=False):
    name: str
    lastStatus: str
    exitCode: int
    reason: str


class EcsTask(TypedDict, total=False):
    taskArn: str
    clusterArn: str
    taskDefinitionArn: str
    lastStatus: str
    desiredStatus: str
    stopCode: str
    stoppedReason: str
    containers: list[EcsContainer]
    createdAt: datetime | str
    pullStartedAt: datetime | str
    startedAt: datetime | str
    stoppedAt: datetime | str
    launchType: str
    capacityProviderName: str
    cpu: str
    memory: str
    ephemeralStorage: dict[str, Any]
    attributes: list[dict[str, Any]]
    tags: list[dict[str, str]]
    group: str
    startedBy: str
    version: int


class TaskStatus(StrEnum):
    """A task's ``lastStatus`` or ``desiredStatus``: the lifecycle of the ECS Developer Guide's page "Amazon
    ECS task lifecycle". A ``StrEnum``, so it equals the text DescribeTasks and task events carry."""

    PROVISIONING = "PROVISIONING"
    PENDING = "PENDING"
    ACTIVATING = "ACTIVATING"
    RUNNING = "RUNNING"
    DEACTIVATING = "DEACTIVATING"
    STOPPING = "STOPPING"
    DEPROVISIONING = "DEPROVISIONING"
    STOPPED = "STOPPED"
    DELETED = "DELETED"


def resource_name(arn: str) -> str:
    """The resource at the end of an ECS ARN: a cluster's name, a task's ID, a task definition's
    ``family:revision``. A bare name (as a catalog or a RunTask call may give) is returned as it is."""
    return arn.rsplit("/", 1)[-1]


def moment(value: str | datetime) -> datetime:
    """A DescribeTasks time, timezone-aware: a datetime from boto3, ISO 8601 text once it went through a
    trigger event or XCom (naive text is UTC)."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
