"""The route of ECS task state change events to the environment's queue: an SQS queue, its policy and an
EventBridge rule with the queue as target, planned and applied by the monitoring sync like the alarms.

The rule sends only the cluster's STOPPED events (``state_events.rule_pattern``): the only ones that end a
wait, a seventh of all task state changes. The queue keeps a message 15 minutes: one nobody claims is
deleted after a reconciliation interval anyway (``ecsjobs.waiting.poller``).
"""

from __future__ import annotations

import json
from typing import Any

from ecsjobs.catalog.environment import Environment
from ecsjobs.waiting.state_events import rule_pattern

RETENTION_SECONDS = 900
QUEUE_ATTRIBUTES = {"MessageRetentionPeriod": str(RETENTION_SECONDS), "ReceiveMessageWaitTimeSeconds": "20"}
TARGET_ID = "ecsjobs-task-events"


def cluster_arn(ecs: Any, env: Environment) -> str:
    """The cluster's ARN (the rule matches on it), from DescribeClusters."""
    found = ecs.describe_clusters(clusters=[env.cluster])["clusters"]
    if not found:
        raise LookupError(f"ECS cluster {env.cluster!r} not found in {env.region}")
    return str(found[0]["clusterArn"])


def arns(cluster: str, queue: str) -> tuple[str, str]:
    """(queue ARN, rule ARN) in the cluster's partition, region and account."""
    _, partition, _, region, account, _ = cluster.split(":", 5)
    return (
        f"arn:{partition}:sqs:{region}:{account}:{queue}",
        f"arn:{partition}:events:{region}:{account}:rule/{queue}",
    )


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Only the rule may send to the queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EcsTaskStateChanges",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def plan(
    env: Environment, tags: dict[str, str], sqs: Any, events: Any, ecs: Any
) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, kind, request) for the queue and the rule, each ``create``, ``update`` or ``unchanged``."""
    assert env.task_events is not None
    name = env.task_events.queue
    cluster = cluster_arn(ecs, env)
    queue_arn, rule_arn = arns(cluster, name)
    attributes = {**QUEUE_ATTRIBUTES, "Policy": json.dumps(queue_policy(queue_arn, rule_arn))}
    queue = _queue_attributes(sqs, name)
    if queue is None:
        steps = [("create", "queue", {"QueueName": name, "Attributes": attributes, "tags": tags})]
    elif any(_normal(key, queue.get(key)) != _normal(key, value) for key, value in attributes.items()):
        steps = [("update", "queue", {"QueueName": name, "Attributes": attributes})]
    else:
        steps = [("unchanged", "queue", {})]
    pattern = rule_pattern(cluster)
    rule = {
        "Name": name,
        "EventPattern": json.dumps(pattern),
        "State": "ENABLED",
        "Description": f"ECS task STOPPED events of {env.cluster} for Airflow's waits (ecsjobs)",
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }
    targets = {"Rule": name, "Targets": [{"Id": TARGET_ID, "Arn": queue_arn}]}
    have = _rule(events, name)
    if have is None:
        steps.append(("create", "rule", {"rule": rule, "targets": targets}))
    elif (
        json.loads(have["EventPattern"]) != pattern
        or have.get("State") != "ENABLED"
        or [(t["Id"], t["Arn"]) for t in have["Targets"]] != [(TARGET_ID, queue_arn)]
    ):
        untagged = {key: value for key, value in rule.items() if key != "Tags"}  # PutRule tags only new rules
        steps.append(("update", "rule", {"rule": untagged, "targets": targets}))
    else:
        steps.append(("unchanged", "rule", {}))
    return steps


def apply(kind: str, request: dict[str, Any], sqs: Any, events: Any) -> None:
    if kind == "queue" and "tags" in request:
        sqs.create_queue(**request)
    elif kind == "queue":
        url = sqs.get_queue_url(QueueName=request["QueueName"])["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=request["Attributes"])
    else:
        events.put_rule(**request["rule"])
        events.put_targets(**request["targets"])


def _queue_attributes(sqs: Any, name: str) -> dict[str, str] | None:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return None
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def _rule(events: Any, name: str) -> dict[str, Any] | None:
    try:
        rule = events.describe_rule(Name=name)
    except events.exceptions.ResourceNotFoundException:
        return None
    return {**rule, "Targets": events.list_targets_by_rule(Rule=name)["Targets"]}


def _normal(key: str, value: Any) -> Any:
    return json.loads(value) if key == "Policy" and value else value
