"""What a try reports: the facts of its run (``StepRun``), read from its ECS task and its log; its audit
record and metrics, once per ECS task however many tries hold it; and its "running late" alert.

``step`` is the ``EcsJobOperator`` (its ``reporting``, clients and ``arn``); ``context`` Airflow's task
context, of which only ``ti`` is read.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from ecsjobs import aws
from ecsjobs.decisions.outcome import Outcome, OutcomeClass
from ecsjobs.ecs import EcsTask, moment
from ecsjobs.execution import provider
from ecsjobs.execution.links import log_stream_url
from ecsjobs.execution.taskdefs import definition
from ecsjobs.reporting import audit, claims, metrics
from ecsjobs.reporting.alerts import LATE_FACTOR, Route, step_late, step_message
from ecsjobs.reporting.cost import Estimate, estimate
from ecsjobs.reporting.steprun import StepRun, task_duration, task_stopped_at

# Seconds a try waits for the audit record of a result another try claimed (``report``) before writing it.
CLAIM_GRACE = 15.0


@dataclass(frozen=True)
class Reporting:
    """What a step's tries report, and where.

    :param environment: the catalog environment's name (a metrics dimension, in the audit record).
    :param metrics_namespace: CloudWatch namespace of the per-step metrics; None publishes none.
    :param audit_log_group: CloudWatch Logs group of the audit records; None writes none.
    :param records_field: summary-line field with the records processed (``metrics.DEFAULT_RECORDS_FIELD``).
    :param errors_field: summary-line field with the error count (``metrics.DEFAULT_ERRORS_FIELD``).
    :param logs_insights_query: read records and errors with this Logs Insights query instead.
    :param expected_duration: how long the step usually runs; past 1.5x of it, ``late_alert`` is sent.
    :param late_alert: where the "running late" alert goes (None sends none).
    :param pricing: the region's prices (``ecsjobs.reporting.cost.pricing_for``) to estimate what each run
        cost; None estimates nothing.
    """

    environment: str = ""
    metrics_namespace: str | None = None
    audit_log_group: str | None = None
    records_field: str | None = None
    errors_field: str | None = None
    logs_insights_query: str | None = None
    expected_duration: timedelta | None = None
    late_alert: Route | None = None
    pricing: dict[str, Any] | None = None


def step_run(
    step: Any,
    context: Any,
    outcome: Outcome | None,
    launch: str,
    final: bool,
    task: EcsTask | None = None,
    lines: list[str] | tuple[str, ...] = (),
    output: Any = None,
    adopted_from: int | None = None,
) -> StepRun:
    """The facts of this try, for the audit record, the metrics and the alerts."""
    records, errors = _counts(step, output, task)
    logs_url = None
    if provider.logs_enabled(step) and step.arn:
        region = step.awslogs_region or step.hook.conn_region_name
        logs_url = log_stream_url(region, step.awslogs_group, provider.log_stream(step))
    return StepRun.of(
        context,
        outcome,
        cost=_estimate(step, task),
        task_arn=step.arn,
        environment=step.reporting.environment,
        launch=launch,
        fallback=launch == "on_demand",
        duration_seconds=task_duration(task),
        records=records,
        errors=errors,
        final=final,
        adopted_from=adopted_from,
        last_lines=list(lines),
        log_url=getattr(context["ti"], "log_url", None),
        logs_console_url=logs_url,
    )


def report(step: Any, context: Any, run: StepRun, task: EcsTask | None) -> StepRun:
    """XCom, metrics and audit record of a try with a result; the last two never fail the step. Returns the
    run as reported.

    An ECS task's result is reported once, by the first try to claim it (``ecsjobs.reporting.claims``): a
    try that adopts the result of a try Airflow lost, or runs beside it on another worker, reports (and
    alerts) nothing the other did, unless the claimer's audit record is still missing ``CLAIM_GRACE`` later.
    """
    record = run.record()
    context["ti"].xcom_push(key="ecs_run", value=record)
    group = step.reporting.audit_log_group
    logs = _client(step, "logs") if group else None
    if logs and task and not claims.claim(logs, group, "result", record["job"], step.arn):
        # Another try claimed it: it writes the record within moments, unless it died first.
        if audit.reported(logs, group, record, task_stopped_at(task), within=CLAIM_GRACE):
            step.log.info("ECS task %s's result was reported by another try; not again", step.arn)
            return replace(run, reported_before=True)
        step.log.warning("The try that claimed ECS task %s's result never reported it: reporting", step.arn)
    if step.reporting.metrics_namespace:
        metrics.publish(
            _client(step, "cloudwatch"), step.reporting.metrics_namespace, metrics.step_metric_data(run)
        )
    if logs:
        audit.write(logs, group, record)
    return run


def late_alert(step: Any, context: Any, launch: str, started: float) -> dict[str, Any] | None:
    """The "running late" alert the trigger sends if the task still runs at 1.5x its expected duration."""
    route, expected = step.reporting.late_alert, step.reporting.expected_duration
    if not (route and expected and "late" in route.events):
        return None
    late_after = expected * LATE_FACTOR
    run = step_run(step, context, None, launch, final=False)
    note = f"Still running after {late_after} (expected about {expected})."
    once = {"group": step.reporting.audit_log_group, "job": context["ti"].dag_id, "key": step.arn}
    return {
        "at": started + late_after.total_seconds(),
        "slack_conn_id": route.slack_conn_id,
        "message": step_message("late", route.channel, run, note=note).to_dict(),
        **({"claim": once} if step.reporting.audit_log_group else {}),
    }


def alert_late_after_all(step: Any, context: Any, launch: str, task: EcsTask) -> None:
    """The "running late" alert of an adopted task that ran past its time: owed, once, if the trigger that
    sends it never ran (the earlier try's worker was lost before it deferred)."""
    alert = late_alert(step, context, launch, created(task) or time.time())
    stopped = task_stopped_at(task)
    if alert and stopped and stopped.timestamp() > alert["at"]:
        asyncio.run(step_late(alert, step.aws_conn_id, step.region_name))


def last_lines(step: Any, outcome: Outcome) -> list[str]:
    """The container's last log lines: the summary line on success, the error's context on failure."""
    if not provider.logs_enabled(step) or not step.arn or outcome.cls == OutcomeClass.NO_CAPACITY:
        return []
    count = 1 if outcome.succeeded else step.number_logs_exception
    try:
        return provider.last_log_lines(step, count)
    except Exception:  # the logs are a courtesy: never let them hide the outcome
        step.log.warning("Could not read the task's last log lines", exc_info=True)
        return []


def parsed(line: str) -> Any:
    """The last log line, parsed when it is the job's JSON summary: the step's XCom return value, so a later
    step can template an output location or count it logged."""
    try:
        return json.loads(line)
    except ValueError:
        return line


def created(task: EcsTask | None) -> float | None:
    """When ECS accepted the task (RunTask), epoch seconds."""
    return moment(task["createdAt"]).timestamp() if task and task.get("createdAt") else None


def _estimate(step: Any, task: EcsTask | None) -> Estimate | None:
    """What the task cost, at the pinned prices; the task definition (already described to judge the
    outcome) gives the architecture and storage when the task does not."""
    if not (step.reporting.pricing and task and task.get("stoppedAt")):
        return None
    described = definition(step.client, task)
    return estimate(
        task,
        step.reporting.pricing,
        described.cpu_architecture if described else None,
        described.storage_gib if described else None,
    )


def _counts(step: Any, output: Any, task: EcsTask | None) -> tuple[Any, Any]:
    if not (
        step.reporting.logs_insights_query and task and task.get("startedAt") and provider.logs_enabled(step)
    ):
        return metrics.summary_counts(output, step.reporting.records_field, step.reporting.errors_field)
    query = metrics.insights_query(step.reporting.logs_insights_query, provider.log_stream(step))
    try:
        start, end = (moment(task[k]) for k in ("startedAt", "stoppedAt"))
        region = step.awslogs_region or step.region_name
        return metrics.insights_counts(step.aws_conn_id, region, step.awslogs_group, query, start, end)
    except Exception:  # counts are metrics: a failed query never fails the step
        step.log.warning("Logs Insights query for records and errors failed", exc_info=True)
        return None, None


def _client(step: Any, service: str) -> Any:
    """This process's client of a side channel (``logs``, ``cloudwatch``) with the step's connection,
    region and botocore config, its retries capped (``aws.SIDE_CHANNEL_RETRIES``)."""
    return aws.side_channel(service, step.aws_conn_id, step.region_name, step.botocore_config)
