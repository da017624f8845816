"""Alarms, dashboard and saved queries from the catalog (``ecsjobs.deploy.monitoring``, ``sync-monitoring``).

The sync runs against the local AWS over HTTP, through the Airflow AWS connection as in production. Every
test uses its own environment name, so its alarms (``ecsjobs/<env>/...``), namespace and dashboard are its
own in the session's shared local AWS. Write calls are counted in the local AWS's call log.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.deploy import event_route
from ecsjobs.deploy.monitoring.apply import sync
from ecsjobs.deploy.monitoring.desired import (
    MONITORING_DAG_ID,
    desired_alarms,
    desired_dashboard,
    desired_queries,
)
from ecsjobs.deploy.monitoring.live import metric_baselines
from ecsjobs.deploy.monitoring.plan import alarm_differences, plan
from local.settings import REPO

WRITES = {
    "PutMetricAlarm",
    "DeleteAlarms",
    "TagResource",
    "PutDashboard",
    "PutQueryDefinition",
    "DeleteQueryDefinition",
}
TOPIC = "arn:aws:sns:us-east-1:123456789012:batch-job-alarms"
ETL = """\
description: Extract and load.
start_date: 2026-01-01
task_definition: etl-pipeline
container: app
steps:
  extract: {expected_duration: 10m}
  load: {depends_on: [extract], log_group: /batch/etl-load, metrics: {records_field: rows_written}}
