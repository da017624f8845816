"""Turn the catalog into Airflow DAGs: one DAG per job, one ``EcsJobOperator`` per step.

A job with a ``matrix`` runs its steps in a mapped task group, once per combination of the matrix values;
the combinations are computed at run time so they can come from the run's params. A pipeline (more than one
step) ends with a teardown that publishes the run's totals. Alerts are the steps' callbacks and, for a job
with a ``deadline``, an Airflow Deadline Alert.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task_group
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from ecsjobs.build.matrix import MatrixOperator
from ecsjobs.catalog.checks import end_datetime, param_schema, start_datetime
from ecsjobs.catalog.environment import Environment, pool_name
from ecsjobs.catalog.loading import Catalog, JobSpec
from ecsjobs.catalog.models import Step, StepSettings, step_order
from ecsjobs.catalog.problems import Problem
from ecsjobs.execution.operators import EcsJobOperator
from ecsjobs.execution.results import Reporting
from ecsjobs.reporting.alerts import DEFAULT_EVENTS, Route, StepAlertNotifier, run_late
from ecsjobs.reporting.cost import pricing_for
from ecsjobs.reporting.metrics import EcsJobMetricsOperator

DEFAULT_LOG_STREAM_PREFIX = "ecs"
MAX_MESSAGE = 1000  # characters of an Airflow error quoted in a problem


def build_dags(catalog: Catalog, register: bool = True) -> dict[str, DAG]:
    """One DAG per job, each built on its own and checked as the DAG processor checks it.

    ``register=False`` builds them without registering them with the DAG file being parsed, for a file that
    only checks them (``dags/catalog_errors.py``): a DAG built in a ``with`` block belongs to the file
    whatever the file does with it, and two files with the same DAG ids are an import error.

    The catalog's validation already refuses what Airflow would (task and DAG ids, param defaults); should
    Airflow still refuse a job's DAG, that job moves from ``catalog.jobs`` to ``catalog.broken`` with the
    reason, naming its file, and every other job still loads: an exception here would be the import error of
    the DAG file and take all the jobs' DAGs with it.
    """
    dags = {}
    pricing = pricing_for(catalog.prices, catalog.environment)
    for job_id, spec in list(catalog.jobs.items()):
        try:
            dag = build_dag(spec, catalog.environment, catalog.environment_name, register, pricing)
            dag.validate()
        except Exception as error:
            del catalog.jobs[job_id]
            message = f"Airflow refuses the job's DAG: {type(error).__name__}: {error}"[:MAX_MESSAGE]
            catalog.broken[spec.source] = [Problem(spec.source, 1, 1, "", message)]
            continue
        dags[job_id] = dag
    return dags


def build_dag(
    spec: JobSpec,
    env: Environment,
    env_name: str,
    register: bool = True,
    pricing: dict[str, Any] | None = None,
) -> DAG:
    """The job's DAG; ``pricing`` (``ecsjobs.reporting.cost.pricing_for``) lets its steps estimate what runs
    cost."""
    job = spec.job
    with DAG(
        auto_register=register,
        dag_id=spec.id,
        description=job.description.strip().splitlines()[0],
        doc_md=_doc(spec),
        schedule=spec.schedule,
        start_date=start_datetime(job),
        end_date=end_datetime(job),
        catchup=bool(job.catchup),
        is_paused_upon_creation=job.paused,
        max_active_runs=job.max_active_runs or 16,
        tags=job.tags,
        params={
            name: Param(p.default, description=p.description, **param_schema(job, name))
            for name, p in job.params.items()
        },
        default_args={"owner": job.owner or "airflow"},
        **_deadline(job, env),
    ) as dag:
        if job.matrix:
            combinations = MatrixOperator(task_id="matrix", axes=dict(job.matrix))

            @task_group(group_id="each")
            def each(combination: dict[str, Any]) -> Any:  # the group's steps, in order
                return _steps(spec, env, env_name, pricing, matrix=combination)

            steps: Any = each.expand(combination=combinations.output)
        else:
            steps = _steps(spec, env, env_name, pricing)
        if len(spec.steps) > 1:
            totals = EcsJobMetricsOperator(
                task_id="pipeline_metrics",
                step_task_ids=[task.task_id for task in dag.tasks if isinstance(task, EcsJobOperator)],
                aws_conn_id=env.aws_conn_id,
                region_name=env.region,
                namespace=env.metrics_namespace,
                environment=env_name,
            )
            steps >> totals.as_teardown()
    return dag


def _steps(
    spec: JobSpec, env: Environment, env_name: str, pricing: dict[str, Any] | None, matrix: Any = None
) -> list[EcsJobOperator]:
    """The job's steps in dependency order; returns its last ones (those nothing depends on)."""
    tasks: dict[str, EcsJobOperator] = {}
    graph = {name: step.depends_on for name, step in spec.steps.items()}
    for name in step_order(graph):
        step = spec.steps[name]
        tasks[name] = EcsJobOperator(
            task_id=name,
            matrix=matrix,
            **step_kwargs(step, env, spec.id),
            **signal_kwargs(step, env, env_name, pricing),
        )
        for upstream in graph[name]:
            tasks[upstream] >> tasks[name]
    upstreams = {upstream for names in graph.values() for upstream in names}
    return [task for name, task in tasks.items() if name not in upstreams]


def route(settings: StepSettings, env: Environment) -> Route:
    """Where a step's (or a job's) alerts go and which events they cover."""
    alerts = settings.alerts
    return Route(
        slack_conn_id=env.slack_conn_id,
        channel=alerts and alerts.channel or env.slack_channel,
        events=tuple(alerts and alerts.events or DEFAULT_EVENTS),
    )


