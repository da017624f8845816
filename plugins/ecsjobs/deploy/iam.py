"""The IAM policy the Airflow role (the MWAA execution role) needs for this catalog, and nothing more.

Every statement names the catalog's own resources: its steps' task definition families, the environment's
task roles, cluster, job log groups, audit log group, metrics namespace, the monitoring sync's alarms and
dashboard, the task events queue and rule, and the Secrets Manager secret of the Slack connection. Where AWS
defines no resource type for an action the statement must say ``"*"``; those actions are listed in
``WILDCARD_ACTIONS`` with the condition that narrows them, if AWS has one. The policy complements the
execution role's MWAA base policy (the environment's S3 bucket, Airflow's own logs, SQS, KMS); it does not
replace it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ecsjobs.catalog.loading import Catalog
from ecsjobs.catalog.problems import CatalogError
from ecsjobs.deploy.monitoring.desired import log_groups, name_prefix
from ecsjobs.ecs import resource_name
from ecsjobs.errors import EcsJobsError

# Where the MWAA environment's secrets backend looks for connections (docs/deploy-mwaa.md sets it up).
CONNECTIONS_PREFIX = "airflow/connections"
# An inline role policy may hold 10,240 characters, whitespace not counted.
INLINE_POLICY_LIMIT = 10_240
# Actions that take Resource "*": AWS defines no resource type for them, except ListTasks, whose only one is
# the container instance (Fargate tasks have none); a condition narrows them where AWS offers one.
WILDCARD_ACTIONS = {
    "ecs:ListTasks": "condition ecs:cluster",
    "ecs:DescribeTaskDefinition": "no resource type",
    "cloudwatch:PutMetricData": "condition cloudwatch:namespace",
    "cloudwatch:GetMetricStatistics": "no resource type",
    "logs:StopQuery": "no resource type",
    "logs:PutQueryDefinition": "no resource type",
    "logs:DescribeQueryDefinitions": "no resource type",
    "logs:DeleteQueryDefinition": "no resource type",
}


class PolicyError(EcsJobsError):
    """The policy cannot be generated as IAM would accept it."""


def partition(region: str) -> str:
    """The ARN partition of a region (China and GovCloud have their own)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def execution_role_policy(catalog: Catalog) -> dict[str, Any]:
    """The policy document (``{"Version": ..., "Statement": [...]}``) for the catalog's environment."""
    env, env_name = catalog.environment, catalog.environment_name
    arn = f"arn:{partition(env.region)}"
    region_account = f"{env.region}:{env.account_id}"
    cluster_name = resource_name(env.cluster)
    cluster_arn = (
        env.cluster
        if env.cluster.startswith("arn:")
        else f"{arn}:ecs:{region_account}:cluster/{cluster_name}"
    )
    on_cluster = {"ArnEquals": {"ecs:cluster": cluster_arn}}
    tasks = f"{arn}:ecs:{region_account}:task/{cluster_name}/*"
    families = sorted({step.family for spec in catalog.jobs.values() for step in spec.steps.values()})
    job_groups = sorted({group for spec in catalog.jobs.values() for group in log_groups(spec)})

    def log_group(name: str) -> list[str]:
        """The group (FilterLogEvents, StartQuery) and its streams (GetLogEvents, PutLogEvents)."""
        return [
            f"{arn}:logs:{region_account}:log-group:{name}",
            f"{arn}:logs:{region_account}:log-group:{name}:*",
        ]

    statements = [
        _statement(
            "RunCatalogTaskDefinitions",
            ["ecs:RunTask"],
            [f"{arn}:ecs:{region_account}:task-definition/{family}:*" for family in families],
            on_cluster,
        ),
        _statement(
            "TagTasksAtLaunch",
            ["ecs:TagResource"],
            [tasks],
            {"StringEquals": {"ecs:CreateAction": "RunTask"}},
        ),
        _statement("WatchAndStopTasks", ["ecs:DescribeTasks", "ecs:StopTask"], [tasks], on_cluster),
        _statement("ListTasksOfTheCluster", ["ecs:ListTasks"], "*", on_cluster),  # a try's tasks; reconciling
        _statement("ReadTaskDefinitions", ["ecs:DescribeTaskDefinition"], "*"),
        _statement(
            "PassTaskRoles",
            ["iam:PassRole"],
            sorted(env.task_roles),
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
        _statement(
            "ReadJobLogs",
            ["logs:FilterLogEvents", "logs:GetLogEvents", "logs:GetQueryResults", "logs:StartQuery"],
            [resource for group in job_groups for resource in log_group(group)],
        ),
        _statement("StopLogsInsightsQueries", ["logs:StopQuery"], "*"),
        _statement(  # read back before an adopted result is reported (ecsjobs.reporting.audit.reported)
            "AuditLog",
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:GetLogEvents", "logs:PutLogEvents"],
            log_group(env.audit_log_group),
        ),
        _statement(
            "PublishJobMetrics",
            ["cloudwatch:PutMetricData"],
            "*",
            {"StringEquals": {"cloudwatch:namespace": env.metrics_namespace}},
        ),
        _statement(
            "ManageJobAlarms",
            [
                "cloudwatch:DeleteAlarms",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:TagResource",
            ],
            [f"{arn}:cloudwatch:{region_account}:alarm:{name_prefix(env_name)}*"],
        ),
        # Read only: the sync lists by name prefix, and IAM documents no prefix scoping for DescribeAlarms.
        _statement(
            "ListAlarms", ["cloudwatch:DescribeAlarms"], [f"{arn}:cloudwatch:{region_account}:alarm:*"]
        ),
        _statement(
            "ManageJobDashboard",
            ["cloudwatch:GetDashboard", "cloudwatch:PutDashboard"],
            [f"{arn}:cloudwatch::{env.account_id}:dashboard/{env.dashboard_name}"],
        ),
        _statement("ReadMetricBaselines", ["cloudwatch:GetMetricStatistics"], "*"),
        _statement(
            "ManageSavedQueries",
            ["logs:DeleteQueryDefinition", "logs:DescribeQueryDefinitions", "logs:PutQueryDefinition"],
            "*",
        ),
        _statement(
            "ReadSlackConnection",
            ["secretsmanager:GetSecretValue"],
            # Secrets Manager appends six random characters to a secret's name in its ARN.
            [f"{arn}:secretsmanager:{region_account}:secret:{CONNECTIONS_PREFIX}/{env.slack_conn_id}-??????"],
        ),
    ]
    # ecsjobs.waiting.state_events reads the queue; the monitoring sync keeps it and its rule
    if env.task_events:
        queue = env.task_events.queue
        statements += [
            _statement(
                "TaskEventsQueue",
                [
                    "sqs:ChangeMessageVisibility",  # a foreign event is released for the other triggerers
                    "sqs:CreateQueue",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                    "sqs:SetQueueAttributes",
                    "sqs:TagQueue",
                ],
                [f"{arn}:sqs:{region_account}:{queue}"],
            ),
            _statement(
                "TaskEventsRule",
                [
                    "events:DescribeRule",
                    "events:ListTargetsByRule",
                    "events:PutRule",
                    "events:PutTargets",
                    "events:TagResource",
                ],
                [f"{arn}:events:{region_account}:rule/{queue}"],
            ),
            _statement("TaskEventsCluster", ["ecs:DescribeClusters"], [cluster_arn]),
        ]
    # A catalog without jobs (or an environment without task roles) has nothing to name: no statement.
    policy = {"Version": "2012-10-17", "Statement": [s for s in statements if s["Resource"]]}
    size = len("".join(render(policy).split()))
    if size > INLINE_POLICY_LIMIT:
        raise PolicyError(
            f"the policy has {size} characters, more than the {INLINE_POLICY_LIMIT} an inline role policy "
            "may have; attach its statements as several policies"
        )
    return policy


def importer_policy(catalog: Catalog) -> dict[str, Any]:
    """The read-only policy of whoever runs ``python -m ecsjobs import --from aws`` (a person or a CI role,
    not the MWAA execution role): separate and optional, since ``--from file`` needs no AWS access."""
    env = catalog.environment
    arn, region_account = f"arn:{partition(env.region)}", f"{env.region}:{env.account_id}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement(
                "ImportListSources",
                ["events:ListRules", "scheduler:ListSchedules", "states:ListStateMachines"],
                "*",
            ),
            _statement(
                "ImportReadSources",
                ["events:ListTargetsByRule", "scheduler:GetSchedule", "states:DescribeStateMachine"],
                [
                    f"{arn}:events:{region_account}:rule/*",
                    f"{arn}:scheduler:{region_account}:schedule/*/*",
                    f"{arn}:states:{region_account}:stateMachine:*",
                ],
            ),
            _statement(
                "ImportReadLambdaTargets",
                ["lambda:GetFunctionConfiguration"],
                [f"{arn}:lambda:{region_account}:function:*"],
            ),
        ],
    }


def _statement(
    sid: str, actions: list[str], resources: list[str] | str, condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def render(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2) + "\n"


def policy_command(catalog: Catalog, out: Path | None, importer: bool = False) -> int:
    """``python -m ecsjobs iam-policy [--importer]``: print the policy, or write it to ``out``."""
    if catalog.broken and not importer:  # without a broken job's resources, that job would fail once fixed
        raise CatalogError([problem for problems in catalog.broken.values() for problem in problems])
    try:
        text = render(importer_policy(catalog) if importer else execution_role_policy(catalog))
    except PolicyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if out is None:
        sys.stdout.write(text)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    what = "the importer's read-only policy" if importer else "the execution role policy"
    print(f"wrote {out}: {what} for environment {catalog.environment_name!r}")
    return 0
