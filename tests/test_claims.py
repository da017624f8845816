"""Once-only claims (``ecsjobs.claims``) over HTTP against the local CloudWatch Logs, and what they guard:
the "running late" alert of a step, sent once however many triggers reach its time."""

from __future__ import annotations

import asyncio
import time
import uuid

import boto3
import pytest

from ecsjobs import claims
from ecsjobs.alerts import Message
from ecsjobs.triggers import EcsTaskWaitTrigger

pytestmark = pytest.mark.integration
GROUP = "/batch-jobs/audit"  # the local environment's audit log group (local.seed creates it)


def _logs(aws):
    return boto3.client(
        "logs",
        endpoint_url=aws.url,
        region_name="us-east-1",
        aws_access_key_id="l",
        aws_secret_access_key="l",
    )


def test_the_first_claim_wins_and_every_later_one_loses(aws):
    logs, key = _logs(aws), f"arn:aws:ecs:us-east-1:1:task/batch-jobs/{uuid.uuid4().hex}"
    assert claims.claim(logs, GROUP, "result", "data_processor", key) is True
    assert claims.claim(logs, GROUP, "result", "data_processor", key) is False
    assert (
        asyncio.run(claims.aclaim("aws_local", "us-east-1", GROUP, "result", "data_processor", key)) is False
    )
    assert claims.claim(logs, GROUP, "late", "data_processor", key) is True, "another kind: its own claim"
    name = claims.stream_name("result", "data_processor", key)
    assert ":" not in name and "*" not in name and len(name) <= 512


def test_a_claim_that_cannot_be_made_is_granted(aws):
    """No such log group (or no permission, or no route): going ahead beats losing the alert."""
    key = uuid.uuid4().hex
    assert claims.claim(_logs(aws), "/no/such/group", "late", "job", key) is True
    assert asyncio.run(claims.aclaim("aws_local", "us-east-1", "/no/such/group", "late", "job", key)) is True


def test_a_late_alert_is_sent_once_by_however_many_triggers_reach_its_time(aws, slack):
    """A triggerer restarted after the alert's time, or another triggerer taking the wait over, runs the
    trigger again from its serialized arguments: the second finds the alert claimed."""
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/batch-jobs/{uuid.uuid4().hex}"
    late_alert = {
        "at": time.time(),
        "slack_conn_id": "slack_local",
        "message": Message(channel="#late", text=f"Step running late: {arn}", blocks=[]).to_dict(),
        "claim": {"group": GROUP, "job": "late_job", "key": arn},
    }
    trigger = EcsTaskWaitTrigger(
        cluster="batch-jobs", task_arn=arn, aws_conn_id="aws_local", region_name="us-east-1",
        late_alert=late_alert,
    )  # fmt: skip
    _, kwargs = trigger.serialize()
    for again in (trigger, EcsTaskWaitTrigger(**kwargs), EcsTaskWaitTrigger(**kwargs)):
        asyncio.run(again._alert_late())
    assert [m["text"] for m in slack.get("/messages")] == [f"Step running late: {arn}"]
