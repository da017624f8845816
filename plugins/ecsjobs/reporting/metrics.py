"""CloudWatch metrics of the jobs: per step run from the run operator, per pipeline run from an operator.

Names, units and dimensions are the contract the alarms and the dashboard (``ecsjobs.deploy.monitoring``) rely
on. Records and errors come from the job's JSON summary line (the last line it logs), with field names per
job; on real AWS a Logs Insights query may read them instead. Publishing never fails a job: errors are logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from ecsjobs import aws
from ecsjobs.catalog.models import SPOT_LAUNCHES
from ecsjobs.decisions.outcome import OutcomeClass
from ecsjobs.reporting.steprun import StepRun

if TYPE_CHECKING:
    from types_boto3_cloudwatch.literals import StandardUnitType
    from types_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDatumTypeDef

log = logging.getLogger(__name__)

DEFAULT_RECORDS_FIELD = "records_processed"
DEFAULT_ERRORS_FIELD = "errors"
INSIGHTS_TIMEOUT = 30  # seconds a Logs Insights query may take before the counts are given up

# The metrics contract: what every run publishes (``dimensions``), and what the alarms and the dashboard of
# ``ecsjobs.deploy.monitoring`` read. An alarm on a name or dimension no run publishes would never fire.
DURATION = "Duration"
RECORDS = "RecordsProcessed"
ERRORS = "Errors"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SPOT_INTERRUPTIONS = "SpotInterruptions"
ON_DEMAND_FALLBACKS = "OnDemandFallbacks"
ESTIMATED_COST = "EstimatedCost"  # USD, at the pinned prices (``ecsjobs.reporting.cost``)
UNITS: dict[str, StandardUnitType] = {
    DURATION: "Seconds",
    RECORDS: "Count",
    ERRORS: "Count",
    SUCCEEDED: "Count",
    FAILED: "Count",
    SPOT_INTERRUPTIONS: "Count",
    ON_DEMAND_FALLBACKS: "Count",
    ESTIMATED_COST: "None",  # CloudWatch has no currency unit
}
PIPELINE_STEP = "pipeline"  # the Step dimension of a pipeline's totals


def summary_counts(summary: Any, records_field: str | None, errors_field: str | None) -> tuple[Any, Any]:
    """Records and errors from the job's summary (a dict parsed from its last log line), None if absent."""
    if not isinstance(summary, dict):
        return None, None
    return (
        _number(summary.get(records_field or DEFAULT_RECORDS_FIELD)),
        _number(summary.get(errors_field or DEFAULT_ERRORS_FIELD)),
    )


def dimensions(job: str, step: str, environment: str) -> list[DimensionTypeDef]:
    """The dimensions of every metric of a step's runs (``PIPELINE_STEP`` for a pipeline's totals)."""
    return [
        {"Name": "Job", "Value": job},
        {"Name": "Step", "Value": step},
        {"Name": "Environment", "Value": environment},
    ]


def metric_data(
    job: str, step: str, environment: str, values: dict[str, float | None]
) -> list[MetricDatumTypeDef]:
    """PutMetricData entries of the contract's metrics; a value of None (not known) is left out."""
    return [
        {
            "MetricName": name,
            "Dimensions": dimensions(job, step, environment),
            "Value": value,
            "Unit": UNITS[name],
        }
        for name, value in values.items()
        if value is not None
    ]


def step_metric_data(run: StepRun) -> list[MetricDatumTypeDef]:
    """One PutMetricData batch for a step run: duration, records, errors, result, Spot, fallback, cost."""
    return metric_data(
        run.job,
        run.step,
        run.environment,
        {
            DURATION: run.duration_seconds,
            RECORDS: run.records,
            ERRORS: run.errors,
            SUCCEEDED: float(run.succeeded),
            # A failed try that will be retried is not yet a failed step: the failure alarm counts final ones.
            FAILED: float(run.final and not run.succeeded),
            SPOT_INTERRUPTIONS: float(
                run.outcome is OutcomeClass.INFRASTRUCTURE_LOSS and run.launch in SPOT_LAUNCHES
            ),
            ON_DEMAND_FALLBACKS: float(run.fallback),
            ESTIMATED_COST: run.cost.usd if run.cost else None,
        },
    )


