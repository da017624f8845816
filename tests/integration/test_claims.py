"""Once-only claims (``ecsjobs.reporting.claims``) over HTTP against the local CloudWatch Logs, and what they
guard: the "running late" alert of a step, sent once however many triggers reach its time."""

from __future__ import annotations

import asyncio
import time
import uuid

import boto3
import pytest

from ecsjobs.reporting import claims
from ecsjobs.reporting.alerts import Message
from ecsjobs.waiting.triggers import EcsTaskWaitTrigger
from tests.support import wait_until

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
    assert claims.claim(logs, GROUP, "late", "data_processor", key) is True, "another kind: its own claim"
    name = claims.stream_name("result", "data_processor", key)
    assert ":" not in name and "*" not in name and len(name) <= 512


def test_a_claim_that_cannot_be_made_is_granted(aws):
    """No such log group (or no permission, or no route): going ahead beats losing the alert."""
    key = uuid.uuid4().hex
    assert claims.claim(_logs(aws), "/no/such/group", "late", "job", key) is True
    sent = []
    assert asyncio.run(_once("/no/such/group", key, sent)) is True and sent == [key]


async def _once(group: str, key: str, sent: list[str]) -> bool:
    async def send() -> bool:
        sent.append(key)
        return True

    return await claims.aonce("aws_local", "us-east-1", group, "late", "late_job", key, send)


def test_work_claimed_and_marked_done_is_never_done_again(aws):
    key, sent = uuid.uuid4().hex, []
    assert asyncio.run(_once(GROUP, key, sent)) is True
    assert asyncio.run(_once(GROUP, key, sent)) is False
    assert sent == [key]


def test_a_claim_whose_claimer_died_before_doing_it_is_taken_over_once(aws, monkeypatch):
    """The claimer (a triggerer killed at the alert's time) made the claim stream and never marked it done:
    after ``TAKEOVER_AFTER`` the first of the processes that find it does the work, the others do not."""
    monkeypatch.setattr(claims, "TAKEOVER_AFTER", 1.0)
    key, sent = uuid.uuid4().hex, []
    assert claims.claim(_logs(aws), GROUP, "late", "late_job", key) is True  # and then it died

    async def three() -> list[bool]:
        return await asyncio.gather(*(_once(GROUP, key, sent) for _ in range(3)))

    started = time.monotonic()
    assert sorted(asyncio.run(three())) == [False, False, True]
    assert sent == [key] and time.monotonic() - started >= 1.0, "taken over only once the claim was stale"
    assert asyncio.run(_once(GROUP, key, sent)) is False and sent == [key], "marked done by the taker"


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


def test_a_wait_begun_after_its_task_ended_late_still_alerts_once(aws, ecs, slack):
    """A triggerer that died at the alert's time: the trigger runs again on another once the task has
    stopped, sees the end at once, and still owes the alert (the task ran past its time); a task that
    stopped before its alert's time alerts never, also when its wait begins after that time."""
    from tests.waits import first_event, start_tasks, wait_trigger

    late_arn, on_time_arn, taken_over_arn = start_tasks(aws, ecs, 3, duration=0.5)
    wait_until(lambda: _stopped(ecs, [late_arn, on_time_arn, taken_over_arn]), 30, "the tasks to stop")
    stopped_at = _stopped(ecs, [late_arn])[late_arn]

    def alert(arn: str, at: float) -> dict:
        text = f"Step running late: {arn}"
        return {
            "at": at,
            "slack_conn_id": "slack_local",
            "message": Message(channel="#late", text=text, blocks=[]).to_dict(),
            "claim": {"group": GROUP, "job": "late_job", "key": arn},
        }

    for _ in range(2):  # the trigger as the other triggerer runs it, then as a restarted one
        asyncio.run(first_event(wait_trigger(late_arn, late_alert=alert(late_arn, stopped_at - 0.2))))
    asyncio.run(first_event(wait_trigger(on_time_arn, late_alert=alert(on_time_arn, stopped_at + 60))))
    # taken over past its alert's time, by a wait that begins after it: it ended in time, so no alert
    ended = _stopped(ecs, [taken_over_arn])[taken_over_arn]
    wait_until(lambda: time.time() > ended + 1, 5, "the alert's time to pass")
    asyncio.run(first_event(wait_trigger(taken_over_arn, late_alert=alert(taken_over_arn, ended + 0.5))))
    assert [m["text"] for m in slack.get("/messages")] == [f"Step running late: {late_arn}"]


def test_a_late_alert_is_not_sent_for_a_task_that_ended_in_time_unseen(aws, ecs, slack):
    """The wait has not seen the end yet (its event lost while a triggerer was killed), but the task stopped
    before the alert's time: checked with ECS at that time, no alert."""
    from tests.waits import start_tasks, wait_trigger

    (arn,) = start_tasks(aws, ecs, 1, duration=0.5)
    wait_until(lambda: _stopped(ecs, [arn]), 30, "the task to stop")
    late_alert = {
        "at": _stopped(ecs, [arn])[arn] + 0.5,
        "slack_conn_id": "slack_local",
        "message": Message(channel="#late", text=f"Step running late: {arn}", blocks=[]).to_dict(),
        "claim": {"group": GROUP, "job": "late_job", "key": arn},
    }

    asyncio.run(wait_trigger(arn, late_alert=late_alert)._alert_late())

    assert slack.get("/messages") == []


def _stopped(ecs, arns: list[str]) -> dict[str, float]:
    """Each stopped task's stoppedAt (epoch seconds); empty until all have stopped."""
    tasks = ecs.describe_tasks(cluster="batch-jobs", tasks=arns)["tasks"]
    if any(t["lastStatus"] != "STOPPED" for t in tasks):
        return {}
    return {t["taskArn"]: t["stoppedAt"].timestamp() for t in tasks}
