"""CloudWatch alarms, a dashboard and saved Logs Insights queries for every job of the catalog, kept in sync.

``plan()`` reads what exists and compares it with what the catalog asks for, field by field; ``apply()`` makes
exactly those changes, so a second sync plans nothing and writes nothing. What the sync creates carries its
mark: alarms the tags ``ecsjobs:managed-by`` and ``ecsjobs:environment`` and, like the saved queries, the name
prefix ``ecsjobs/<env>/``. Only resources with this environment's marks are updated or deleted; an alarm
without the tags is never touched, whatever its name. With ``task_events``, the sync also keeps the events
queue and its EventBridge rule (``ecsjobs.deploy.event_route``).

Alarms are per step, because CloudWatch alarms match exact dimensions and steps publish with ``Job``,
``Step`` and ``Environment``: a duration alarm above 1.5x the step's baseline, an error and a failure alarm.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.sdk import DAG, task
from botocore.exceptions import BotoCoreError, ClientError

from ecsjobs.aws import describe_aws_error
from ecsjobs.catalog.loading import Catalog, JobSpec, load_catalog
from ecsjobs.catalog.models import Step, step_order
from ecsjobs.deploy import event_route
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
ALARM_FIELDS = {
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
_OPERATORS = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">="}
_SYMBOLS = {"create": "+", "update": "~", "delete": "-", "conflict": "!"}


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


def desired_alarms(catalog: Catalog, baselines: dict[tuple[str, str], Baseline | None]) -> dict[str, dict]:
    """PutMetricAlarm arguments by alarm name, three per step, the duration alarm only for steps with a
    baseline (``expected_duration``, or a metric statistic when configured)."""
    env, env_name = catalog.environment, catalog.environment_name
    actions = [env.alarm_topic_arn] if env.alarm_topic_arn else []
    alarms: dict[str, dict] = {}
    for job_id, spec in sorted(catalog.jobs.items()):
        tags = {MANAGED_BY_TAG: MANAGED_BY, ENVIRONMENT_TAG: env_name, JOB_TAG: job_id}
        for step_name in _steps(spec):
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


def _steps(spec: JobSpec) -> list[str]:
    return step_order({name: step.depends_on for name, step in spec.steps.items()})


def log_groups(spec: JobSpec) -> list[str]:
    """The awslogs groups of a job's steps (``/ecs/<family>`` unless a step names its own)."""
    return sorted({step.log_group or f"/ecs/{step.family}" for step in spec.steps.values()})


def summary_fields(spec: JobSpec) -> tuple[list[str], list[str]]:
    """The summary-line fields holding records and errors, over the job's steps (they may differ)."""
    records, errors = [], []
    for name in _steps(spec):
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
                for step in _steps(spec)
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


# --- What exists ----------------------------------------------------------------------------------------


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
        for step_name in _steps(spec):
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
        return sum(value * count for value, count in points) / sum(count for _, count in points)
    return max(value for value, _ in points)  # Maximum; for a percentile the higher (safer) one


def existing_alarms(cloudwatch: Any, environment: str) -> tuple[dict[str, dict], set[str]]:
    """This environment's managed alarms by name, and the names of others under its prefix (left alone)."""
    managed: dict[str, dict] = {}
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
    return json.loads(body)


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


# --- The plan -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One write the sync makes, or (``conflict``) one it refuses to make."""

    action: str  # create | update | delete | conflict
    kind: str  # alarm | dashboard | query
    name: str
    detail: str = ""  # what is created, which fields change, or why it is left alone
    request: dict[str, Any] | None = None  # arguments of the write call (create, update)
    resource_id: str | None = None  # saved query id (update, delete)

    def __str__(self) -> str:
        text = f"{_SYMBOLS[self.action]} {self.kind} {self.name}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class Plan:
    environment: str
    header: str = ""
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.action != "conflict"]

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action == "conflict"]

    def summary(self) -> str:
        counts = {a: sum(c.action == a for c in self.changes) for a in ("create", "update", "delete")}
        text = ", ".join(f"{n} to {a}" for a, n in counts.items()) + f", {self.unchanged} unchanged"
        if self.conflicts:
            text += f", {len(self.conflicts)} left alone (not managed by ecsjobs)"
        return text

    def __str__(self) -> str:
        lines = [self.header] if self.header else []
        lines += [f"note: {note}" for note in self.notes] + [str(change) for change in self.changes]
        return "\n".join(lines + [f"Plan for environment {self.environment!r}: {self.summary()}."])


