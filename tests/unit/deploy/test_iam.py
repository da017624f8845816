"""The MWAA execution role policy: the catalog's resources only, ``*`` only where AWS needs it, enough to run.

What the policy must allow is read from what runs, not from ``ecsjobs.deploy.iam``'s own derivation: the
operators of the DAGs the catalog builds (task definitions, cluster, log groups), the monitoring sync's
desired alarms; the calls of a real run: ``tests/integration/test_iam.py``. The policy is judged by a small
evaluator of IAM's Allow semantics (``tests/iam_allow.py``); no IAM service runs here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecsjobs.build.factory import build_dags
from ecsjobs.catalog.loading import load_catalog
from ecsjobs.deploy import iam
from ecsjobs.deploy.monitoring import desired as monitoring
from ecsjobs.execution.operators import EcsJobOperator
from local.settings import REPO
from tests.iam_allow import allows, as_list

# Actions that may take Resource "*", with the condition that must narrow them (checked against AWS's
# Service Authorization Reference by test_the_aws_reference_agrees below). Anything else with "*" fails.
NEEDS_STAR = {
    "ecs:ListTasks": ("ArnEquals", "ecs:cluster"),  # only resource type: container instance (none on Fargate)
    "ecs:DescribeTaskDefinition": None,
    "cloudwatch:PutMetricData": ("StringEquals", "cloudwatch:namespace"),
    "cloudwatch:GetMetricStatistics": None,
    "logs:StopQuery": None,
    "logs:PutQueryDefinition": None,
    "logs:DescribeQueryDefinitions": None,
    "logs:DeleteQueryDefinition": None,
}
# /tmp/team contracts: what the running jobs and `python -m ecsjobs sync-monitoring` call.
RUNTIME_ACTIONS = {
    "ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "ecs:ListTasks", "ecs:DescribeTaskDefinition",
    "ecs:TagResource", "iam:PassRole", "logs:GetLogEvents", "logs:FilterLogEvents", "logs:StartQuery",
    "logs:GetQueryResults", "logs:StopQuery", "logs:CreateLogStream", "logs:PutLogEvents",
    "logs:DescribeLogStreams", "cloudwatch:PutMetricData",
}  # fmt: skip
SYNC_ACTIONS = {
    "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
    "cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:PutDashboard",
    "cloudwatch:GetDashboard", "cloudwatch:GetMetricStatistics", "logs:PutQueryDefinition",
    "logs:DescribeQueryDefinitions", "logs:DeleteQueryDefinition",
}  # fmt: skip
# With `task_events`: what the waits and the sync call on the queue, the rule and the cluster.
TASK_EVENTS_ACTIONS = {
    "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage", "ecs:DescribeClusters", "sqs:CreateQueue",
    "sqs:GetQueueAttributes", "sqs:SetQueueAttributes", "sqs:TagQueue", "events:DescribeRule",
    "events:ListTargetsByRule", "events:PutRule", "events:PutTargets", "events:TagResource",
}  # fmt: skip
ONE_JOB = "description: x\nstart_date: 2026-01-01\ntask_definition: {family}\ncontainer: app\n"


@pytest.fixture(scope="module")
def policy(prod) -> dict:
    return iam.execution_role_policy(prod)


@pytest.fixture(scope="module")
def steps(prod) -> list[EcsJobOperator]:
    """Every step operator of the DAGs the prod catalog builds: what will call AWS."""
    dags = build_dags(prod)
    operators = [task for dag in dags.values() for task in dag.tasks if isinstance(task, EcsJobOperator)]
    assert len({op.dag_id for op in operators}) == len(prod.jobs) == 15
    return operators


def _cluster_arn(prod) -> str:
    env = prod.environment
    return f"arn:aws:ecs:{env.region}:{env.account_id}:cluster/{env.cluster}"


def _statement_with(policy: dict, action: str) -> list[dict]:
    return [s for s in policy["Statement"] if action in as_list(s["Action"])]


def test_run_task_only_for_the_steps_task_definitions_on_the_cluster(policy, prod, steps):
    env, cluster = prod.environment, _cluster_arn(prod)
    prefix = f"arn:aws:ecs:{env.region}:{env.account_id}:task-definition/"
    for step in steps:
        family, _, revision = step.task_definition.partition(":")
        definition = f"{prefix}{family}:{revision or 7}"
        assert step.cluster == env.cluster
        assert allows(policy, "ecs:RunTask", definition, {"ecs:cluster": cluster}), step.task_id
        assert not allows(policy, "ecs:RunTask", definition, {"ecs:cluster": cluster + "-other"})
    (statement,) = _statement_with(policy, "ecs:RunTask")
    families = {step.task_definition.split(":")[0] for step in steps}
    assert sorted(statement["Resource"]) == sorted(f"{prefix}{family}:*" for family in families)
    assert not allows(policy, "ecs:RunTask", f"{prefix}not-in-the-catalog:1", {"ecs:cluster": cluster})


def test_pass_role_only_for_the_task_roles_and_only_to_ecs_tasks(policy, prod):
    roles = prod.environment.task_roles
    assert roles
    for role in roles:
        assert allows(policy, "iam:PassRole", role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
        assert not allows(policy, "iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"})
    other = roles[0].rsplit("/", 1)[0] + "/admin"
    assert not allows(policy, "iam:PassRole", other, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})


def test_task_calls_are_bound_to_the_cluster(policy, prod):
    env, cluster = prod.environment, _cluster_arn(prod)
    task = f"arn:aws:ecs:{env.region}:{env.account_id}:task/{env.cluster}/0123456789abcdef"
    foreign = f"arn:aws:ecs:{env.region}:{env.account_id}:task/another-cluster/0123456789abcdef"
    for action in ("ecs:DescribeTasks", "ecs:StopTask"):
        assert allows(policy, action, task, {"ecs:cluster": cluster})
        assert not allows(
            policy, action, foreign, {"ecs:cluster": cluster.replace(env.cluster, "another-cluster")}
        )
    assert allows(policy, "ecs:ListTasks", "*", {"ecs:cluster": cluster})
    assert not allows(policy, "ecs:ListTasks", "*", {"ecs:cluster": cluster + "-other"})
    assert allows(policy, "ecs:TagResource", task, {"ecs:CreateAction": "RunTask"})
    assert not allows(policy, "ecs:TagResource", task, {})  # tags only as part of RunTask


def test_logs_read_on_the_job_groups_and_write_on_the_audit_group(policy, prod, steps):
    env = prod.environment
    group = f"arn:aws:logs:{env.region}:{env.account_id}:log-group:"
    for log_group in {step.awslogs_group for step in steps}:
        stream = f"{group}{log_group}:log-stream:ecs/batch-container/0123"
        assert allows(policy, "logs:GetLogEvents", stream)
        for action in ("logs:FilterLogEvents", "logs:StartQuery", "logs:GetQueryResults"):
            assert allows(policy, action, f"{group}{log_group}"), (action, log_group)
        assert not allows(policy, "logs:PutLogEvents", stream)
    audit_stream = f"{group}{env.audit_log_group}:log-stream:data_processor"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents"):
        assert allows(policy, action, audit_stream)
    assert allows(policy, "logs:DescribeLogStreams", f"{group}{env.audit_log_group}")
    assert not allows(policy, "logs:PutLogEvents", f"{group}/some/other/group:log-stream:x")
    assert not allows(policy, "logs:GetLogEvents", f"{group}/some/other/group:log-stream:x")


def test_metrics_only_in_the_environments_namespace(policy, prod):
    namespace = prod.environment.metrics_namespace
    assert allows(policy, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": namespace})
    assert not allows(policy, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/ECS"})


def test_the_sync_manages_its_own_alarms_and_dashboard_only(policy, prod):
    env = prod.environment
    baselines = {
        (job_id, name): monitoring.expected_baseline(step)
        for job_id, spec in prod.jobs.items()
        for name, step in spec.steps.items()
    }
    alarms = monitoring.desired_alarms(prod, baselines)
    assert alarms
    alarm_arn = f"arn:aws:cloudwatch:{env.region}:{env.account_id}:alarm:"
    for name in alarms:
        for action in (
            "PutMetricAlarm",
            "TagResource",
            "ListTagsForResource",
            "DeleteAlarms",
            "DescribeAlarms",
        ):
            assert allows(policy, f"cloudwatch:{action}", alarm_arn + name), (action, name)
    for action in ("PutMetricAlarm", "DeleteAlarms", "TagResource"):
        assert not allows(policy, f"cloudwatch:{action}", alarm_arn + "someone-elses-alarm")
    dashboard = f"arn:aws:cloudwatch::{env.account_id}:dashboard/"
    for action in ("cloudwatch:PutDashboard", "cloudwatch:GetDashboard"):
        assert allows(policy, action, dashboard + env.dashboard_name)
        assert not allows(policy, action, dashboard + "another-teams-dashboard")


def test_the_slack_connection_secret_is_readable(policy, prod):
    env = prod.environment
    secret = (
        f"arn:aws:secretsmanager:{env.region}:{env.account_id}:secret:airflow/connections/{env.slack_conn_id}"
    )
    assert allows(policy, "secretsmanager:GetSecretValue", secret + "-AbC123")
    assert not allows(
        policy, "secretsmanager:GetSecretValue", secret.replace(env.slack_conn_id, "other") + "-AbC123"
    )


def test_star_only_where_aws_allows_nothing_narrower(policy, prod):
    env = prod.environment
    for statement in policy["Statement"]:
        actions = as_list(statement["Action"])
        assert all(":" in a and "*" not in a and "?" not in a for a in actions), statement["Sid"]
        if statement["Resource"] == "*":
            for action in actions:
                assert action in NEEDS_STAR, f"{action} must name its resources ({statement['Sid']})"
                if NEEDS_STAR[action]:
                    operator, key = NEEDS_STAR[action]
                    assert key in statement["Condition"][operator], (action, statement["Sid"])
            continue
        for resource in as_list(statement["Resource"]):
            assert resource != "*", statement["Sid"]
            _, _, service, region, account, rest = resource.split(":", 5)
            assert account == env.account_id, resource
            assert region == (
                "" if service in ("iam", "cloudwatch") and not rest.startswith("alarm") else env.region
            )
    assert set(iam.WILDCARD_ACTIONS) == set(NEEDS_STAR)


def test_every_action_the_jobs_and_the_sync_use_is_granted(policy):
    granted = {action for statement in policy["Statement"] for action in as_list(statement["Action"])}
    assert granted >= RUNTIME_ACTIONS | SYNC_ACTIONS
    assert not granted & TASK_EVENTS_ACTIONS, "prod has no task_events: no queue, no rule"
    local = iam.execution_role_policy(load_catalog(REPO / "config", "local"))
    with_events = {action for statement in local["Statement"] for action in as_list(statement["Action"])}
    assert with_events >= RUNTIME_ACTIONS | SYNC_ACTIONS | TASK_EVENTS_ACTIONS
    assert len({statement["Sid"] for statement in policy["Statement"]}) == len(policy["Statement"])
    assert len("".join(iam.render(policy).split())) <= iam.INLINE_POLICY_LIMIT


def test_the_aws_reference_agrees(policy):
    """Resource types and condition keys per action from policy_sentry's copy of AWS's Service Authorization
    Reference: "*" only for actions with no resource type (or ListTasks, see NEEDS_STAR), ARNs of a type the
    action takes, condition keys the action knows."""
    actions = pytest.importorskip("policy_sentry.querying.actions", reason="policy_sentry is not installed")
    for statement in policy["Statement"]:
        for action in as_list(statement["Action"]):
            service, name = action.split(":")
            rows = actions.get_action_data(service, name)[service]
            formats = [row["resource_arn_format"] for row in rows if row["resource_arn_format"] != "*"]
            known_keys = {key for row in rows for key in row["condition_keys"]}
            for keys in statement.get("Condition", {}).values():
                assert set(keys) <= known_keys, (action, keys)
            if statement["Resource"] == "*":
                assert not formats or action == "ecs:ListTasks", f"{action} takes {formats}"
                continue
            for resource in as_list(statement["Resource"]):
                assert any(_same_type(resource, f) for f in formats), (action, resource, formats)


def _same_type(resource: str, arn_format: str) -> bool:
    """``resource`` is of the service and resource type of ``arn_format`` (e.g. ``log-group:``, ``task/``)."""
    service, rest = arn_format.split(":")[2], arn_format.split(":", 5)[5]
    _, _, resource_service, _, _, resource_rest = resource.split(":", 5)
    return resource_service == service and resource_rest.startswith(rest.split("${")[0])


def test_china_regions_get_their_partition(config_dir: Path):
    (config_dir / "jobs" / "job.yaml").write_text(ONE_JOB.format(family="data-processor"))
    prod = config_dir / "environments" / "prod.yaml"
    prod.write_text(prod.read_text().replace("region: us-east-1", "region: cn-north-1"))
    policy = iam.execution_role_policy(load_catalog(config_dir, "prod"))
    named = [s for s in policy["Statement"] if s["Resource"] != "*" and s["Sid"] != "PassTaskRoles"]
    resources = [r for s in named for r in as_list(s["Resource"])]  # the task roles are ARNs from the file
    assert resources and all(r.startswith("arn:aws-cn:") for r in resources)


def test_a_policy_too_big_for_a_role_is_refused(config_dir: Path):
    for i in range(200):
        (config_dir / "jobs" / f"job{i}.yaml").write_text(ONE_JOB.format(family=f"a-long-family-name-{i}"))
    with pytest.raises(iam.PolicyError, match="10240"):
        iam.execution_role_policy(load_catalog(config_dir, "prod"))