"""
SINGLE = "description: One step.\nstart_date: 2026-01-01\ntask_definition: {family}\ncontainer: app\n"


@pytest.fixture
def env_name(request: pytest.FixtureRequest) -> str:
    return "t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]


@pytest.fixture
def config(config_dir: Path, env_name: str, aws) -> Iterator[Path]:
    """A catalog with an environment of this test's own (its namespace, dashboard and task events queue) and
    the job ``etl``; the events rule a sync made is removed afterwards (it would copy every later test's
    STOPPED events to a queue nobody reads)."""
    local = yaml.safe_load((config_dir / "environments" / "local.yaml").read_text())
    local.update(
        metrics_namespace=f"BatchJobs/{env_name}",
        dashboard_name=f"batch-jobs-{env_name}",
        task_events={"queue": f"events-{env_name}"},
    )
    (config_dir / "environments" / f"{env_name}.yaml").write_text(yaml.safe_dump(local))
    (config_dir / "jobs" / "etl.yaml").write_text(ETL)
    yield config_dir
    events = aws.client("events")
    if events.list_rules(NamePrefix=f"events-{env_name}")["Rules"]:
        events.remove_targets(Rule=f"events-{env_name}", Ids=[event_route.TARGET_ID])
        events.delete_rule(Name=f"events-{env_name}")


def clients(aws) -> tuple:
    kwargs = dict(
        endpoint_url=aws.url, region_name="us-east-1", aws_access_key_id="l", aws_secret_access_key="l"
    )
    return boto3.client("cloudwatch", **kwargs), boto3.client("logs", **kwargs)


def cli(config: Path, env_name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]), **env}
    command = [sys.executable, "-m", "ecsjobs", "--config", str(config), "--env", env_name, *args]
    return subprocess.run(command, capture_output=True, text=True, env=environ, cwd=REPO, timeout=180)


def writes_since(aws, since: float) -> list[str]:
    return [c["action"] for c in aws.get(f"/_local/calls?since={since}") if c["action"] in WRITES]


def alarms(cloudwatch, env_name: str) -> dict[str, dict]:
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"ecsjobs/{env_name}/")
    return {a["AlarmName"]: a for page in pages for a in page["MetricAlarms"]}


def queries(logs, env_name: str) -> dict[str, dict]:
    found = logs.describe_query_definitions(queryDefinitionNamePrefix=f"ecsjobs/{env_name}/")
    return {q["name"]: q for q in found["queryDefinitions"]}


def put_alarm(cloudwatch, name: str, threshold: float = 5, tags: dict[str, str] | None = None) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="Elsewhere",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
        **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
    )


# --- What the catalog asks for ---------------------------------------------------------------------------


def test_three_alarms_per_step_with_the_metrics_contract_dimensions(config: Path, env_name: str):
    catalog = load_catalog(config, env_name)
    baselines, notes = metric_baselines(catalog, cloudwatch=None)  # no metric baseline: no AWS call
    wanted = desired_alarms(catalog, baselines)

    prefix = f"ecsjobs/{env_name}/etl"
    assert set(wanted) == {
        f"{prefix}/extract/duration",
        f"{prefix}/extract/errors",
        f"{prefix}/extract/failures",
        f"{prefix}/load/errors",  # load has no expected_duration: no duration alarm
        f"{prefix}/load/failures",
    }
    assert notes == ["no duration alarm (no expected_duration, no metric baseline): etl/load"]
    duration = wanted[f"{prefix}/extract/duration"]
    assert duration["Threshold"] == 900.0  # 1.5 x 10 minutes
    assert (duration["MetricName"], duration["Statistic"]) == ("Duration", "Maximum")
    assert duration["ComparisonOperator"] == "GreaterThanThreshold"
    assert duration["Namespace"] == f"BatchJobs/{env_name}"
    assert duration["Dimensions"] == [
        {"Name": "Job", "Value": "etl"},
        {"Name": "Step", "Value": "extract"},
        {"Name": "Environment", "Value": env_name},
    ]
    assert "expected_duration 600 s" in duration["AlarmDescription"]
    errors, failures = wanted[f"{prefix}/load/errors"], wanted[f"{prefix}/load/failures"]
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == ("Errors", "Sum", 0.0)
    assert (failures["MetricName"], failures["ComparisonOperator"]) == (
        "Failed",
        "GreaterThanOrEqualToThreshold",
    )
    for alarm in wanted.values():
        assert alarm["AlarmActions"] == [TOPIC]
        assert alarm["TreatMissingData"] == "notBreaching"
        assert {t["Key"]: t["Value"] for t in alarm["Tags"]} == {
            "ecsjobs:managed-by": "ecsjobs",
            "ecsjobs:environment": env_name,
            "ecsjobs:job": "etl",
        }


def test_alarms_compare_on_the_fields_the_sync_sets_whatever_their_order(config: Path, env_name: str):
    catalog = load_catalog(config, env_name)
    wanted = desired_alarms(catalog, metric_baselines(catalog, None)[0])[
        f"ecsjobs/{env_name}/etl/extract/duration"
    ]
    described = {  # as DescribeAlarms answers: other order, an int, fields the sync does not set
        **{k: v for k, v in wanted.items() if k != "Tags"},
        "Dimensions": list(reversed(wanted["Dimensions"])),
        "Threshold": 900,
        "StateValue": "ALARM",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x",
    }
    assert alarm_differences(wanted, described) == []
    edited = {**described, "Period": 60, "AlarmActions": [], "AlarmDescription": "mine"}
    assert alarm_differences(wanted, edited) == [
        "AlarmDescription changed",
        f"AlarmActions: none -> {TOPIC}",
        "Period: 60 -> 300",
    ]


def test_saved_queries_read_the_jobs_log_groups_and_summary_fields(config: Path, env_name: str):
    """Only the query text is tested: moto cannot run Logs Insights queries (it ignores filter and stats)."""
    catalog = load_catalog(config, env_name)
    saved = desired_queries(catalog)

    prefix = f"ecsjobs/{env_name}/etl/"
    assert set(saved) == {prefix + "last-run-errors", prefix + "records-per-run", prefix + "slowest-runs"}
    records = saved[prefix + "records-per-run"]
    assert records["logGroupNames"] == ["/batch/etl-load", "/ecs/etl-pipeline"]  # a step's own, the default
    # extract writes the default summary fields, load its own `rows_written`
    assert "coalesce(`records_processed`, `rows_written`) as records" in records["queryString"]
    assert "`errors` as errors" in records["queryString"]
    assert "filter ispresent(coalesce(`records_processed`, `rows_written`))" in records["queryString"]
    errors = saved[prefix + "last-run-errors"]
    assert errors["logGroupNames"] == records["logGroupNames"]
    assert "or `errors` > 0" in errors["queryString"]
    assert "sort @timestamp desc" in errors["queryString"]
    slowest = saved[prefix + "slowest-runs"]
    assert slowest["logGroupNames"] == ["/batch-jobs/audit"]  # the environment's audit log group
    assert 'filter job = "etl"' in slowest["queryString"]
    assert "sort duration_seconds desc" in slowest["queryString"]
    for query in saved.values():
        commands = [line for line in query["queryString"].splitlines() if not line.startswith("#")]
        assert commands[0].startswith("fields ") and all(c.startswith("| ") for c in commands[1:])


def test_dashboard_has_duration_records_errors_and_cost_of_every_step_per_job(config: Path, env_name: str):
    (config / "jobs" / "report.yaml").write_text(SINGLE.format(family="report-generator"))
    board = desired_dashboard(load_catalog(config, env_name))

    metric_widgets = [w for w in board["widgets"] if w["type"] == "metric"]
    assert [w["properties"]["title"] for w in metric_widgets] == [
        "etl: duration (s)",
        "etl: records",
        "etl: errors",
        "etl: estimated cost (USD)",
        "report: duration (s)",
        "report: records",
        "report: errors",
        "report: estimated cost (USD)",
    ]
    etl_duration = metric_widgets[0]["properties"]
    assert etl_duration["metrics"] == [
        [f"BatchJobs/{env_name}", "Duration", "Job", "etl", "Step", s, "Environment", env_name, {"label": s}]
        for s in ("extract", "load")
    ]
    assert [w["properties"]["stat"] for w in metric_widgets[:4]] == ["Maximum", "Sum", "Sum", "Sum"]
    assert metric_widgets[3]["properties"]["metrics"][0][1] == "EstimatedCost"
    assert {(w["x"], w["y"]) for w in metric_widgets} == {(x, y) for x in (0, 6, 12, 18) for y in (2, 8)}


@pytest.mark.integration  # a subprocess
def test_a_baseline_statistic_without_days_is_a_catalog_error(config: Path, env_name: str):
    (config / "jobs" / "etl.yaml").write_text(ETL + "metrics: {baseline_statistic: p90}\n")
    result = cli(config, env_name, "validate")
    assert result.returncode == 1
    assert "etl.yaml:8:10: metrics: baseline_statistic needs baseline_days" in result.stderr
    assert "Traceback" not in result.stderr


# --- Against the local AWS -------------------------------------------------------------------------------


def test_sync_creates_everything_and_a_second_run_changes_nothing(aws, config: Path, env_name: str):
    cloudwatch, logs = clients(aws)
    first = cli(config, env_name, "sync-monitoring")
    assert first.returncode == 0, first.stderr
    assert f"+ alarm ecsjobs/{env_name}/etl/extract/duration: Duration Maximum > 900 in 300 s" in first.stdout
    assert f"+ queue events-{env_name}: SQS, with its policy" in first.stdout
    assert f"+ rule events-{env_name}: STOPPED tasks of batch-jobs" in first.stdout
    assert "11 to create, 0 to update, 0 to delete, 0 unchanged" in first.stdout

    created = alarms(cloudwatch, env_name)
    assert len(created) == 5
    duration = created[f"ecsjobs/{env_name}/etl/extract/duration"]
    assert (duration["Threshold"], duration["AlarmActions"]) == (900.0, [TOPIC])
    tags = cloudwatch.list_tags_for_resource(ResourceARN=duration["AlarmArn"])["Tags"]
    assert {"Key": "ecsjobs:managed-by", "Value": "ecsjobs"} in tags
    assert {"Key": "ecsjobs:environment", "Value": env_name} in tags
    board = json.loads(cloudwatch.get_dashboard(DashboardName=f"batch-jobs-{env_name}")["DashboardBody"])
    assert len(board["widgets"]) == 5  # the header and the etl row
    saved = queries(logs, env_name)
    assert saved[f"ecsjobs/{env_name}/etl/slowest-runs"]["logGroupNames"] == ["/batch-jobs/audit"]

    since = time.time()
    second = cli(config, env_name, "sync-monitoring")
    assert second.returncode == 0, second.stderr
    assert "0 to create, 0 to update, 0 to delete, 11 unchanged" in second.stdout
    assert writes_since(aws, since) == []
    reads = {c["action"] for c in aws.get(f"/_local/calls?since={since}")}
    assert reads == {
        "DescribeAlarms", "ListTagsForResource", "GetDashboard", "DescribeQueryDefinitions",
        "DescribeClusters", "GetQueueUrl", "GetQueueAttributes", "DescribeRule", "ListTargetsByRule",
    }  # fmt: skip
    assert plan(load_catalog(config, env_name), cloudwatch, logs).writes == []


def test_dry_run_prints_each_change_and_writes_nothing(aws, config: Path, env_name: str):
    cloudwatch, logs = clients(aws)
    (config / "jobs" / "gone.yaml").write_text(SINGLE.format(family="data-processor"))
    sync(load_catalog(config, env_name))
    (config / "jobs" / "gone.yaml").unlink()
    (config / "jobs" / "new.yaml").write_text(SINGLE.format(family="report-generator"))
    (config / "jobs" / "etl.yaml").write_text(ETL.replace("10m", "20m"))
    errors_alarm = f"ecsjobs/{env_name}/etl/load/errors"
    put_alarm(cloudwatch, errors_alarm, threshold=7)  # someone edits a managed alarm by hand (tags stay)

    since = time.time()
    dry = cli(config, env_name, "sync-monitoring", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert writes_since(aws, since) == []
    out = dry.stdout
    lines = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in out.splitlines() if ": " in line}
    duration = lines[f"~ alarm ecsjobs/{env_name}/etl/extract/duration"]
    assert duration == "AlarmDescription changed; Threshold: 900 -> 1800"
    edited = lines[f"~ alarm {errors_alarm}"].split("; ")
    assert f"Namespace: Elsewhere -> BatchJobs/{env_name}" in edited and "Threshold: 7 -> 0" in edited
    assert f"Dimensions: none -> Job=etl, Step=load, Environment={env_name}" in edited
    assert f"- alarm ecsjobs/{env_name}/gone/run/failures: its job or step left the catalog" in out
    assert f"+ alarm ecsjobs/{env_name}/new/run/errors: Errors Sum > 0 in 300 s" in out
    assert f"- query ecsjobs/{env_name}/gone/slowest-runs" in out
    assert f"+ query ecsjobs/{env_name}/new/records-per-run" in out
    assert f"~ dashboard batch-jobs-{env_name}: 9 -> 9 widgets (2 job(s))" in out
    assert "5 to create, 3 to update, 5 to delete, 8 unchanged" in out
    assert "Dry run: nothing was changed." in out
    assert alarms(cloudwatch, env_name)[errors_alarm]["Threshold"] == 7.0

    applied = cli(config, env_name, "sync-monitoring")
    assert applied.returncode == 0, applied.stderr
    now = alarms(cloudwatch, env_name)
    assert now[f"ecsjobs/{env_name}/etl/extract/duration"]["Threshold"] == 1800.0
    assert now[errors_alarm]["Threshold"] == 0.0 and now[errors_alarm]["Namespace"] == f"BatchJobs/{env_name}"
    assert not [name for name in now if "/gone/" in name] and f"ecsjobs/{env_name}/new/run/errors" in now
    assert set(queries(logs, env_name)) == {
        f"ecsjobs/{env_name}/{job}/{kind}"
        for job in ("etl", "new")
        for kind in ("last-run-errors", "records-per-run", "slowest-runs")
    }
    assert plan(load_catalog(config, env_name), cloudwatch, logs).writes == []


def test_only_alarms_with_its_own_marks_are_ever_touched(aws, config: Path, env_name: str):
    cloudwatch, logs = clients(aws)
    other = f"{env_name}x"  # another environment in the same account, synced from the same catalog
    (config / "environments" / f"{other}.yaml").write_text(
        (config / "environments" / f"{env_name}.yaml").read_text()
    )
    (config / "jobs" / "gone.yaml").write_text(SINGLE.format(family="data-processor"))
    sync(load_catalog(config, other))
    sync(load_catalog(config, env_name))
    ours = f"ecsjobs/{env_name}/"
    look_alike = ours + "gone/run/custom"  # no tags: someone else's alarm under our prefix
    put_alarm(cloudwatch, look_alike)
    other_env_tags = {"ecsjobs:managed-by": "ecsjobs", "ecsjobs:environment": other}
    put_alarm(cloudwatch, ours + "gone/run/tagged-elsewhere", tags=other_env_tags)
    in_the_way = ours + "late/run/errors"  # the name a new job's alarm needs, taken by someone else
    put_alarm(cloudwatch, in_the_way, threshold=3)
    (config / "jobs" / "gone.yaml").unlink()
    (config / "jobs" / "late.yaml").write_text(SINGLE.format(family="report-generator"))

    result = cli(config, env_name, "sync-monitoring")

    assert result.returncode == 1
    assert f"! alarm {in_the_way}: exists without the tags" in result.stdout
    assert f"error: alarm {in_the_way} is not managed by ecsjobs" in result.stderr
    remaining = alarms(cloudwatch, env_name)
    assert {name for name in remaining if "/gone/" in name} == {
        look_alike,
        ours + "gone/run/tagged-elsewhere",
    }
    assert remaining[in_the_way]["Threshold"] == 3.0  # left exactly as it was
    assert f"{ours}late/run/failures" in remaining  # the rest was applied
    assert len([name for name in alarms(cloudwatch, other) if "/gone/" in name]) == 2  # other env untouched
    assert f"ecsjobs/{other}/gone/slowest-runs" in queries(logs, other)


def test_duration_baseline_from_the_last_days_of_the_metric(aws, config: Path, env_name: str):
    cloudwatch, logs = clients(aws)
    (config / "jobs" / "etl.yaml").write_text(
        "description: Extract and load.\nstart_date: 2026-01-01\ntask_definition: etl-pipeline\n"
        "container: app\nexpected_duration: 5m\nsteps:\n  extract: {metrics: {baseline_days: 7}}\n"
        "  load: {depends_on: [extract], metrics: {baseline_days: 7, baseline_statistic: Maximum}}\n"
    )
    (config / "jobs" / "quiet.yaml").write_text(
        SINGLE.format(family="report-generator") + "expected_duration: 10m\nmetrics: {baseline_days: 7}\n"
    )
    now = datetime.now(UTC)
    for step, values in {"extract": [100, 200, 300], "load": [40, 60]}.items():
        cloudwatch.put_metric_data(
            Namespace=f"BatchJobs/{env_name}",
            MetricData=[
                {
                    "MetricName": "Duration",
                    "Dimensions": [
                        {"Name": "Job", "Value": "etl"},
                        {"Name": "Step", "Value": step},
                        {"Name": "Environment", "Value": env_name},
                    ],
                    "Timestamp": now - timedelta(days=day + 1),
                    "Value": value,
                    "Unit": "Seconds",
                }
                for day, value in enumerate(values)
            ],
        )

    result = plan(load_catalog(config, env_name), cloudwatch, logs)

    created = {c.name: c.request for c in result.changes if c.kind == "alarm" and c.action == "create"}
    prefix = f"ecsjobs/{env_name}/"
    extract = created[prefix + "etl/extract/duration"]
    assert extract["Threshold"] == 300.0  # 1.5 x the Average of 100, 200, 300
    assert "Average of 7 day(s) of Duration" in extract["AlarmDescription"]
    assert created[prefix + "etl/load/duration"]["Threshold"] == 90.0  # 1.5 x the Maximum, 60
    assert created[prefix + "quiet/run/duration"]["Threshold"] == 900.0  # no data: expected_duration
    assert "quiet/run: no Duration data in the last 7 day(s); using expected_duration 600 s" in result.notes


def test_a_broken_job_file_stops_the_sync_before_anything_is_pruned(aws, config: Path, env_name: str):
    cloudwatch, _ = clients(aws)
    sync(load_catalog(config, env_name))
    (config / "jobs" / "etl.yaml").write_text(ETL + "retires: 3\n")

    since = time.time()
    result = cli(config, env_name, "sync-monitoring")

    assert result.returncode == 1
    assert "etl.yaml:8:1: retires: unknown key 'retires'" in result.stderr
    assert "error: broken job file(s) etl.yaml: fix them first" in result.stderr
    assert "Traceback" not in result.stderr
    assert writes_since(aws, since) == [] and len(alarms(cloudwatch, env_name)) == 5


def connection(endpoint: str) -> str:
    """The AWS connection without botocore retries, so that a failing call fails at once."""
    extra = {"endpoint_url": endpoint, "config_kwargs": {"retries": {"total_max_attempts": 1}}}
    return json.dumps({"conn_type": "aws", "login": "l", "password": "l", "extra": extra})


def test_aws_errors_are_one_line_without_a_traceback(aws, config: Path, env_name: str):
    aws.post("/_local/faults", {"service": "logs", "action": "DescribeQueryDefinitions", "kind": "throttle"})
    throttled = cli(config, env_name, "sync-monitoring", AIRFLOW_CONN_AWS_LOCAL=connection(aws.url))
    assert throttled.returncode == 1
    assert throttled.stderr.strip().splitlines()[-1] == (
        "error: AWS DescribeQueryDefinitions: ThrottlingException: Rate exceeded"
    )
    assert "Traceback" not in throttled.stderr

    closed = connection("http://127.0.0.1:9")
    unreachable = cli(config, env_name, "sync-monitoring", AIRFLOW_CONN_AWS_LOCAL=closed)
    assert unreachable.returncode == 1
    assert (
        unreachable.stderr.strip()
        .splitlines()[-1]
        .startswith("error: AWS: Could not connect to the endpoint")
    )
    assert "Traceback" not in unreachable.stderr


def test_the_maintenance_dag_runs_the_same_sync(aws, airflow_db, config: Path, env_name: str, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(config))
    monkeypatch.setenv("ECSJOBS_ENV", env_name)
    bag = DagBag(str(REPO / "dags" / "monitoring_sync.py"))
    assert bag.import_errors == {}
    dag = bag.dags[MONITORING_DAG_ID]

    run = dag.test()

    assert run.state == "success"
    assert len(alarms(clients(aws)[0], env_name)) == 5


def test_local_aws_keeps_query_definitions_as_cloudwatch_logs_does(aws):
    """moto 5.2.5 has no query definitions; ``local/aws/query_definitions.py`` adds them."""
    _, logs = clients(aws)
    first = logs.put_query_definition(name="qd-test/a", queryString="fields @message", logGroupNames=["/g"])
    logs.put_query_definition(name="qd-test/b", queryString="fields @timestamp")
    page = logs.describe_query_definitions(queryDefinitionNamePrefix="qd-test/", maxResults=1)
    rest = logs.describe_query_definitions(queryDefinitionNamePrefix="qd-test/", nextToken=page["nextToken"])
    assert [q["name"] for q in page["queryDefinitions"] + rest["queryDefinitions"]] == [
        "qd-test/a",
        "qd-test/b",
    ]
    assert "nextToken" not in rest

    query_id = first["queryDefinitionId"]
    logs.put_query_definition(name="qd-test/a", queryDefinitionId=query_id, queryString="fields @logStream")
    (updated,) = [q for q in queries_named(logs, "qd-test/a")]
    assert (updated["queryString"], updated["logGroupNames"]) == ("fields @logStream", [])
    assert logs.delete_query_definition(queryDefinitionId=query_id)["success"] is True
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_query_definition(queryDefinitionId=query_id)


def queries_named(logs, name: str) -> list[dict]:
    found = logs.describe_query_definitions(queryDefinitionNamePrefix=name)["queryDefinitions"]
    return [q for q in found if q["name"] == name]


def test_every_alarm_and_dashboard_line_matches_a_metric_a_run_publishes(run_job, aws, config_dir: Path):
    """The metrics contract, end to end: a two-step pipeline runs for real (its steps and its totals publish),
    then every alarm and every dashboard line of the job must name a metric that CloudWatch now holds,
    namespace, name and dimensions alike. An alarm that matches nothing would never fire."""
    summary = {"records_processed": 5, "errors": 0}
    extra = "expected_duration: 1m\nsteps:\n  extract: {}\n  load: {depends_on: [extract]}\n"
    result = run_job("contract", {"duration": 0.5, "summary": summary}, extra=extra)
    assert result.state == "success"
    catalog = load_catalog(config_dir, "local")
    cloudwatch, _ = clients(aws)
    published = {
        (
            metric["Namespace"],
            metric["MetricName"],
            frozenset((d["Name"], d["Value"]) for d in metric["Dimensions"]),
        )
        for page in cloudwatch.get_paginator("list_metrics").paginate(
            Namespace=catalog.environment.metrics_namespace, Dimensions=[{"Name": "Job", "Value": "contract"}]
        )
        for metric in page["Metrics"]
    }

    wanted = desired_alarms(catalog, metric_baselines(catalog, None)[0])
    alarms_of_job = [a for name, a in wanted.items() if "/contract/" in name]
    assert len(alarms_of_job) == 6  # duration, errors, failures for each step
    for alarm in alarms_of_job:
        dims = frozenset((d["Name"], d["Value"]) for d in alarm["Dimensions"])
        assert (alarm["Namespace"], alarm["MetricName"], dims) in published, alarm["AlarmName"]
    widgets = desired_dashboard(catalog)["widgets"]
    lines = [line for w in widgets if w["type"] == "metric" for line in w["properties"]["metrics"]]
    for namespace, name, *rest in [line for line in lines if "contract" in line]:
        pairs = rest[:-1]  # the last item is the line's options
        dims = frozenset(zip(pairs[::2], pairs[1::2], strict=True))
        assert (namespace, name, dims) in published, (name, dims)
