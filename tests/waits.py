"""Waits on the local AWS's ECS, shared by the wait, task-event, claim and cost tests: the seeded cluster,
task definition and network, tasks started with plain boto3 RunTask (their scenario chosen by an environment
variable), and triggers built, rebuilt and run as the triggerer and ``dag.test()`` run them."""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from typing import Any

from ecsjobs.waiting.triggers import EcsTaskWaitTrigger
from tests.support import LocalServer

CLUSTER = "batch-jobs"
FAMILY = "data-processor"
CONTAINER = "batch-container"
LOG_GROUP = f"/ecs/{FAMILY}"
INTERVAL = 1.0
QUICK = {"provisioning": 0.1, "pending": 0.1, "stopping": 0.2}
NETWORK = {
    "awsvpcConfiguration": {
        "subnets": ["subnet-0local0000000001a"],
        "securityGroups": ["sg-0local00000000001"],
    }
}


def start_tasks(aws: LocalServer, ecs: Any, count: int, **scenario: Any) -> list[str]:
    """``count`` tasks that all follow ``scenario``, started 10 per RunTask call."""
    group = uuid.uuid4().hex
    aws.post(
        "/_local/scenarios", {"match": {"env": {"WAIT_GROUP": group}}, "scenario": {**QUICK, **scenario}}
    )
    overrides = {
        "containerOverrides": [{"name": CONTAINER, "environment": [{"name": "WAIT_GROUP", "value": group}]}]
    }
    arns = []
    while len(arns) < count:
        response = ecs.run_task(
            cluster=CLUSTER,
            taskDefinition=FAMILY,
            networkConfiguration=NETWORK,
            overrides=overrides,
            count=min(10, count - len(arns)),
        )
        assert response["failures"] == [], response["failures"]
        arns += [task["taskArn"] for task in response["tasks"]]
    return arns


def wait_trigger(arn: str, **kwargs: Any) -> EcsTaskWaitTrigger:
    return EcsTaskWaitTrigger(
        cluster=CLUSTER,
        task_arn=arn,
        aws_conn_id="aws_local",
        region_name="us-east-1",
        poll_interval=INTERVAL,
        **kwargs,
    )


async def first_event(trigger: EcsTaskWaitTrigger) -> dict[str, Any]:
    """The first event, taken as ``dag.test()`` takes it."""
    event = await anext(trigger.run())
    return event.payload


def wait_all(triggers: list[EcsTaskWaitTrigger], timeout: float = 30) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        return await asyncio.wait_for(asyncio.gather(*(first_event(t) for t in triggers)), timeout)

    return asyncio.run(main())


def rebuilt(trigger: EcsTaskWaitTrigger) -> EcsTaskWaitTrigger:
    """The trigger as a triggerer (or ``dag.test()``) rebuilds it from what the deferring task stored."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
