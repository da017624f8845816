"""The operator that runs one catalog step as an ECS task.

A thin subclass of the Amazon provider's ``EcsRunTaskOperator``: it keeps the provider's RunTask call,
``ecs_task_arn`` XCom, extra links, CloudWatch log fetching and deferrable wait, and judges the result by the
job's own container instead of by every container of the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.exceptions import EcsOperatorError
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk.exceptions import AirflowException

# Throttled DescribeTasks calls must slow the wait down, never fail it (the provider's default gives up
# after 3 attempts): adaptive mode adds client-side rate limiting on top of the retries.
BOTOCORE_CONFIG = {"retries": {"mode": "adaptive", "max_attempts": 10}}


class EcsJobOperator(EcsRunTaskOperator):
    """Run one step of a catalog job on ECS and wait for it without holding a worker slot.

    :param container_name: the essential container whose exit code decides the step; required, because
        the provider builds the CloudWatch log stream name from it.
    :param matrix: this instance's matrix combination (``{axis: value}``); each value reaches the container
        as an environment variable named after the axis in upper case, and templates see it as ``matrix``.
    """

    template_fields: Sequence[str] = ("matrix", *EcsRunTaskOperator.template_fields)
    ui_color = "#ffd8a8"

    def __init__(self, *, container_name: str, matrix: dict[str, Any] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", True)
        kwargs.setdefault("reattach", True)
        kwargs.setdefault("botocore_config", BOTOCORE_CONFIG)
        super().__init__(container_name=container_name, **kwargs)
        self.matrix = matrix

    def render_template_fields(self, context, jinja_env=None) -> None:
        """Render ``matrix`` first so the other fields' templates can use ``{{ matrix.<axis> }}``."""
        if self.matrix is not None:
            self.matrix = self.render_template(self.matrix, context, jinja_env)
            context["matrix"] = self.matrix
        super().render_template_fields(context, jinja_env)
        if self.matrix:
            self.overrides = _with_matrix_environment(self.overrides, self.container_name, self.matrix)

    def run_task_request(self) -> dict[str, Any]:
        """The RunTask arguments of this step, as sent (also what ``python -m ecsjobs render`` prints)."""
        request: dict[str, Any] = {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "overrides": self.overrides,
            "startedBy": self._started_by or self.owner,
        }
        if self.capacity_provider_strategy:
            request["capacityProviderStrategy"] = self.capacity_provider_strategy
        elif self.launch_type:
            request["launchType"] = self.launch_type
        optional = {
            "platformVersion": self.platform_version,
            "group": self.group,
            "networkConfiguration": self.network_configuration,
            "propagateTags": self.propagate_tags,
        }
        request.update({key: value for key, value in optional.items() if value is not None})
        if self.tags:
            request["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        return request

    def _start_task(self) -> None:
        response = self.client.run_task(**self.run_task_request())
        if response["failures"]:
            raise EcsOperatorError(response["failures"], response)
        self.arn = response["tasks"][0]["taskArn"]
        self.log.info("ECS task started: %s", self.arn)

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


def _with_matrix_environment(overrides: dict, container: str, matrix: dict[str, Any]) -> dict:
    """Add ``AXIS=value`` to the container's environment; the catalog's own variables win."""
    result = {**overrides, "containerOverrides": [dict(c) for c in overrides.get("containerOverrides", [])]}
    target = next((c for c in result["containerOverrides"] if c.get("name") == container), None)
    if target is None:
        target = {"name": container}
        result["containerOverrides"].append(target)
    environment = list(target.get("environment", []))
    defined = {variable["name"] for variable in environment}
    environment += [
        {"name": axis.upper(), "value": str(value)}
        for axis, value in matrix.items()
        if axis.upper() not in defined
    ]
    target["environment"] = environment
    return result
