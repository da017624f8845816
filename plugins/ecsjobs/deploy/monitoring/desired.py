"""What the catalog asks CloudWatch for, as pure functions of the catalog: per step a duration alarm
above 1.5x its baseline, an error and a failure alarm; the dashboard; the saved Logs Insights queries."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from ecsjobs.catalog.loading import Catalog, JobSpec
from ecsjobs.catalog.models import Step, step_order
from ecsjobs.errors import EcsJobsError
from ecsjobs.reporting.metrics import (
    DEFAULT_ERRORS_FIELD,
    DEFAULT_RECORDS_FIELD,
    DURATION,
    ERRORS,
    ESTIMATED_COST,
    FAILED,
    RECORDS,
    dimensions,
)

log = logging.getLogger(__name__)

MANAGED_BY_TAG, MANAGED_BY = "ecsjobs:managed-by", "ecsjobs"
ENVIRONMENT_TAG, JOB_TAG = "ecsjobs:environment", "ecsjobs:job"

DURATION_FACTOR = 1.5
ALARM_PERIOD = 300  # seconds; each step run publishes one datapoint per metric when it finishes
DEFAULT_STATISTIC = "Average"
MONITORING_DAG_ID = "ecsjobs_monitoring_sync"
# The fields of an alarm this sync sets, and so compares, with the value DescribeAlarms means by omitting one.
ALARM_FIELDS: dict[str, Any] = {
    "AlarmDescription": None,
    "ActionsEnabled": True,
    "AlarmActions": [],
    "OKActions": [],
    "InsufficientDataActions": [],
    "MetricName": None,
    "Namespace": None,
    "Statistic": None,
    "Dimensions": [],
    "Period": None,
    "EvaluationPeriods": None,
    "DatapointsToAlarm": None,
    "Threshold": None,
    "ComparisonOperator": None,
    "TreatMissingData": None,
}


class MonitoringError(EcsJobsError):
    """The sync could not do everything it should; the message says what and why."""


def name_prefix(environment: str) -> str:
    """Every alarm and saved query of this environment starts with it (with the trailing slash, so that
    environment ``prod`` never claims ``prod-eu``'s)."""
    return f"ecsjobs/{environment}/"


# --- What the catalog asks for (pure functions) ---------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """A step's usual duration and where the number comes from (shown in the plan and the alarm)."""

    seconds: float
    source: str


def expected_baseline(step: Step) -> Baseline | None:
    if step.expected_duration is None:
        return None
    seconds = step.expected_duration.total_seconds()
    return Baseline(seconds, f"expected_duration {seconds:g} s")


def desired_alarms(
    catalog: Catalog, baselines: dict[tuple[str, str], Baseline | None]
) -> dict[str, dict[str, Any]]:
    """PutMetricAlarm arguments by alarm name, three per step, the duration alarm only for steps with a
    baseline (``expected_duration``, or a metric statistic when configured)."""
    env, env_name = catalog.environment, catalog.environment_name
    actions = [env.alarm_topic_arn] if env.alarm_topic_arn else []
    alarms: dict[str, dict[str, Any]] = {}
    for job_id, spec in sorted(catalog.jobs.items()):
        tags = {MANAGED_BY_TAG: MANAGED_BY, ENVIRONMENT_TAG: env_name, JOB_TAG: job_id}
        for step_name in step_names(spec):
            where = f"Step {step_name} of job {job_id} (environment {env_name})"
            common = {
                "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
                "Namespace": env.metrics_namespace,
                "Dimensions": dimensions(job_id, step_name, env_name),
                "Period": ALARM_PERIOD,
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "TreatMissingData": "notBreaching",  # no run in a period is not a problem
                "ActionsEnabled": True,
                "AlarmActions": actions,
                "OKActions": [],
                "InsufficientDataActions": [],
            }
            name = f"{name_prefix(env_name)}{job_id}/{step_name}"
            baseline = baselines.get((job_id, step_name))
            if baseline is not None:
                threshold = float(math.ceil(baseline.seconds * DURATION_FACTOR))
                alarms[f"{name}/duration"] = {
                    **common,
                    "MetricName": DURATION,
                    "Statistic": "Maximum",
                    "Threshold": threshold,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "AlarmDescription": _described(
                        f"{where} ran longer than {threshold:g} s: {DURATION_FACTOR:g}x its baseline, "
                        f"{baseline.source}."
                    ),
                }
            alarms[f"{name}/errors"] = {
                **common,
                "MetricName": ERRORS,
                "Statistic": "Sum",
                "Threshold": 0.0,
                "ComparisonOperator": "GreaterThanThreshold",
                "AlarmDescription": _described(f"{where} reported errors."),
            }
            alarms[f"{name}/failures"] = {
                **common,
                "MetricName": FAILED,
                "Statistic": "Sum",
                "Threshold": 1.0,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "AlarmDescription": _described(f"{where} failed (a try that reached a result)."),
            }
    return {name: {"AlarmName": name, **request} for name, request in alarms.items()}


def _described(text: str) -> str:
    return f"{text} Managed by `python -m ecsjobs sync-monitoring` from the job catalog; edits are undone."


def step_names(spec: JobSpec) -> list[str]:
    return step_order({name: step.depends_on for name, step in spec.steps.items()})


def log_groups(spec: JobSpec) -> list[str]:
    """The awslogs groups of a job's steps (``/ecs/<family>`` unless a step names its own)."""
    return sorted({step.log_group or f"/ecs/{step.family}" for step in spec.steps.values()})


def summary_fields(spec: JobSpec) -> tuple[list[str], list[str]]:
    """The summary-line fields holding records and errors, over the job's steps (they may differ)."""
    records, errors = [], []
    for name in step_names(spec):
        metrics = spec.steps[name].metrics
        record = metrics and metrics.records_field or DEFAULT_RECORDS_FIELD
        error = metrics and metrics.errors_field or DEFAULT_ERRORS_FIELD
        records += [record] if record not in records else []
        errors += [error] if error not in errors else []
    return records, errors


def _field(names: list[str]) -> str:
    """One Logs Insights expression for fields named differently per step (backquoted: names may hold dots
    or dashes)."""
    quoted = [f"`{name}`" for name in names]
    return quoted[0] if len(quoted) == 1 else f"coalesce({', '.join(quoted)})"


def desired_queries(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Saved Logs Insights queries by name, three per job: its last run's errors, records per run, and its
    slowest runs. The first two read the job's own log groups; the slowest runs come from the audit records,
    which hold each step run's duration, outcome, run id and launch (the job's logs hold none of those)."""
    env, env_name = catalog.environment, catalog.environment_name
    queries: dict[str, dict[str, Any]] = {}
    for job_id, spec in sorted(catalog.jobs.items()):
        prefix = f"{name_prefix(env_name)}{job_id}/"
        records, errors = summary_fields(spec)
        queries[prefix + "last-run-errors"] = {
            "queryString": _query(
                f"{job_id}: error lines and error counts, newest first. One log stream per ECS task: the "
                "top stream is the last run's.",
                "fields @timestamp, @logStream, @message",
                "filter @message like /(?i)\\b(error|exception|traceback|fatal|critical)\\b/ "
                f"or {_field(errors)} > 0",
                "sort @timestamp desc",
                "limit 200",
            ),
            "logGroupNames": log_groups(spec),
        }
        queries[prefix + "records-per-run"] = {
            "queryString": _query(
                f"{job_id}: records and errors of each step run, from its JSON summary line.",
                f"fields @timestamp, @logStream, {_field(records)} as records, {_field(errors)} as errors",
                f"filter ispresent({_field(records)})",
                "sort @timestamp desc",
                "limit 200",
            ),
            "logGroupNames": log_groups(spec),
        }
        queries[prefix + "slowest-runs"] = {
            "queryString": _query(
                f"{job_id}: its slowest step runs, from the audit records (one per finished step run).",
                "fields @timestamp, step, map_index, run_id, try_number, outcome, launch, duration_seconds, "
                "task_arn",
                f'filter job = "{job_id}" and ispresent(duration_seconds)',
                "sort duration_seconds desc",
                "limit 50",
            ),
            "logGroupNames": [env.audit_log_group],
        }
    return queries


def _query(comment: str, *commands: str) -> str:
    return (
        f"# {comment}\n# Managed by `python -m ecsjobs sync-monitoring`; edits are undone.\n"
        + "\n| ".join(commands)
    )


def desired_dashboard(catalog: Catalog) -> dict[str, Any]:
    """One dashboard: a row per job with its steps' duration, records processed, errors and estimated cost."""
    env, env_name = catalog.environment, catalog.environment_name
    widgets: list[dict[str, Any]] = [
        {
            "type": "text",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": f"## Batch jobs ({env_name})\nOne row per job, one line per step. Managed by "
                "`python -m ecsjobs sync-monitoring` from the job catalog; edits are undone."
            },
        }
    ]
    panels = [
        (DURATION, "Maximum", "duration (s)"),
        (RECORDS, "Sum", "records"),
        (ERRORS, "Sum", "errors"),
        (ESTIMATED_COST, "Sum", "estimated cost (USD)"),
    ]
    for row, (job_id, spec) in enumerate(sorted(catalog.jobs.items())):
        for column, (metric, stat, label) in enumerate(panels):
            lines = [
                [
                    env.metrics_namespace,
                    metric,
                    *(v for d in dimensions(job_id, step, env_name) for v in (d["Name"], d["Value"])),
                    {"label": step},
                ]
                for step in step_names(spec)
            ]
            widgets.append(
                {
                    "type": "metric",
                    "x": column * 6,
                    "y": 2 + row * 6,
                    "width": 6,
                    "height": 6,
                    "properties": {
                        "title": f"{job_id}: {label}",
                        "region": env.region,
                        "view": "timeSeries",
                        "stat": stat,
                        "period": ALARM_PERIOD,
                        "metrics": lines,
                        "yAxis": {"left": {"min": 0}},
                    },
                }
            )
    return {"start": "-P7D", "widgets": widgets}
