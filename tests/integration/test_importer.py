"""``import --from aws``: the account read through the environment's AWS connection, over HTTP from the
local AWS's EventBridge and Scheduler. The import from the AWS CLI's JSON:
``tests/unit/importer/test_import.py``."""

from __future__ import annotations

import json
import time
import uuid

from ecsjobs.catalog.loading import load_catalog
from ecsjobs.deploy import iam
from local.settings import REPO
from tests.iam_allow import allows
from tests.unit.importer.test_import import ETL, ROLE, _ecs_target, _import, _job


def test_the_account_is_read_through_the_environments_connection(aws, tmp_path, capsys):
    """From the local AWS's EventBridge, Scheduler and Step Functions APIs, only what carries the prefix."""
    prefix = f"imp-{uuid.uuid4().hex[:6]}-"
    events, scheduler, sfn = aws.client("events"), aws.client("scheduler"), aws.client("stepfunctions")
    machine = sfn.create_state_machine(name=f"{prefix}etl", definition=json.dumps(ETL), roleArn=ROLE)
    events.put_rule(Name=f"{prefix}nightly", ScheduleExpression="cron(0 3 * * ? *)", State="ENABLED")
    start = {
        "Id": "batch",
        "Arn": machine["stateMachineArn"],
        "RoleArn": ROLE,
        "Input": '{"date": "2026-01-01"}',
    }
    events.put_targets(Rule=f"{prefix}nightly", Targets=[start])
    events.put_rule(Name=f"{prefix}daily", ScheduleExpression="cron(0 2 * * ? *)", State="ENABLED")
    events.put_targets(Rule=f"{prefix}daily", Targets=[_ecs_target()])
    events.put_rule(Name=f"{prefix}off", ScheduleExpression="rate(1 day)", State="DISABLED")
    events.put_targets(Rule=f"{prefix}off", Targets=[_ecs_target()])
    target = _ecs_target()
    target["Input"] = json.dumps({"containerOverrides": [{"name": "app"}]})
    del target["InputTransformer"], target["Id"]
    scheduler.create_schedule(
        Name=f"{prefix}berlin",
        ScheduleExpression="cron(30 7 * * ? *)",
        ScheduleExpressionTimezone="Europe/Berlin",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    since = time.time()
    try:
        code, report, errors = _import(
            capsys, "--from", "aws", "--prefix", prefix, "--out", str(tmp_path / "jobs")
        )
        calls = aws.get(f"/_local/calls?since={since}")
    finally:
        for rule in (f"{prefix}daily", f"{prefix}off", f"{prefix}nightly"):
            events.remove_targets(Rule=rule, Ids=["batch"])
            events.delete_rule(Name=rule)
        scheduler.delete_schedule(Name=f"{prefix}berlin")
        sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])

    assert code == 0, errors
    stem = prefix.replace("-", "_")
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == [
        f"{stem}berlin.yaml",
        f"{stem}daily.yaml",
        f"{stem}etl.yaml",
        f"{stem}off.yaml",
    ]
    etl = _job(tmp_path / "jobs" / f"{stem}etl.yaml")
    assert (etl["schedule"], list(etl["steps"])) == ("cron(0 3 * * ? *)", ["Extract", "Transform", "Load"])
    assert _job(tmp_path / "jobs" / f"{stem}off.yaml")["paused"] is True
    berlin = _job(tmp_path / "jobs" / f"{stem}berlin.yaml")
    assert (berlin["timezone"], berlin["container"]) == ("Europe/Berlin", "app")
    # the rule firing at a rate() counted from its creation
    assert report.splitlines()[-1] == "5 sources: 4 jobs, 1 to review, 1 skipped"
    # Every call it made is granted by the importer's read-only policy (iam-policy --importer).
    env = load_catalog(REPO / "config", "local").environment
    policy = iam.importer_policy(load_catalog(REPO / "config", "local"))
    made = {(call["service"], call["action"]) for call in calls}
    assert {
        ("events", "ListTargetsByRule"),
        ("scheduler", "GetSchedule"),
        ("states", "DescribeStateMachine"),
    } <= made
    rule = f"arn:aws:events:{env.region}:{env.account_id}:rule/{prefix}daily"
    schedule = f"arn:aws:scheduler:{env.region}:{env.account_id}:schedule/default/{prefix}berlin"
    resources = {
        "ListTargetsByRule": rule,
        "GetSchedule": schedule,
        "DescribeStateMachine": machine["stateMachineArn"],
    }
    for service, action in made:
        assert allows(policy, f"{service}:{action}", resources.get(action, "*")), (service, action)
