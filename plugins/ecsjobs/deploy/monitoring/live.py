"""What exists in CloudWatch: the alarms, dashboard and saved queries the sync made (by their marks), and
the steps' duration baselines read from their metrics."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ecsjobs.catalog.loading import Catalog
from ecsjobs.deploy.monitoring.desired import (
    DEFAULT_STATISTIC,
    Baseline,
    expected_baseline,
    name_prefix,
    step_names,
)
from ecsjobs.reporting.metrics import (
    DURATION,
    dimensions,
)

log = logging.getLogger(__name__)

MANAGED_BY_TAG, MANAGED_BY = "ecsjobs:managed-by", "ecsjobs"
ENVIRONMENT_TAG, JOB_TAG = "ecsjobs:environment", "ecsjobs:job"


def metric_baselines(
    catalog: Catalog, cloudwatch: Any, now: datetime | None = None
) -> tuple[dict[tuple[str, str], Baseline | None], list[str]]:
    """Each step's baseline and notes for the plan: a statistic of the last ``baseline_days`` of Duration
    when configured and there is data, else ``expected_duration``, else none (no duration alarm)."""
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    baselines: dict[tuple[str, str], Baseline | None] = {}
    notes: list[str] = []
    without: list[str] = []
    for job_id, spec in sorted(catalog.jobs.items()):
        for step_name in step_names(spec):
            step = spec.steps[step_name]
            fallback = expected_baseline(step)
            metrics = step.metrics
            where = f"{job_id}/{step_name}"
            if metrics is None or metrics.baseline_days is None:
                baselines[job_id, step_name] = fallback
                without += [where] if fallback is None else []
                continue
            days, statistic = metrics.baseline_days, metrics.baseline_statistic or DEFAULT_STATISTIC
            value = _duration_statistic(
                cloudwatch, catalog, job_id, step_name, statistic, end - timedelta(days=days), end
            )
            if value is not None:  # the value stays out of the description: it would change every day
                baselines[job_id, step_name] = Baseline(value, f"{statistic} of {days} day(s) of Duration")
                continue
            baselines[job_id, step_name] = fallback
            instead = f"using {fallback.source}" if fallback else "no duration alarm"
            notes.append(f"{where}: no Duration data in the last {days} day(s); {instead}")
    if without:
        notes.append(f"no duration alarm (no expected_duration, no metric baseline): {', '.join(without)}")
    return baselines, notes


def _duration_statistic(
    cloudwatch: Any,
    catalog: Catalog,
    job_id: str,
    step_name: str,
    statistic: str,
    start: datetime,
    end: datetime,
) -> float | None:
    """One period spanning the whole window, so CloudWatch computes the statistic over every run in it."""
    percentile = statistic.startswith("p")
    answer = cloudwatch.get_metric_statistics(
        Namespace=catalog.environment.metrics_namespace,
        MetricName=DURATION,
        Dimensions=dimensions(job_id, step_name, catalog.environment_name),
        StartTime=start,
        EndTime=end,
        Period=int((end - start).total_seconds()),
        Statistics=["SampleCount"] if percentile else [statistic, "SampleCount"],
        **({"ExtendedStatistics": [statistic]} if percentile else {}),
    )
    points = []
    for point in answer["Datapoints"]:
        value = point.get("ExtendedStatistics", {}).get(statistic) if percentile else point.get(statistic)
        if value is not None and point.get("SampleCount"):
            points.append((value, point["SampleCount"]))
    if not points:
        return None
    if statistic == "Average":  # should CloudWatch align the window into two periods: weigh by samples
        return float(sum(value * count for value, count in points) / sum(count for _, count in points))
    return float(max(value for value, _ in points))  # Maximum; for a percentile the higher (safer) one


def existing_alarms(cloudwatch: Any, environment: str) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """This environment's managed alarms by name, and the names of others under its prefix (left alone)."""
    managed: dict[str, dict[str, Any]] = {}
    foreign: set[str] = set()
    pages = cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=name_prefix(environment), AlarmTypes=["MetricAlarm"]
    )
    for page in pages:
        for alarm in page["MetricAlarms"]:
            tags = cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
            tags = {t["Key"]: t["Value"] for t in tags}
            ours = tags.get(MANAGED_BY_TAG) == MANAGED_BY and tags.get(ENVIRONMENT_TAG) == environment
            if ours:
                managed[alarm["AlarmName"]] = alarm
            else:
                foreign.add(alarm["AlarmName"])
    return managed, foreign


def existing_dashboard(cloudwatch: Any, name: str) -> dict[str, Any] | None:
    try:
        body = cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"]
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ResourceNotFound", "ResourceNotFoundException"):
            return None
        raise
    return dict(json.loads(body))


def existing_queries(logs: Any, environment: str) -> list[dict[str, Any]]:
    """This environment's saved queries (DescribeQueryDefinitions has no boto3 paginator)."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"queryDefinitionNamePrefix": name_prefix(environment), "maxResults": 1000}
    while True:
        page = logs.describe_query_definitions(**kwargs)
        found += page["queryDefinitions"]
        if not page.get("nextToken"):
            return found
        kwargs["nextToken"] = page["nextToken"]