def publish(client: Any, namespace: str, data: Sequence[MetricDatumTypeDef]) -> bool:
    """PutMetricData in one call with the CloudWatch ``client``; False (and a logged warning) when
    CloudWatch refused it."""
    try:
        client.put_metric_data(Namespace=namespace, MetricData=data)
    except Exception:  # metrics are a side channel: they never fail the job
        log.warning("Could not publish %d metrics to %s", len(data), namespace, exc_info=True)
        return False
    log.info("Published %s to CloudWatch namespace %s", ", ".join(d["MetricName"] for d in data), namespace)
    return True


def insights_query(query: str, log_stream: str) -> str:
    """The job's Logs Insights query narrowed to one task's log stream (it must return records/errors)."""
    return f"filter @logStream = {json.dumps(log_stream)}\n| {query.strip()}"


def insights_counts(
    aws_conn_id: str | None,
    region: str | None,
    log_group: str,
    query: str,
    start: datetime,
    end: datetime,
) -> tuple[Any, Any]:
    """Run a Logs Insights query over the task's lifetime; the last row's ``records`` and ``errors``."""
    client = aws.side_channel("logs", aws_conn_id, region)
    margin = timedelta(seconds=60)
    rows = aws.logs_insights(client, log_group, query, start - margin, end + margin, INSIGHTS_TIMEOUT)
    if not rows:
        return None, None
    return _number(rows[-1].get("records")), _number(rows[-1].get("errors"))


class EcsJobMetricsOperator(BaseOperator):
    """Publish a pipeline run's totals: its duration so far, records and errors summed over its steps.

    Placed as a pipeline's last step (the factory adds it as a teardown, so it runs whatever the steps'
    result and does not change the run's state), or on its own in any DAG after ``EcsJobOperator`` tasks.
    The data carry the dimensions Job, Step (``step_name``) and Environment like the per-step metrics.

    :param step_task_ids: the ``EcsJobOperator`` tasks whose ``ecs_run`` XCom to sum.
    """

    template_fields: Sequence[str] = ("step_task_ids",)
    ui_color = "#e7f5ff"

    def __init__(
        self,
        *,
        step_task_ids: list[str],
        aws_conn_id: str | None,
        region_name: str | None,
        namespace: str,
        environment: str,
        step_name: str = PIPELINE_STEP,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.step_task_ids = step_task_ids
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.namespace = namespace
        self.environment = environment
        self.step_name = step_name

    def execute(self, context: Any) -> dict[str, Any]:
        ti, dag_run = context["ti"], context["dag_run"]
        runs = [
            run
            for task_id in self.step_task_ids
            for run in _as_list(ti.xcom_pull(task_ids=task_id, key="ecs_run", map_indexes=None))
            if isinstance(run, dict)
        ]
        started = dag_run.start_date or datetime.now(UTC)
        totals = {
            "job": ti.dag_id,
            "steps": len(runs),
            "duration_seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
            "records": _sum(run.get("records") for run in runs),
            "errors": _sum(run.get("errors") for run in runs),
            "failed_steps": sum(1 for run in runs if run.get("outcome") != "succeeded"),
            "estimated_cost": _sum(run.get("estimated_cost") for run in runs),
        }
        values = {
            DURATION: totals["duration_seconds"],
            RECORDS: totals["records"],
            ERRORS: totals["errors"],
            SUCCEEDED: float(totals["failed_steps"] == 0),
            FAILED: float(totals["failed_steps"] > 0),
            ESTIMATED_COST: totals["estimated_cost"],
        }
        self.log.info("Pipeline totals: %s", json.dumps(totals))
        data = metric_data(ti.dag_id, self.step_name, self.environment, values)
        publish(aws.side_channel("cloudwatch", self.aws_conn_id, self.region_name), self.namespace, data)
        return totals


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
