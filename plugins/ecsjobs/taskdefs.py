"""What a task definition says that DescribeTasks does not: which containers are essential.

A task stops when any essential container exits, and each of them can fail the job: a second essential
container (a worker beside the app, say) exiting 1 is a failed run even when the app exited 0. A task
definition revision never changes, so each is described once per process.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_essential: dict[str, frozenset[str]] = {}  # task definition ARN (family:revision) -> essential containers


def essential_containers(client: Any, task: dict[str, Any]) -> frozenset[str] | None:
    """The names of the essential containers of ``task``'s task definition (DescribeTaskDefinition, cached).

    None when the definition cannot be described (then the outcome table judges every container): a missing
    permission must not turn a failed run into a success.
    """
    arn = task.get("taskDefinitionArn")
    if not arn:
        return None
    if arn not in _essential:
        try:
            definition = client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        except Exception as error:  # judged on every container instead, never a false success
            log.warning("Could not describe task definition %s (%s); every container decides", arn, error)
            return None
        _essential[arn] = frozenset(
            c["name"] for c in definition["containerDefinitions"] if c.get("essential", True)
        )
    return _essential[arn]
