"""Wait for an ECS task this DAG did not start, and judge it like our own steps.

For pipelines that hand over to a task started elsewhere (another system's RunTask, a service's one-off task).
The provider's ``EcsTaskStateSensor`` only compares ``lastStatus`` and cannot defer; this sensor defers on the
same batched poller as the steps and applies the same outcome table (essential containers, stop codes).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from ecsjobs.aws import client
from ecsjobs.decisions.outcome import judge_missing, judge_task
from ecsjobs.execution.taskdefs import essential_containers
from ecsjobs.waiting.poller import DEFAULT_RECONCILE_INTERVAL
from ecsjobs.waiting.triggers import EcsTaskWaitTrigger, WaitEvent, WaitStatus


class EcsTaskCompletionSensor(BaseSensorOperator):
    """Succeed when the ECS task ``task_arn`` ends successfully; fail, without retries, when it does not.

    :param task_arn: the task to wait for (templated, e.g. from an upstream XCom).
    :param cluster: its cluster (templated).
    :param essential_containers: names of the essential containers; by default those of the task's
        definition (DescribeTaskDefinition).
    :param poll_interval: seconds between polls of the shared poller.
    :param events_queue: SQS queue with the cluster's ECS task state change events (see the step operator).
    :param reconcile_interval: seconds between DescribeTasks rounds while events arrive.
    """

    template_fields: Sequence[str] = ("task_arn", "cluster")

    def __init__(
        self,
        *,
        task_arn: str,
        cluster: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        essential_containers: list[str] | None = None,
        poll_interval: float = 15,
        events_queue: str | None = None,
        reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.task_arn = task_arn
        self.cluster = cluster
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.essential_containers = essential_containers
        self.poll_interval = poll_interval
        self.events_queue = events_queue
        self.reconcile_interval = reconcile_interval

    def execute(self, context: Any) -> None:
        self.defer(
            trigger=EcsTaskWaitTrigger.waiting_for(self, self.task_arn, kill_reason=None),  # not ours to stop
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Any) -> bool:  # the wait always defers; BaseSensorOperator requires the method
        raise NotImplementedError("EcsTaskCompletionSensor always defers")

    def execute_complete(self, context: Any, event: WaitEvent | None = None) -> dict[str, Any]:
        assert event is not None  # the trigger always sends one
        task = event["task"]
        if event["status"] == WaitStatus.MISSING or task is None:
            outcome = judge_missing(event["task_arn"])
        else:
            essential: Collection[str] | None = self.essential_containers
            if essential is None:
                ecs = client("ecs", self.aws_conn_id, self.region_name)
                essential = essential_containers(ecs, task)
            outcome = judge_task(task, essential=essential)
        self.log.info("ECS task %s: %s", event["task_arn"], outcome.describe())
        if not outcome.succeeded:
            raise AirflowFailException(outcome.describe())
        return outcome.to_dict()
