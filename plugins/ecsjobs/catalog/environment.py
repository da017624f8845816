"""``config/environments/<name>.yaml``: what differs per deployment (AWS connection, region, cluster,
networks, Slack, metrics namespace, audit log group, task events), and the pool of its cluster."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field

from ecsjobs.catalog.models import Delay, Duration, Strict, quoted_number
from ecsjobs.ecs import resource_name


class Network(Strict):
    """A named set of awsvpc settings that steps can choose instead of the environment's default network."""

    subnets: list[str] | None = Field(default=None, min_length=1, description="Subnet ids.")
    security_groups: list[str] | None = Field(default=None, min_length=1, description="Security group ids.")
    assign_public_ip: bool | None = Field(default=None, description="Give the task a public IP.")


class TaskEvents(Strict):
    """Learn of task ends from ECS's task state change events through SQS; DescribeTasks only reconciles."""

    queue: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,80}$",
        description="SQS queue (name) that an EventBridge rule fills with the cluster's STOPPED task events; "
        "`python -m ecsjobs sync-monitoring` creates both.",
    )
    reconcile_interval: Duration = Field(
        default=timedelta(seconds=60),
        description="How often waiting steps still ask ECS for their tasks' state, for lost events.",
    )


class Environment(Strict):
    """What differs per deployment: where the jobs run and where their signals go."""

    aws_conn_id: str = Field(description="Airflow connection id for AWS.")
    region: str = Field(description="AWS region of the cluster.")
    cluster: str = Field(description="ECS cluster name or ARN the jobs run on.")
    subnets: list[str] = Field(min_length=1, description="Subnets for awsvpc networking.")
    security_groups: list[str] = Field(min_length=1, description="Security groups for awsvpc networking.")
    assign_public_ip: bool = Field(default=False, description="Give tasks a public IP (public subnets only).")
    ec2_spot_capacity_provider: str = Field(
        default="ec2-spot",
        description="Name of the cluster's EC2 Spot (Auto Scaling group) capacity provider.",
    )
    ec2_capacity_provider: str | None = Field(
        default=None,
        description="EC2 on-demand capacity provider; without it `ec2` steps use the EC2 launch type.",
    )
    ec2_vcpu_hour: float | None = Field(
        default=None,
        gt=0,
        description="USD per vCPU-hour of the cluster's EC2 capacity, to estimate what a step on EC2 costs "
        "(its share by vCPU); without it EC2 runs are reported as EC2 capacity, not priced.",
    )
    poll_interval: Duration = Field(
        default=timedelta(seconds=15), description="How often waiting steps ask ECS for their task's state."
    )
    resume_delay: Delay = Field(
        default=timedelta(seconds=10),
        description="Shortest time between a step starting its ECS task and resuming once the task stopped. "
        "Airflow 3.2 and 3.3 can fail a step that resumes within seconds (apache/airflow#72716); the retry "
        "adopts the task's result either way, this makes it rare.",
    )
    slack_conn_id: str = Field(description="Airflow connection id of the Slack API connection.")
    slack_channel: str = Field(description="Default Slack channel for alerts.")
    metrics_namespace: str = Field(description="CloudWatch namespace for job metrics.")
    audit_log_group: str = Field(description="CloudWatch Logs group receiving one audit record per step run.")
    max_running_tasks: int = Field(
        default=32,
        ge=1,
        description="ECS tasks this project runs at once on the cluster (the size of its Airflow pool), so a "
        "backfill cannot exhaust the account's Fargate quota or the RunTask rate.",
    )
    networks: dict[str, Network] = Field(
        default_factory=dict, description="Named networks a step may pick with `network: <name>`."
    )
    account_id: Annotated[str, BeforeValidator(quoted_number)] = Field(
        pattern=r"^[0-9]{12}$",
        description="AWS account id (for the ARNs of the IAM policy and console links), quoted.",
    )
    task_roles: list[str] = Field(
        default_factory=list,
        description="ARNs of the task and execution roles the jobs' task definitions use: the only roles the "
        "Airflow role may pass to ECS.",
    )
    alarm_topic_arn: str | None = Field(
        default=None, description="SNS topic the CloudWatch alarms notify; without it alarms have no action."
    )
    dashboard_name: str = Field(
        default="batch-jobs", description="Name of the CloudWatch dashboard with every job's metrics."
    )
    task_events: TaskEvents | None = Field(
        default=None,
        description="Opt in to event-driven completion: steps learn that their task stopped within a second.",
    )


def pool_name(env: Environment) -> str:
    """The Airflow pool that caps this project's concurrent ECS tasks on the environment's cluster."""
    return "ecs_" + re.sub(r"[^A-Za-z0-9_.-]", "_", resource_name(env.cluster))