def signal_kwargs(
    step: Step, env: Environment, env_name: str, pricing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Where a step's signals go: audit log, metrics, cost, Slack alerts (as callbacks and the late alert)."""
    alerts = route(step, env)
    callbacks = {
        "on_failure_callback": ("failure", {"failure", "timeout"}),
        "on_retry_callback": ("retry", {"retry"}),
        "on_success_callback": ("recovery", {"recovery"}),
    }
    return {
        "reporting": Reporting(
            environment=env_name,
            metrics_namespace=env.metrics_namespace,
            audit_log_group=env.audit_log_group,
            records_field=step.metrics.records_field if step.metrics else None,
            errors_field=step.metrics.errors_field if step.metrics else None,
            logs_insights_query=step.metrics.logs_insights_query if step.metrics else None,
            expected_duration=step.expected_duration,
            late_alert=alerts,
            pricing=pricing,
        ),
        **{
            callback: [StepAlertNotifier(kind=kind, route=alerts)]
            for callback, (kind, events) in callbacks.items()
            if events & set(alerts.events)
        },
    }


def _deadline(job: Any, env: Environment) -> dict[str, Any]:
    """A Deadline Alert for a job with ``alerts.deadline``: a run still going that long after it was queued
    is late (queued, not logical date, so backfills of old dates are judged by how long they take)."""
    alerts = route(job, env)
    if not (job.alerts and job.alerts.deadline and "late" in alerts.events):
        return {}
    kwargs = {
        "slack_conn_id": alerts.slack_conn_id,
        "channel": alerts.channel,
        "deadline": str(job.alerts.deadline),
        "claim": {"aws_conn_id": env.aws_conn_id, "region_name": env.region, "group": env.audit_log_group},
    }
    return {
        "deadline": DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=job.alerts.deadline,
            callback=AsyncCallback(run_late, kwargs=kwargs),
        )
    }


def _doc(spec: JobSpec) -> str:
    entry = spec.source.read_text()
    return f"{spec.job.description}\n\nCatalog entry `{spec.source.name}`:\n\n```yaml\n{entry}```\n"


def step_kwargs(step: Step, env: Environment, job_id: str) -> dict[str, Any]:
    """The ``EcsRunTaskOperator`` arguments for one step in one environment."""
    network = env.networks[step.network] if step.network else None
    assign_public_ip = env.assign_public_ip
    if network and network.assign_public_ip is not None:
        assign_public_ip = network.assign_public_ip
    kwargs: dict[str, Any] = {
        "cluster": env.cluster,
        "task_definition": step.task_definition,
        "overrides": overrides(step),
        "network_configuration": {
            "awsvpcConfiguration": {
                "subnets": list(network and network.subnets or env.subnets),
                "securityGroups": list(network and network.security_groups or env.security_groups),
                "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
            }
        },
        "aws_conn_id": env.aws_conn_id,
        "region_name": env.region,
        "container_name": step.container,
        "awslogs_group": step.log_group or f"/ecs/{step.family}",
        "awslogs_stream_prefix": step.log_stream_prefix or DEFAULT_LOG_STREAM_PREFIX,
        "awslogs_region": env.region,
        "platform_version": step.platform_version,
        "poll_interval": env.poll_interval.total_seconds(),
        **events_kwargs(env),
        "resume_delay": (
            step.resume_delay if step.resume_delay is not None else env.resume_delay
        ).total_seconds(),
        "tags": {"job": job_id, **step.task_tags},
        "propagate_tags": None if step.propagate_tags is False else "TASK_DEFINITION",
        "pool": pool_name(env),
        "launch": step.launch,
        "on_demand": on_demand_kwargs(step, env),
        "fallback_after": 1 if step.fallback_after is None else step.fallback_after,
        "outcome_retries": step.retry_policy.model_dump(exclude_none=True) if step.retry_policy else None,
        "step_timeout": step.timeout,
        # Only infrastructure failures are retried (ecsjobs.decisions.outcome): back off as AWS asks for.
        "retry_exponential_backoff": True,
        **launch_kwargs(step, env),
    }
    if step.retries is not None:
        kwargs["retries"] = step.retries
    if step.retry_delay is not None:
        kwargs["retry_delay"] = step.retry_delay
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
        return _capacity_provider("FARGATE_SPOT")
    if step.launch == "ec2_spot":
        return _capacity_provider(env.ec2_spot_capacity_provider)
    if env.ec2_capacity_provider:
        return _capacity_provider(env.ec2_capacity_provider)
    return {"launch_type": "EC2"}


def on_demand_kwargs(step: Step, env: Environment) -> dict[str, Any] | None:
    """Where a Spot step runs once Spot has failed it: Fargate, or the on-demand EC2 capacity."""
    if step.launch == "fargate_spot":
        return {"launch_type": "FARGATE", "capacity_provider_strategy": None}
    if step.launch == "ec2_spot":
        return launch_kwargs(step.model_copy(update={"launch": "ec2"}), env)
    return None


def _capacity_provider(name: str) -> dict[str, Any]:
    return {"launch_type": None, "capacity_provider_strategy": [{"capacityProvider": name, "weight": 1}]}


def events_kwargs(env: Environment) -> dict[str, Any]:
    """Where a step's wait learns of its task's end, if the environment has task state change events."""
    if env.task_events is None:
        return {}
    return {
        "events_queue": env.task_events.queue,
        "reconcile_interval": env.task_events.reconcile_interval.total_seconds(),
    }