def plan(
    catalog: Catalog, cloudwatch: Any, logs: Any, now: datetime | None = None, route: tuple | None = None
) -> Plan:
    """Compare the catalog's alarms, dashboard and saved queries (and, with ``task_events`` and the ``route``
    clients SQS, EventBridge and ECS, the events queue and rule) with what exists; read-only."""
    env, env_name = catalog.environment, catalog.environment_name
    baselines, notes = metric_baselines(catalog, cloudwatch, now)
    actions = env.alarm_topic_arn or "none (no alarm_topic_arn)"
    header = f"Environment {env_name!r}: namespace {env.metrics_namespace}, alarm actions {actions}"
    result = Plan(env_name, header, notes=notes)
    _plan_alarms(result, desired_alarms(catalog, baselines), *existing_alarms(cloudwatch, env_name))
    _plan_dashboard(result, catalog, existing_dashboard(cloudwatch, catalog.environment.dashboard_name))
    _plan_queries(result, desired_queries(catalog), existing_queries(logs, env_name))
    if env.task_events and route:
        tags = {MANAGED_BY_TAG: MANAGED_BY, ENVIRONMENT_TAG: env_name}
        for action, kind, request in event_route.plan(env, tags, *route):
            if action == "unchanged":
                result.unchanged += 1
            else:
                detail = f"STOPPED tasks of {env.cluster}" if kind == "rule" else "SQS, with its policy"
                result.changes.append(Change(action, kind, env.task_events.queue, detail, request))
    return result


def _plan_alarms(result: Plan, desired: dict[str, dict], managed: dict[str, dict], foreign: set[str]) -> None:
    env_name = result.environment
    for name, request in desired.items():
        if name in foreign:
            reason = f"exists without the tags {MANAGED_BY_TAG}={MANAGED_BY}, {ENVIRONMENT_TAG}={env_name}"
            result.changes.append(Change("conflict", "alarm", name, f"{reason}; left alone"))
        elif name not in managed:
            result.changes.append(Change("create", "alarm", name, _alarm_summary(request), request))
        elif changed := alarm_differences(request, managed[name]):
            untagged = {k: v for k, v in request.items() if k != "Tags"}  # PutMetricAlarm ignores them then
            result.changes.append(Change("update", "alarm", name, "; ".join(changed), untagged))
        else:
            result.unchanged += 1
    for name in sorted(set(managed) - set(desired)):
        result.changes.append(Change("delete", "alarm", name, "its job or step left the catalog"))


