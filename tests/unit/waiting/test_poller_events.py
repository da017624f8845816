"""How a cluster's poller treats the ECS task state change events it receives (``Poller.on_events``),
in-process: which end a wait, which are dropped as duplicate or stale, which stay queued for someone else."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from ecsjobs.waiting import poller
from ecsjobs.waiting.state_events import (
    FAST_RELEASE_SECONDS,
    VISIBILITY_TIMEOUT,
    Handling,
    StateChange,
    parse,
    release_delay,
)

ARN = "arn:aws:ecs:us-east-1:123456789012:task/batch-jobs/"


def _change(task: str, status: str, version: int, receive_count: int = 1, age: float = 1) -> StateChange:
    detail = {"taskArn": ARN + task, "lastStatus": status, "version": version}
    handle = f"{task}-{status}-{version}-{receive_count}"
    return StateChange(ARN + task, version, detail, handle, receive_count, time.time() - age)


def _run(body: Any) -> Any:
    async def main() -> Any:
        key = ("conn", "region", f"cluster-{id(body)}", asyncio.get_running_loop())
        return await body(poller.Poller(key, {}, "queue", reconcile_interval=60))

    return asyncio.run(main())


def test_a_stopped_event_ends_its_wait_and_later_copies_are_dropped():
    async def body(p: poller.Poller) -> tuple:
        wait = p._waiters.setdefault(ARN + "a", set())
        future = asyncio.get_running_loop().create_future()
        wait.add(future)
        running = p.on_events([_change("a", "RUNNING", 3)])
        stopped = p.on_events([_change("a", "STOPPED", 7)])
        again = p.on_events([_change("a", "STOPPED", 7, 2), _change("a", "DEPROVISIONING", 6)])
        return running, future.done() and future.result().task["version"], stopped, again

    running, version, stopped, again = _run(body)
    assert running == Handling(["a-RUNNING-3-1"], []), "a RUNNING event is consumed without ending the wait"
    assert version == 7 and stopped == Handling(["a-STOPPED-7-1"], [])
    assert again.delete == ["a-STOPPED-7-2", "a-DEPROVISIONING-6-1"], "duplicate and stale: deleted"
    assert again.release == []


def test_an_event_nobody_here_waits_for_is_released_for_another_triggerer_and_remembered():
    async def body(p: poller.Poller) -> tuple:
        foreign = p.on_events([_change("b", "STOPPED", 7, receive_count=1)])
        late_wait = p.watch(ARN + "b", 6)  # its STOPPED event came first: the wait ends at once
        bounced = p.on_events([_change("c", "STOPPED", 7, receive_count=40, age=FAST_RELEASE_SECONDS + 4.5)])
        old = p.on_events([_change("d", "STOPPED", 7, receive_count=2, age=61)])
        return foreign, late_wait.done(), bounced, old

    foreign, ended_at_once, bounced, old = _run(body)
    assert foreign == Handling([], [("b-STOPPED-7-1", 0)]), "visible again at once, for the next long poll"
    assert ended_at_once
    assert bounced.release == [("c-STOPPED-7-40", 4)], "unclaimed for seconds: back off"
    assert old == Handling(["d-STOPPED-7-2"], []), "older than the 60 s reconciliation interval: deleted"


@pytest.mark.parametrize(
    ("age", "delay"),
    [
        (0.2, 0),
        (FAST_RELEASE_SECONDS - 0.01, 0),
        (FAST_RELEASE_SECONDS, 1),
        (FAST_RELEASE_SECONDS + 2.5, 2),
        (FAST_RELEASE_SECONDS + 8, 8),
        (FAST_RELEASE_SECONDS + 12, VISIBILITY_TIMEOUT),
        (500, VISIBILITY_TIMEOUT),
    ],
    ids=["0.2 s", "just before the fast release", "at it", "2.5 s past it", "8 s past", "12 s past", "500 s"],
)
def test_release_delay_is_at_once_while_young_then_grows_with_age_to_the_visibility_timeout(
    age: float, delay: int
):
    assert release_delay(age) == delay


@pytest.mark.parametrize(
    "body",
    ["not json", "[]", json.dumps({"source": "aws.ecs", "detail-type": "ECS Task State Change"}),
     json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {"taskArn": "x"}})],
)  # fmt: skip
def test_messages_that_are_not_task_state_changes_are_not_events(body):
    assert parse({"Body": body, "ReceiptHandle": "r"}) is None


def test_a_task_state_change_message_is_parsed():
    detail = {"taskArn": ARN + "d", "lastStatus": "STOPPED", "version": 7}
    body = json.dumps({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": detail})
    attributes = {"ApproximateReceiveCount": "3", "SentTimestamp": "1765000000123"}
    change = parse({"Body": body, "ReceiptHandle": "r", "Attributes": attributes})
    assert change == StateChange(ARN + "d", 7, detail, "r", 3, 1765000000.123)


def test_a_cancelled_caller_lets_its_connection_lookup_finish_first():
    """Airflow 3.2's triggerer dies when a connection lookup is cancelled between its request and its response
    (``ecsjobs.comms``): cancelling the caller waits for the lookup, then cancels."""
    from ecsjobs.comms import finished

    steps: list[str] = []

    async def lookup() -> str:
        steps.append("request sent")
        await asyncio.sleep(0.2)
        steps.append("response read")
        return "client"

    async def main() -> None:
        caller = asyncio.ensure_future(finished(lookup()))
        await asyncio.sleep(0.05)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller

    asyncio.run(main())
    assert steps == ["request sent", "response read"]


def test_a_poller_cancelled_as_its_queue_is_found_stops():
    """The last wait leaves (cancelling the poller) just as the listener finds the queue (waking the poller
    between rounds): the poller must still end, or that wait never returns its event."""

    async def body(p: poller.Poller) -> bool:
        p.interval = 30
        between_rounds = asyncio.ensure_future(p._next_round(time.monotonic(), None))
        await asyncio.sleep(0.05)
        p.events_healthy(True)
        between_rounds.cancel()
        done, _ = await asyncio.wait([between_rounds], timeout=5)
        return bool(done) and between_rounds.cancelled()

    assert _run(body), "the cancel was lost: the poller kept waiting for its next round"
