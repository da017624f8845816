"""The MWAA execution role policy in use: ``iam-policy`` as a user runs it, and the AWS calls a real job run
makes against the local AWS, each allowed by the policy (judged by ``tests/iam_allow.py``). What the policy
grants, read from the DAGs and the monitoring sync: ``tests/unit/deploy/test_iam.py``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.deploy import iam
from local.settings import REPO
from tests.iam_allow import BATCH_ACTIONS, IAM_PREFIX, allows, as_list
from tests.support import container_environment


def _cli_env() -> dict[str, str]:
    """The environment of a command run as a user runs it (the Makefile puts these on PYTHONPATH)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}


@pytest.mark.integration  # a subprocess
def test_the_command_prints_and_writes_the_policy(tmp_path: Path, prod):
    out = tmp_path / "policy.json"
    result = subprocess.run(
        [sys.executable, "-m", "ecsjobs", "iam-policy", "--out", str(out)],
        cwd=REPO,
        env=_cli_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == iam.execution_role_policy(prod)
    assert "prod" in result.stdout


@pytest.mark.integration  # a subprocess
def test_a_broken_catalog_gets_no_policy(tmp_path: Path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "config" / "jobs" / "data_processor.yaml").write_text("description: x\nschedul: daily\n")
    result = subprocess.run(
        [sys.executable, "-m", "ecsjobs", "--config", str(tmp_path / "config"), "iam-policy"],
        cwd=REPO,
        env=_cli_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "data_processor.yaml" in result.stderr and "schedul" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_real_run_makes_only_calls_the_policy_allows(airflow_db, aws, ecs, monkeypatch):
    """The shipped ``data_processor`` job runs on the local AWS (real task runner, real trigger); every AWS
    call it made, as the local AWS recorded it, is granted by the policy generated for the local
    environment, and so are the resources of the ECS task it started."""
    monkeypatch.setenv("ECSJOBS_CONFIG_DIR", str(REPO / "config"))
    from ecsjobs.build.loader import load_dags

    local = load_catalog(REPO / "config", "local")
    policy = iam.execution_role_policy(local)
    aws.post("/_local/scenarios", {"match": {"family": "data-processor"}, "scenario": {"duration": 1}})

    dag_run = load_dags()["data_processor"].test(logical_date=datetime(2026, 5, 4, 2, tzinfo=UTC))

    assert dag_run.state == "success"
    calls = {(c["service"], c["action"]) for c in aws.get("/_local/calls")}  # since the fixture's reset
    actions = {f"{IAM_PREFIX[service]}:{action}" for service, action in calls}
    actions = {BATCH_ACTIONS.get(action, action) for action in actions}
    assert {"ecs:RunTask", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions, "its wait read the event"
    granted = {action for statement in policy["Statement"] for action in as_list(statement["Action"])}
    assert actions <= granted, actions - granted
    ran = {"name": "JOB_DATE", "value": "2026-05-04"}
    (started,) = [t for t in aws.get("/_local/tasks") if ran in container_environment(t)]
    (task,) = ecs.describe_tasks(cluster=started["cluster"], tasks=[started["taskArn"]])["tasks"]
    cluster = {"ecs:cluster": task["clusterArn"]}
    assert allows(policy, "ecs:RunTask", task["taskDefinitionArn"], cluster)
    assert allows(policy, "ecs:TagResource", task["taskArn"], {"ecs:CreateAction": "RunTask"})
    assert allows(policy, "ecs:DescribeTasks", task["taskArn"], cluster)
    assert allows(policy, "ecs:StopTask", task["taskArn"], cluster)
    env, task_id = local.environment, task["taskArn"].rsplit("/", 1)[-1]
    logs = f"arn:aws:logs:{env.region}:{env.account_id}:log-group:"
    assert allows(
        policy, "logs:GetLogEvents", f"{logs}/ecs/data-processor:log-stream:ecs/batch-container/{task_id}"
    )
    assert allows(policy, "logs:PutLogEvents", f"{logs}{env.audit_log_group}:log-stream:data_processor")
    assert allows(policy, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": env.metrics_namespace})
