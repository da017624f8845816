"""The catalog's schema: what a job file, the defaults file and an environment file may contain.

Strict pydantic models: unknown keys are errors, so a typo never silently becomes a default.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Launch = Literal["fargate", "fargate_spot", "ec2_spot", "ec2"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(value: object) -> object:
    """Accept "90s", "30m", "2h", "1d" or a number of seconds, as people write them in YAML."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if isinstance(value, str):
        raise ValueError(f"expected a duration like '90s', '30m', '2h' or '1d', got {value!r}")
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    poll_interval: Duration = Field(
        default=timedelta(seconds=15), description="How often waiting steps ask ECS for their task's state."
    )
    slack_conn_id: str = Field(description="Airflow connection id of the Slack API connection.")
    slack_channel: str = Field(description="Default Slack channel for alerts.")
    metrics_namespace: str = Field(description="CloudWatch namespace for job metrics.")
    audit_log_group: str = Field(description="CloudWatch Logs group receiving one audit record per step run.")


class StepSettings(Strict):
    """Settings of an ECS step. They may be set in defaults, on a job (for all its steps) or on a step."""

    task_definition: str | None = Field(
        default=None, description="Task definition family, or family:revision to pin one revision."
    )
    container: str | None = Field(
        default=None, description="Name of the essential container that runs the job (receives overrides)."
    )
    command: list[str] | None = Field(
        default=None, description="Replaces the container's command; each argument is templated separately."
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables merged into the container's; values are Jinja templates.",
    )
    cpu: int | None = Field(default=None, description="Task-level CPU units override (e.g. 1024).")
    memory: int | None = Field(default=None, description="Task-level memory override in MiB (e.g. 2048).")
    launch: Launch | None = Field(default=None, description="Where the task runs.")
    platform_version: str | None = Field(default=None, description="Fargate platform version, e.g. LATEST.")
    retries: int | None = Field(default=None, ge=0, description="Airflow retries of the step.")
    retry_delay: Duration | None = Field(default=None, description="Delay before a retry.")
    timeout: Duration | None = Field(default=None, description="Longest a step may run before it is stopped.")
    log_group: str | None = Field(
        default=None, description="awslogs group of the container; defaults to /ecs/<family>."
    )
    log_stream_prefix: str | None = Field(default=None, description="awslogs-stream-prefix of the container.")


class Step(StepSettings):
    """One ECS task in a job, with settings layered over the job's and the defaults'."""

    task_definition: str = Field(
        description="Task definition family, or family:revision to pin one revision."
    )
    container: str = Field(
        description="Name of the essential container that runs the job (receives overrides)."
    )
    launch: Launch = Field(default="fargate", description="Where the task runs.")
    depends_on: list[str] = Field(default_factory=list, description="Steps that must succeed first.")

    @property
    def family(self) -> str:
        return (self.task_definition or "").split(":")[0]


class JobSettings(StepSettings):
    """Job-level keys that also make sense organisation-wide (the defaults file)."""

    owner: str | None = Field(default=None, description="Team or person responsible for the job.")
    tags: list[str] = Field(default_factory=list, description="Airflow DAG tags.")
    catchup: bool | None = Field(default=None, description="Create runs for missed intervals.")
    max_active_runs: int | None = Field(default=None, ge=1, description="Concurrent runs of the job.")


class Job(JobSettings):
    """A job file: one scheduled job, made of one or more steps."""

    description: str = Field(description="What the job does; shown in the Airflow UI.")
    schedule: str | None = Field(
        default=None, description="Cron expression or Airflow preset; none = manual."
    )
    start_date: date = Field(description="First logical date the job may run for.")
    steps: dict[str, dict] | None = Field(
        default=None, description="Named steps; a job without steps is one step called `run`."
    )
