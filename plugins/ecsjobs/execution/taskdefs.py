"""What a task definition says that DescribeTasks may not: which containers are essential, the CPU
architecture and the ephemeral storage.

A task stops when any essential container exits, and each of them can fail the job: a second essential
container (a worker beside the app, say) exiting 1 is a failed run even when the app exited 0. Architecture
and storage price the run (``ecsjobs.reporting.cost``). A task definition revision never changes, so each is
described once per process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ecsjobs.decisions.outcome import Outcome, judge_task
from ecsjobs.ecs import EcsTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Definition:
    essential: frozenset[str]
    cpu_architecture: str | None  # runtimePlatform.cpuArchitecture, lower case as tasks report it
    storage_gib: float | None  # ephemeralStorage.sizeInGiB


_described: dict[str, Definition] = {}  # task definition ARN (family:revision) -> what it says


def definition(client: Any, task: EcsTask) -> Definition | None:
    """What ``task``'s task definition says (DescribeTaskDefinition, cached); None when it cannot be
    described."""
    arn = task.get("taskDefinitionArn")
    if not arn:
        return None
    if arn not in _described:
        try:
            described = client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        except Exception as error:  # judged on every container instead, never a false success
            log.warning("Could not describe task definition %s (%s); every container decides", arn, error)
            return None
        architecture = (described.get("runtimePlatform") or {}).get("cpuArchitecture")
        _described[arn] = Definition(
            essential=frozenset(
                c["name"] for c in described["containerDefinitions"] if c.get("essential", True)
            ),
            cpu_architecture=architecture.lower() if architecture else None,
            storage_gib=(described.get("ephemeralStorage") or {}).get("sizeInGiB"),
        )
    return _described[arn]


def essential_containers(client: Any, task: EcsTask) -> frozenset[str] | None:
    """The names of the essential containers of ``task``'s task definition.

    None when the definition cannot be described (then the outcome table judges every container): a missing
    permission must not turn a failed run into a success.
    """
    described = definition(client, task)
    return described.essential if described else None


def judged(client: Any, task: EcsTask, main_container: str) -> Outcome:
    """The outcome of a stopped task, every essential container of its task definition deciding."""
    return judge_task(task, essential=essential_containers(client, task), main_container=main_container)
