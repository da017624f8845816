"""Making a plan's changes, and the sync as ``python -m ecsjobs sync-monitoring`` and the DAG run it."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import BotoCoreError, ClientError

from ecsjobs.aws import describe_aws_error
from ecsjobs.catalog.loading import Catalog
from ecsjobs.deploy import event_route
from ecsjobs.deploy.monitoring.desired import MonitoringError
from ecsjobs.deploy.monitoring.plan import Plan, plan

log = logging.getLogger(__name__)

MANAGED_BY_TAG, MANAGED_BY = "ecsjobs:managed-by", "ecsjobs"
ENVIRONMENT_TAG, JOB_TAG = "ecsjobs:environment", "ecsjobs:job"


def apply(result: Plan, cloudwatch: Any, logs: Any, route: tuple[Any, ...] | None = None) -> None:
    """Make the plan's writes: PutMetricAlarm, DeleteAlarms, PutDashboard, Put/DeleteQueryDefinition, and
    the events queue and rule (CreateQueue / SetQueueAttributes, PutRule and PutTargets)."""
    doomed: list[str] = []
    for change in sorted(result.writes, key=lambda c: c.kind == "rule"):  # the queue before its rule
        request = change.request or {}
        if change.kind in ("queue", "rule"):
            assert route is not None  # a plan has queue and rule changes only with a route
            event_route.apply(change.kind, request, *route[:2])
        elif change.kind == "alarm" and change.action == "delete":
            doomed.append(change.name)
        elif change.kind == "alarm":
            cloudwatch.put_metric_alarm(**request)
        elif change.kind == "dashboard":
            cloudwatch.put_dashboard(**request)
        elif change.action == "delete":
            logs.delete_query_definition(queryDefinitionId=change.resource_id)
        else:
            logs.put_query_definition(**request)
    for start in range(0, len(doomed), 100):  # DeleteAlarms takes up to 100 names
        cloudwatch.delete_alarms(AlarmNames=doomed[start : start + 100])


def aws_clients(catalog: Catalog) -> tuple[Any, Any, tuple[Any, ...] | None]:
    """CloudWatch and CloudWatch Logs clients of the environment's Airflow AWS connection (in Airflow, or
    from ``AIRFLOW_CONN_*`` variables on the command line: no metadata database needed), and with
    ``task_events`` the SQS, EventBridge and ECS clients of the events route."""
    env = catalog.environment

    def client(kind: str) -> Any:
        return AwsBaseHook(aws_conn_id=env.aws_conn_id, client_type=kind, region_name=env.region).get_conn()

    route = (client("sqs"), client("events"), client("ecs")) if env.task_events else None
    return client("cloudwatch"), client("logs"), route


def sync(
    catalog: Catalog, dry_run: bool = False, clients: tuple[Any, Any, tuple[Any, ...] | None] | None = None
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
