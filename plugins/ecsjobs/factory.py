"""Turn the catalog into Airflow DAGs: one DAG per job, one ``EcsJobOperator`` per step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG

from ecsjobs.catalog import Catalog, JobSpec
from ecsjobs.models import Environment, Step
from ecsjobs.operators import EcsJobOperator

DEFAULT_LOG_STREAM_PREFIX = "ecs"


def build_dags(catalog: Catalog) -> dict[str, DAG]:
    return {job_id: build_dag(spec, catalog.environment) for job_id, spec in catalog.jobs.items()}


def build_dag(spec: JobSpec, env: Environment) -> DAG:
    job = spec.job
    with DAG(
        dag_id=spec.id,
        description=job.description.strip().splitlines()[0],
        doc_md=job.description,
        schedule=job.schedule,
        start_date=datetime.combine(job.start_date, datetime.min.time(), tzinfo=UTC),
        catchup=bool(job.catchup),
        max_active_runs=job.max_active_runs or 16,
        tags=job.tags,
        default_args={"owner": job.owner or "airflow"},
    ) as dag:
        tasks = {
            name: EcsJobOperator(task_id=name, **step_kwargs(step, env)) for name, step in spec.steps.items()
        }
        for name, step in spec.steps.items():
            for upstream in step.depends_on:
                tasks[upstream] >> tasks[name]
    return dag


def step_kwargs(step: Step, env: Environment) -> dict[str, Any]:
    """The ``EcsRunTaskOperator`` arguments for one step in one environment."""
    kwargs: dict[str, Any] = {
        "cluster": env.cluster,
        "task_definition": step.task_definition,
        "overrides": overrides(step),
        "network_configuration": {
            "awsvpcConfiguration": {
                "subnets": list(env.subnets),
                "securityGroups": list(env.security_groups),
                "assignPublicIp": "ENABLED" if env.assign_public_ip else "DISABLED",
            }
        },
        "aws_conn_id": env.aws_conn_id,
        "region_name": env.region,
        "container_name": step.container,
        "awslogs_group": step.log_group or f"/ecs/{step.family}",
        "awslogs_stream_prefix": step.log_stream_prefix or DEFAULT_LOG_STREAM_PREFIX,
        "awslogs_region": env.region,
        "platform_version": step.platform_version,
        "waiter_delay": max(1, int(env.poll_interval.total_seconds())),
        **launch_kwargs(step, env),
    }
    if step.retries is not None:
        kwargs["retries"] = step.retries
    if step.retry_delay is not None:
        kwargs["retry_delay"] = step.retry_delay
    if step.timeout is not None:
        kwargs["execution_timeout"] = step.timeout
    return kwargs


def overrides(step: Step) -> dict[str, Any]:
    """RunTask ``overrides``: environment and command go to the step's container, cpu/memory to the task."""
    container: dict[str, Any] = {"name": step.container}
    if step.environment:
        container["environment"] = [{"name": k, "value": v} for k, v in step.environment.items()]
    if step.command is not None:
        container["command"] = list(step.command)
    result: dict[str, Any] = {"containerOverrides": [container]}
    if step.cpu is not None:
        result["cpu"] = str(step.cpu)
    if step.memory is not None:
        result["memory"] = str(step.memory)
    return result


def launch_kwargs(step: Step, env: Environment) -> dict[str, Any]:
    """Spot goes through capacity providers; on-demand uses the launch type (the two are exclusive)."""
    if step.launch == "fargate":
        return {"launch_type": "FARGATE"}
    if step.launch == "fargate_spot":
        return {
            "launch_type": None,
            "capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        }
    if step.launch == "ec2_spot":
        return {
            "launch_type": None,
            "capacity_provider_strategy": [{"capacityProvider": env.ec2_spot_capacity_provider, "weight": 1}],
        }
    if env.ec2_capacity_provider:
        return {
            "launch_type": None,
            "capacity_provider_strategy": [{"capacityProvider": env.ec2_capacity_provider, "weight": 1}],
        }
    return {"launch_type": "EC2"}
