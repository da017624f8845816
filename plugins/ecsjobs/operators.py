"""The operator that runs one catalog step as an ECS task.

A thin subclass of the Amazon provider's ``EcsRunTaskOperator``: it keeps the provider's RunTask call,
``ecs_task_arn`` XCom, extra links, CloudWatch log fetching and deferrable wait, and judges the result by the
job's own container instead of by every container of the task.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk.exceptions import AirflowException

# Throttled DescribeTasks calls must slow the wait down, never fail it (the provider's default gives up
# after 3 attempts): adaptive mode adds client-side rate limiting on top of the retries.
BOTOCORE_CONFIG = {"retries": {"mode": "adaptive", "max_attempts": 10}}


class EcsJobOperator(EcsRunTaskOperator):
    """Run one step of a catalog job on ECS and wait for it without holding a worker slot.

    :param container_name: the essential container whose exit code decides the step; required, because
        the provider builds the CloudWatch log stream name from it.
    """

    ui_color = "#ffd8a8"

    def __init__(self, *, container_name: str, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        kwargs.setdefault("reattach", True)
        kwargs.setdefault("botocore_config", BOTOCORE_CONFIG)
        super().__init__(container_name=container_name, **kwargs)

    def _check_success_task(self) -> None:
        if not self.client or not self.arn:
            return
        response = self.client.describe_tasks(cluster=self.cluster, tasks=[self.arn])
        if response.get("failures"):
            raise AirflowException(f"ECS task {self.arn} could not be described: {response['failures']}")
        task = response["tasks"][0]
        container = next(
            (c for c in task.get("containers", []) if c.get("name") == self.container_name), None
        )
        if container is None:
            raise AirflowException(f"ECS task {self.arn} has no container named {self.container_name!r}")
        exit_code = container.get("exitCode")
        if exit_code not in (0, None):
            raise AirflowException(
                f"ECS task {self.arn}: container {self.container_name!r} exited with code {exit_code} "
                f"(stop code {task.get('stopCode')}: {task.get('stoppedReason', '')})"
                f"{self._last_log_lines()}"
            )
        super()._check_success_task()

    def _last_log_lines(self) -> str:
        if not self._aws_logs_enabled():
            return ""
        lines = self._get_task_log_fetcher().get_last_log_messages(self.number_logs_exception)
        return "\nLast log lines:\n" + "\n".join(lines) if lines else ""
