"""Extra links on every step: its ECS task and its CloudWatch log stream in the AWS console.

The Amazon provider's ``EcsRunTaskOperator`` has no ECS links of its own, so these follow its pattern:
``BaseAwsLink`` subclasses whose values the operator persists to XCom once the task ARN is known.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink
from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink


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