def alarm_differences(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """``Field: old -> new`` (or ``Field changed`` for long texts) for every field the sync sets that
    differs; lists compare as sets."""

    def normal(key: str, value: Any) -> Any:
        if key == "Dimensions":
            return sorted((d["Name"], d["Value"]) for d in value)
        return sorted(value) if isinstance(value, list) else value

    differences = []
    for key, default in ALARM_FIELDS.items():
        want, have = desired.get(key, default), actual.get(key, default)
        if normal(key, want) != normal(key, have):
            old, new = _shown(key, have), _shown(key, want)
            differences.append(f"{key}: {old} -> {new}" if len(old + new) <= 100 else f"{key} changed")
    return differences


def _shown(key: str, value: Any) -> str:
    if key == "Dimensions":
        return ", ".join(f"{d['Name']}={d['Value']}" for d in value) or "none"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _alarm_summary(request: dict[str, Any]) -> str:
    operator = _OPERATORS[request["ComparisonOperator"]]
    metric, statistic, threshold = request["MetricName"], request["Statistic"], request["Threshold"]
    return f"{metric} {statistic} {operator} {threshold:g} in {request['Period']} s"


def _plan_dashboard(result: Plan, catalog: Catalog, actual: dict[str, Any] | None) -> None:
    name, desired = catalog.environment.dashboard_name, desired_dashboard(catalog)
    request = {"DashboardName": name, "DashboardBody": json.dumps(desired, sort_keys=True)}
    widgets = f"{len(desired['widgets'])} widgets ({len(catalog.jobs)} job(s))"
    if actual is None:
        result.changes.append(Change("create", "dashboard", name, widgets, request))
    elif actual != desired:
        before = len(actual.get("widgets", []))
        result.changes.append(Change("update", "dashboard", name, f"{before} -> {widgets}", request))
    else:
        result.unchanged += 1


def _plan_queries(result: Plan, desired: dict[str, dict], actual: list[dict[str, Any]]) -> None:
    by_name: dict[str, dict[str, Any]] = {}
    for query in actual:
        if query["name"] in by_name or query["name"] not in desired:  # a copy, or a job that left
            detail = (
                "a second query with this name" if query["name"] in by_name else "its job left the catalog"
            )
            result.changes.append(
                Change("delete", "query", query["name"], detail, None, query["queryDefinitionId"])
            )
        else:
            by_name[query["name"]] = query
    for name, want in desired.items():
        request = {"name": name, **want}
        have = by_name.get(name)
        if have is None:
            result.changes.append(Change("create", "query", name, ", ".join(want["logGroupNames"]), request))
            continue
        changed = [
            key
            for key in ("queryString", "logGroupNames")
            if (sorted(have.get(key) or []) if key == "logGroupNames" else have.get(key)) != want[key]
        ]
        if changed:
            update = {**request, "queryDefinitionId": have["queryDefinitionId"]}
            result.changes.append(
                Change(
                    "update",
                    "query",
                    name,
                    f"{', '.join(changed)} changed",
                    update,
                    have["queryDefinitionId"],
                )
            )
        else:
            result.unchanged += 1


# --- Applying it ----------------------------------------------------------------------------------------


def apply(result: Plan, cloudwatch: Any, logs: Any, route: tuple | None = None) -> None:
    """Make the plan's writes: PutMetricAlarm, DeleteAlarms, PutDashboard, Put/DeleteQueryDefinition, and
    the events queue and rule (CreateQueue / SetQueueAttributes, PutRule and PutTargets)."""
    doomed: list[str] = []
    for change in sorted(result.writes, key=lambda c: c.kind == "rule"):  # the queue before its rule
        if change.kind in ("queue", "rule"):
            event_route.apply(change.kind, change.request, *route[:2])
        elif change.kind == "alarm" and change.action == "delete":
            doomed.append(change.name)
        elif change.kind == "alarm":
            cloudwatch.put_metric_alarm(**change.request)
        elif change.kind == "dashboard":
            cloudwatch.put_dashboard(**change.request)
        elif change.action == "delete":
            logs.delete_query_definition(queryDefinitionId=change.resource_id)
        else:
            logs.put_query_definition(**change.request)
    for start in range(0, len(doomed), 100):  # DeleteAlarms takes up to 100 names
        cloudwatch.delete_alarms(AlarmNames=doomed[start : start + 100])


def aws_clients(catalog: Catalog) -> tuple[Any, Any, tuple | None]:
    """CloudWatch and CloudWatch Logs clients of the environment's Airflow AWS connection (in Airflow, or
    from ``AIRFLOW_CONN_*`` variables on the command line: no metadata database needed), and with
    ``task_events`` the SQS, EventBridge and ECS clients of the events route."""
    env = catalog.environment

    def client(kind: str) -> Any:
        return AwsBaseHook(aws_conn_id=env.aws_conn_id, client_type=kind, region_name=env.region).get_conn()

    route = (client("sqs"), client("events"), client("ecs")) if env.task_events else None
    return client("cloudwatch"), client("logs"), route


def sync(
    catalog: Catalog, dry_run: bool = False, clients: tuple[Any, Any, tuple | None] | None = None
) -> Plan:
    """Plan and (unless ``dry_run``) apply. Refuses while job files are broken: their alarms would go."""
    if catalog.broken:
        names = ", ".join(sorted(path.name for path in catalog.broken))
        raise MonitoringError(
            f"broken job file(s) {names}: fix them first (`python -m ecsjobs validate`); syncing now "
            "would delete their alarms and saved queries"
        )
    cloudwatch, logs, route = clients or aws_clients(catalog)
    result = plan(catalog, cloudwatch, logs, route=route)
    if not dry_run:
        apply(result, cloudwatch, logs, route)
    return result


def sync_command(catalog: Catalog, dry_run: bool) -> int:
    """``python -m ecsjobs sync-monitoring [--dry-run]``: print the plan, apply it; 1 if anything is left."""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Airflow's log lines (the hook's): stdout is the plan
            result = sync(catalog, dry_run)
    except MonitoringError as err:
        for problems in catalog.broken.values():
            for problem in problems:
                print(problem, file=sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as err:
        print(f"error: {describe_aws_error(err)}", file=sys.stderr)
        return 1
    print(result)
    print("Dry run: nothing was changed." if dry_run else f"Applied {len(result.writes)} change(s).")
    for conflict in result.conflicts:
        print(f"error: alarm {conflict.name} is not managed by ecsjobs; rename or delete it", file=sys.stderr)
    return 1 if result.conflicts else 0


# --- The maintenance DAG --------------------------------------------------------------------------------


def monitoring_dag(environment: str | None) -> DAG:
    """``ecsjobs_monitoring_sync``: the same sync once a day, so alarms follow deployed catalog changes and
    metric baselines follow the recent runs. Paused until someone unpauses it, as every new DAG."""
    with DAG(
        dag_id=MONITORING_DAG_ID,
        description="Sync CloudWatch alarms, dashboard and saved queries with the job catalog.",
        doc_md=__doc__,
        schedule="@daily",
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["maintenance"],
    ) as dag:

        @task
        def sync_monitoring() -> dict[str, int]:
            result = sync(load_catalog(environment=environment))  # the whole catalog, not the parsed one
            for line in str(result).splitlines():
                log.info("%s", line)
            if result.conflicts:
                names = ", ".join(c.name for c in result.conflicts)
                raise MonitoringError(f"alarms not managed by ecsjobs are in the way (left alone): {names}")
            return {action: sum(c.action == action for c in result.changes) for action in _SYMBOLS}

        sync_monitoring()
    return dag
