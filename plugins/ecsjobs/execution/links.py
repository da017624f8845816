"""Extra links on every step: its ECS task and its CloudWatch log stream in the AWS console.

The Amazon provider's ``EcsRunTaskOperator`` has no ECS links of its own, so these follow its pattern:
``BaseAwsLink`` subclasses whose values the operator persists to XCom once the task ARN is known.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink
from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink

from ecsjobs.ecs import resource_name
from ecsjobs.execution import provider


class EcsTaskLink(BaseAwsLink):
    """The step's ECS task (the latest try's) in the ECS console."""

    name = "ECS task"
    key = "ecs_task"
    format_str = (
        BASE_AWS_CONSOLE_LINK
        + "/ecs/v2/clusters/{cluster_name}/tasks/{task_id}/configuration?region={region_name}"
    )


class EcsTaskLogsLink(CloudWatchEventsLink):
    """The step's container log stream in the CloudWatch console."""

    name = "CloudWatch logs"
    key = "ecs_task_logs"


def log_stream_url(region: str, group: str, stream: str, aws_domain: str = "aws.amazon.com") -> str:
    """The console URL of a log stream, for alerts (the same page as :class:`EcsTaskLogsLink`)."""
    return EcsTaskLogsLink().format_link(
        aws_domain=aws_domain, awslogs_region=region, awslogs_group=group, awslogs_stream_name=stream
    )


def persist_links(step: Any, context: Any) -> None:
    """Persist both links of the ECS task ``step`` (an ``EcsJobOperator``) waits for or adopted."""
    region, partition = step.hook.conn_region_name, step.hook.conn_partition
    EcsTaskLink.persist(
        context=context,
        operator=step,
        region_name=region,
        aws_partition=partition,
        cluster_name=resource_name(step.cluster),
        task_id=resource_name(step.arn),
    )
    if provider.logs_enabled(step):
        EcsTaskLogsLink.persist(
            context=context,
            operator=step,
            region_name=region,
            aws_partition=partition,
            awslogs_region=step.awslogs_region or region,
            awslogs_group=step.awslogs_group,
            awslogs_stream_name=provider.log_stream(step),
        )
