"""The ECS tasks of one task instance, across its tries: how a try learns what the earlier ones did.

Every try's RunTask carries the same ``startedBy`` (derived from the task instance) and the tags
``ecsjobs:try`` and ``ecsjobs:launch``, so ListTasks by ``startedBy`` finds them all, running or stopped.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.utils.identifiers import generate_uuid

from ecsjobs.decisions.retries import Tries
from ecsjobs.ecs import EcsTask, TaskStatus

TRY_TAG = "ecsjobs:try"
LAUNCH_TAG = "ecsjobs:launch"
MAX_ARNS_PER_CALL = 100  # DescribeTasks' limit


def started_by_for(ti: Any) -> str:
    """The same for every try of a task instance: how a try finds the ECS tasks of earlier ones."""
    return generate_uuid(ti.dag_id, ti.task_id, ti.run_id, str(ti.map_index))


def tasks_of(client: Any, cluster: str, started_by: str) -> list[EcsTask]:
    """Every ECS task started with ``started_by``, in any try, running or stopped, with its tags, oldest
    try first."""
    arns: list[str] = []
    for status in (TaskStatus.RUNNING.value, TaskStatus.STOPPED.value):
        pages = client.get_paginator("list_tasks").paginate(
            cluster=cluster, startedBy=started_by, desiredStatus=status
        )
        arns += [arn for page in pages for arn in page["taskArns"]]
    tasks = []
    for i in range(0, len(arns), MAX_ARNS_PER_CALL):
        chunk = arns[i : i + MAX_ARNS_PER_CALL]
        tasks += client.describe_tasks(cluster=cluster, tasks=chunk, include=["TAGS"])["tasks"]
    return sorted(tasks, key=try_of)


def tag(task: EcsTask, key: str) -> str | None:
    return next((t["value"] for t in task.get("tags", []) if t.get("key") == key), None)


def try_of(task: EcsTask) -> int:
    """The Airflow try that started an ECS task (0 if the tag is gone)."""
    return int(tag(task, TRY_TAG) or 0)


def since_last_clear(history: list[EcsTask], tries: Tries) -> list[EcsTask]:
    """The stopped ECS tasks of the earlier tries since the task instance was last cleared: the tries
    whose failures count against the retry budgets, and whose success a retry adopts."""
    return [
        t
        for t in history
        if tries.cleared_after < try_of(t) < tries.number and t.get("lastStatus") == TaskStatus.STOPPED
    ]


def task_to_wait_for(history: list[EcsTask], try_number: int) -> EcsTask | None:
    """This try's own task (a resumed or rescheduled try started it already), else any task still running:
    a try never starts a task while another of its task instance runs."""
    own = next((t for t in history if try_of(t) == try_number), None)
    return own or next((t for t in history if t.get("lastStatus") != TaskStatus.STOPPED), None)
